// `coffer agent-ctl` through the built executable against the agent service (fake executor and
// image pull) on a Unix socket in this process: JSON output, exit codes 0/1/2/3, --timeout.
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "agent/service.h"
#include "agent/test/fake_executor.h"
#include "core/json.h"
#include "core/test/temp_dir.h"

namespace coffer::agent {
namespace {

struct CtlRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class AgentCtl : public ::testing::Test {
 protected:
  void SetUp() override {
    AgentServiceDeps deps;
    deps.executor = &executor_;
    deps.pull = [](const std::string& ref, std::stop_token) -> Result<PulledImage> {
      PulledImage img;
      img.reference = ref;
      img.manifest_digest = "sha256:" + std::string(64, 'a');
      return img;
    };
    deps.measure = [](const guest::MeasurementEvent&) -> Status { return ok(); };
    deps.policy = AgentPolicy::builtin();
    deps.guest = GuestInfo{"sim-snp", "", false};
    service_ = std::make_unique<AgentService>(std::move(deps));
    service_->register_methods(server_);
    ASSERT_TRUE(server_.listen_unix(socket_));
  }

  CtlRun ctl(const std::string& args, const std::string& socket = "") {
    const auto err_file = dir_.path() / "err";
    const std::string cmd = std::string(COFFER_BINARY_DIR) + "/apps/coffer agent-ctl --socket " +
                            (socket.empty() ? socket_.string() : socket) + " " + args + " 2>" +
                            err_file.string();
    CtlRun r;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return r;
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    const int status = ::pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream in(err_file);
    std::stringstream ss;
    ss << in.rdbuf();
    r.err = ss.str();
    return r;
  }

  static Json json(const std::string& text) {
    auto j = parse_json(text);
    EXPECT_TRUE(j) << text;
    return j ? *j : Json();
  }

  coffer::testing::TempDir dir_;
  std::filesystem::path socket_ = dir_.path() / "agent.sock";
  fakes::FakeExecutor executor_;
  std::unique_ptr<AgentService> service_;
  net::ttrpc::Server server_;
};

TEST_F(AgentCtl, DrivesTheLifecycleWithJsonOutput) {
  auto h = ctl("health");
  ASSERT_EQ(h.exit_code, 0) << h.err;
  EXPECT_EQ(json(h.out)["status"], "SERVING");
  ASSERT_EQ(ctl("create-sandbox s1").exit_code, 0);
  auto c =
      ctl("create-container c1 --sandbox s1 --image registry.local/app:1 --terminal "
          "--memory 1048576");
  ASSERT_EQ(c.exit_code, 0) << c.err;
  auto created = json(c.out);
  EXPECT_EQ(created["image_digest"], "sha256:" + std::string(64, 'a'));
  EXPECT_EQ(created["container"]["container_id"], "c1");
  EXPECT_EQ(created["container"]["status"], "CONTAINER_STATUS_CREATED");
  EXPECT_TRUE(executor_.last_create.overrides.terminal);
  EXPECT_EQ(executor_.last_create.overrides.memory_limit_bytes, 1048576U);
  ASSERT_EQ(ctl("start c1").exit_code, 0);
  auto st = ctl("state c1");
  ASSERT_EQ(st.exit_code, 0);
  EXPECT_EQ(json(st.out)["container"]["status"], "CONTAINER_STATUS_RUNNING");
  ASSERT_EQ(ctl("write-stdin c1 --data hello").exit_code, 0);
  auto rd = ctl("read-output c1 --raw --max-bytes 4");
  ASSERT_EQ(rd.exit_code, 0);
  EXPECT_EQ(rd.out, "hell");
  auto rd2 = ctl("read-output c1");
  EXPECT_EQ(json(rd2.out)["data"], "bw==");  // base64 of "o"
  ASSERT_EQ(ctl("close-stdin c1").exit_code, 0);
  EXPECT_TRUE(executor_.stdin_closed);
  ASSERT_EQ(ctl("signal c1 9").exit_code, 0);
  EXPECT_EQ(executor_.last_signal, 9);
  EXPECT_EQ(json(ctl("list").out)["containers"].size(), 1U);
  EXPECT_EQ(json(ctl("stats c1").out)["memory_bytes"], "4096");  // proto3 JSON: uint64 as string
  EXPECT_EQ(json(ctl("pull registry.local/app:1").out)["manifest_digest"],
            "sha256:" + std::string(64, 'a'));
  auto g = json(ctl("guest-details").out);
  EXPECT_EQ(g["tee"], "sim-snp");
  EXPECT_EQ(g["policy_from_init_data"], false);
  ASSERT_EQ(ctl("remove c1").exit_code, 0);
  ASSERT_EQ(ctl("remove-sandbox s1").exit_code, 0);
}

TEST_F(AgentCtl, RefusalsExitOneWithTheStatus) {
  ASSERT_EQ(ctl("create-sandbox s1").exit_code, 0);
  auto denied = ctl("create-container c1 --sandbox s1 --image app:1 --entrypoint /bin/sh");
  EXPECT_EQ(denied.exit_code, 1);
  auto err = json(denied.err);
  EXPECT_EQ(err["code"], 7);
  EXPECT_EQ(err["status"], "PERMISSION_DENIED");
  EXPECT_NE(err["message"].get<std::string>().find("entrypoint_allowed"), std::string::npos);
  ASSERT_EQ(ctl("create-container c1 --sandbox s1 --image app:1").exit_code, 0);
  auto exec = ctl("exec c1 -- /bin/sh -c id");
  EXPECT_EQ(exec.exit_code, 1);
  EXPECT_EQ(json(exec.err)["status"], "PERMISSION_DENIED");
  auto missing = ctl("state nosuch");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(json(missing.err)["status"], "NOT_FOUND");
  // the wait blocks in the fake: --timeout ends it with DEADLINE_EXCEEDED
  auto wait = ctl("--timeout 0.2 wait c1");
  EXPECT_EQ(wait.exit_code, 1);
  EXPECT_EQ(json(wait.err)["status"], "DEADLINE_EXCEEDED");
}

TEST_F(AgentCtl, UsageErrorsExitTwoAndUnreachableExitsThree) {
  EXPECT_EQ(ctl("").exit_code, 2);  // no call
  EXPECT_EQ(ctl("no-such-call").exit_code, 2);
  EXPECT_EQ(ctl("create-container c1").exit_code, 2);  // --sandbox and --image required
  EXPECT_EQ(ctl("signal c1 notanumber").exit_code, 2);
  EXPECT_EQ(ctl("create-container c1 --sandbox s --image i --mount nocolons").exit_code, 2);
  auto gone = ctl("health", (dir_.path() / "nobody.sock").string());
  EXPECT_EQ(gone.exit_code, 3);
  EXPECT_NE(gone.err.find("ttrpc_unavailable"), std::string::npos) << gone.err;
}

}  // namespace
}  // namespace coffer::agent
