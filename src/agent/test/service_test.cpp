// The agent service over a real Unix socket and a real character device (a pty in raw mode):
// dispatch, policy, status codes, measurements, calls in flight, disconnects, hostile payloads.
#include "agent/service.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <functional>
#include <future>
#include <thread>

#include "agent/test/fake_executor.h"
#include "coffer/agent/v1/agent.pb.h"
#include "core/file.h"
#include "core/test/temp_dir.h"
#include "core/version.h"
#include "net/ttrpc/client.h"

namespace coffer::agent {
namespace {

namespace pb = ::coffer::agent::v1;
using namespace std::chrono_literals;
using fakes::FakeExecutor;
using net::ttrpc::CallResult;
using net::ttrpc::Code;

constexpr std::string_view kDigest =
    "sha256:0000000000000000000000000000000000000000000000000000000000000001";

struct Agent {
  FakeExecutor executor;
  std::mutex mu;
  std::vector<guest::MeasurementEvent> events;
  int pulls = 0;
  bool measure_fails = false;
  std::shared_ptr<AgentPolicy> policy = AgentPolicy::builtin();
  std::unique_ptr<AgentService> service;

  Json image_env = Json::array();  // the pulled image's config Env

  explicit Agent(std::shared_ptr<AgentPolicy> p = nullptr,
                 const std::function<void(AgentServiceDeps&)>& extra = {}) {
    if (p) policy = std::move(p);
    AgentServiceDeps deps;
    deps.executor = &executor;
    deps.pull = [this](const std::string& ref, std::stop_token) -> Result<PulledImage> {
      std::lock_guard lock(mu);
      ++pulls;
      if (ref.starts_with("unsigned")) {
        return make_error("no_valid_signature", "no signature accepted by the policy");
      }
      PulledImage img;
      img.reference = ref;
      img.manifest_digest = std::string(kDigest);
      img.rootfs = "/images/1/rootfs";
      img.from_cache = pulls > 1;
      img.config.json = {{"config", {{"Env", image_env}}}};
      return img;
    };
    deps.measure = [this](const guest::MeasurementEvent& e) -> Status {
      std::lock_guard lock(mu);
      if (measure_fails) return make_error("tee_io_error", "rtmr extend failed");
      events.push_back(e);
      return ok();
    };
    deps.policy = policy;
    deps.guest = GuestInfo{"sim-tdx", "ab12", true};
    if (extra) extra(deps);
    service = std::make_unique<AgentService>(std::move(deps));
  }
};

struct Served {
  coffer::testing::TempDir dir;
  std::filesystem::path socket = dir.path() / "agent.sock";
  Agent agent;
  net::ttrpc::Server server;
  std::unique_ptr<net::ttrpc::Client> client;

  explicit Served(std::shared_ptr<AgentPolicy> p = nullptr, net::ttrpc::ServerConfig cfg = {},
                  const std::function<void(AgentServiceDeps&)>& extra = {})
      : agent(std::move(p), extra), server(cfg) {
    agent.service->register_methods(server);
    EXPECT_TRUE(server.listen_unix(socket));
    client = std::move(*net::ttrpc::Client::connect_unix(socket));
  }

  template <class Resp>
  Result<Resp> call(net::ttrpc::Client& c, std::string_view method,
                    const google::protobuf::Message& req, Code* code = nullptr) {
    CallResult r = c.call(kAgentService, method, req.SerializeAsString(), 20s);
    if (code != nullptr) *code = r ? Code::kOk : r.error().code;
    if (!r)
      return make_error(std::string(net::ttrpc::code_name(r.error().code)), r.error().message);
    Resp resp;
    if (!resp.ParseFromString(*r)) return make_error("bad_response", "unparsable");
    return resp;
  }
  template <class Resp>
  Result<Resp> call(std::string_view method, const google::protobuf::Message& req) {
    return call<Resp>(*client, method, req);
  }
  Code code_of(std::string_view method, const google::protobuf::Message& req) {
    Code code{};
    (void)call<pb::Empty>(*client, method, req, &code);
    return code;
  }
};

pb::CreateContainerRequest create_request(std::string id = "c1") {
  pb::CreateContainerRequest r;
  r.set_container_id(std::move(id));
  r.set_sandbox_id("s1");
  r.set_image("registry.local/app:1");
  return r;
}

void create_sandbox(Served& s) {
  pb::CreateSandboxRequest r;
  r.set_sandbox_id("s1");
  ASSERT_TRUE(s.call<pb::Empty>("CreateSandbox", r));
}

TEST(AgentService, LifecycleThroughTheSocket) {
  Served s;
  create_sandbox(s);
  auto created = s.call<pb::CreateContainerResponse>("CreateContainer", create_request());
  ASSERT_TRUE(created) << created.error().to_string();
  EXPECT_EQ(created->image_digest(), kDigest);
  EXPECT_EQ(created->container().status(), pb::CONTAINER_STATUS_CREATED);
  EXPECT_EQ(s.agent.executor.last_create.image_rootfs, "/images/1/rootfs");
  EXPECT_FALSE(s.agent.executor.last_create.overrides.entrypoint);

  pb::StartContainerRequest start;
  start.set_container_id("c1");
  ASSERT_TRUE(s.call<pb::Empty>("StartContainer", start));
  EXPECT_EQ(s.code_of("StartContainer", start), Code::kFailedPrecondition);  // bad_state

  pb::ContainerStateRequest st;
  st.set_container_id("c1");
  auto state = s.call<pb::ContainerStateResponse>("ContainerState", st);
  ASSERT_TRUE(state);
  EXPECT_EQ(state->container().status(), pb::CONTAINER_STATUS_RUNNING);
  EXPECT_EQ(state->container().pid(), 42);

  pb::WriteStdinRequest w;
  w.set_container_id("c1");
  w.set_data(std::string("hi\0there", 8));
  auto written = s.call<pb::WriteStdinResponse>("WriteStdin", w);
  ASSERT_TRUE(written);
  EXPECT_EQ(written->written(), 8U);
  pb::ReadOutputRequest rd;
  rd.set_container_id("c1");
  rd.set_max_bytes(5);
  auto out = s.call<pb::ReadOutputResponse>("ReadOutput", rd);
  ASSERT_TRUE(out);
  EXPECT_EQ(out->data(), std::string("hi\0th", 5));
  EXPECT_FALSE(out->eof());
  rd.set_stream(pb::OUTPUT_STREAM_STDERR);
  out = s.call<pb::ReadOutputResponse>("ReadOutput", rd);
  ASSERT_TRUE(out);
  EXPECT_TRUE(out->eof());

  pb::SignalProcessRequest sig;
  sig.set_container_id("c1");
  sig.set_signal(15);
  ASSERT_TRUE(s.call<pb::Empty>("SignalProcess", sig));
  EXPECT_EQ(s.agent.executor.last_signal, 15);

  pb::ContainerStatsRequest stats;
  stats.set_container_id("c1");
  auto st2 = s.call<pb::ContainerStatsResponse>("ContainerStats", stats);
  ASSERT_TRUE(st2);
  EXPECT_EQ(st2->memory_bytes(), 4096U);

  pb::ListContainersRequest list;
  auto listed = s.call<pb::ListContainersResponse>("ListContainers", list);
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->containers_size(), 1);
  list.set_sandbox_id("other");
  EXPECT_EQ(s.call<pb::ListContainersResponse>("ListContainers", list)->containers_size(), 0);

  pb::RemoveContainerRequest rm;
  rm.set_container_id("c1");
  ASSERT_TRUE(s.call<pb::Empty>("RemoveContainer", rm));
  EXPECT_EQ(s.code_of("RemoveContainer", rm), Code::kNotFound);
  EXPECT_EQ(s.code_of("ContainerState", st), Code::kNotFound);
}

TEST(AgentService, ComponentErrorsMapToStatusCodes) {
  Served s;
  create_sandbox(s);
  pb::CreateSandboxRequest sb;
  sb.set_sandbox_id("s1");
  EXPECT_EQ(s.code_of("CreateSandbox", sb), Code::kAlreadyExists);
  ASSERT_TRUE(s.call<pb::CreateContainerResponse>("CreateContainer", create_request()));
  EXPECT_EQ(s.code_of("CreateContainer", create_request()), Code::kAlreadyExists);
  auto other = create_request("c2");
  other.set_sandbox_id("nosuch");
  EXPECT_EQ(s.code_of("CreateContainer", other), Code::kNotFound);
  auto unsigned_image = create_request("c3");
  unsigned_image.set_image("unsigned.local/app:1");
  EXPECT_EQ(s.code_of("CreateContainer", unsigned_image), Code::kPermissionDenied);
  pb::ResizeTtyRequest tty;
  tty.set_container_id("c1");
  tty.set_rows(24);
  tty.set_cols(80);
  EXPECT_EQ(s.code_of("ResizeTty", tty), Code::kFailedPrecondition);

  EXPECT_EQ(to_rpc_status(Error{"cancelled", "x"}).code, Code::kCancelled);
  EXPECT_EQ(to_rpc_status(Error{"timeout", "x"}).code, Code::kDeadlineExceeded);
  EXPECT_EQ(to_rpc_status(Error{"kbs_unreachable", "x"}).code, Code::kUnavailable);
  EXPECT_EQ(to_rpc_status(Error{"runtime_failed", "x"}).code, Code::kInternal);
  EXPECT_EQ(to_rpc_status(Error{"bad_spec", "x"}).code, Code::kInvalidArgument);
  // messages are printable and bounded
  auto st = to_rpc_status(Error{"runtime_failed", std::string(5000, '\x01')});
  EXPECT_LT(st.message.size(), 3200U);  // 768 input bytes, each escaped to at most 4
  EXPECT_EQ(to_rpc_status(Error{"kbs_forbidden", "x"}).code, Code::kPermissionDenied);
  EXPECT_EQ(to_rpc_status(Error{"digest_mismatch", "x"}).code, Code::kPermissionDenied);
  EXPECT_EQ(to_rpc_status(Error{"sealed_secret_signature", "x"}).code, Code::kPermissionDenied);
  EXPECT_EQ(st.message.find('\x01'), std::string::npos);
}

TEST(AgentService, PolicyDenialsArePermissionDeniedWithTheRule) {
  Served s;
  create_sandbox(s);
  auto r = create_request();
  r.mutable_entrypoint()->add_values("/bin/sh");
  Code code{};
  auto denied = s.call<pb::Empty>(*s.client, "CreateContainer", r, &code);
  EXPECT_EQ(code, Code::kPermissionDenied);
  EXPECT_NE(denied.error().message.find("policy_denied"), std::string::npos);
  EXPECT_NE(denied.error().message.find("entrypoint_allowed"), std::string::npos)
      << denied.error().message;
  EXPECT_EQ(s.agent.pulls, 0);  // denied before anything was pulled

  pb::ExecProcessRequest exec;
  exec.set_container_id("c1");
  exec.add_args("/bin/sh");
  EXPECT_EQ(s.code_of("ExecProcess", exec), Code::kPermissionDenied);

  auto privileged = create_request();
  privileged.set_privileged(true);
  EXPECT_EQ(s.code_of("CreateContainer", privileged), Code::kPermissionDenied);
  auto workdir = create_request();
  workdir.set_working_dir("/tmp");
  EXPECT_EQ(s.code_of("CreateContainer", workdir), Code::kPermissionDenied);

  auto details = s.call<pb::GuestDetailsResponse>("GuestDetails", pb::GuestDetailsRequest());
  ASSERT_TRUE(details);
  EXPECT_EQ(details->tee(), "sim-tdx");
  EXPECT_EQ(details->init_data_digest(), "ab12");
  EXPECT_EQ(details->agent_version(), coffer::version());
  EXPECT_TRUE(details->config_from_init_data());
  EXPECT_FALSE(details->policy_from_init_data());
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> counts;
  for (const auto& d : details->policy_decisions()) counts[d.method()] = {d.allowed(), d.denied()};
  EXPECT_EQ(counts["CreateContainer"], std::make_pair(std::uint64_t{0}, std::uint64_t{3}));
  EXPECT_EQ(counts["ExecProcess"], std::make_pair(std::uint64_t{0}, std::uint64_t{1}));
  EXPECT_EQ(counts["CreateSandbox"], std::make_pair(std::uint64_t{1}, std::uint64_t{0}));
}

TEST(AgentService, CustomPolicyAllowsExecAndSeesTheRequestAsJson) {
  // the policy sees the request fields by their .proto names, unset optionals undefined
  const std::string rego = std::string(default_agent_policy()) +
                           "\nExecProcessRequest if {\n"
                           "  input.method == \"ExecProcess\"\n"
                           "  input.request.args == [\"/bin/date\"]\n"
                           "  input.request.terminal == false\n"
                           "  not input.request.user\n"
                           "}\n";
  auto policy = AgentPolicy::load(rego, true);
  ASSERT_TRUE(policy);
  Served s(std::move(*policy));
  create_sandbox(s);
  ASSERT_TRUE(s.call<pb::CreateContainerResponse>("CreateContainer", create_request()));
  pb::ExecProcessRequest exec;
  exec.set_container_id("c1");
  exec.add_args("/bin/date");
  auto r = s.call<pb::ExecProcessResponse>("ExecProcess", exec);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->exec_id(), "exec-1");
  exec.set_user("0");
  EXPECT_EQ(s.code_of("ExecProcess", exec), Code::kPermissionDenied);
}

TEST(AgentService, PulledImagesAndCreatedContainersAreMeasured) {
  Served s;
  create_sandbox(s);
  pb::PullImageRequest pull;
  pull.set_image("registry.local/app:1");
  auto pulled = s.call<pb::PullImageResponse>("PullImage", pull);
  ASSERT_TRUE(pulled);
  EXPECT_EQ(pulled->manifest_digest(), kDigest);
  ASSERT_TRUE(s.call<pb::PullImageResponse>("PullImage", pull));  // measured once per digest
  ASSERT_TRUE(s.call<pb::CreateContainerResponse>("CreateContainer", create_request()));
  ASSERT_EQ(s.agent.events.size(), 2U);
  EXPECT_EQ(s.agent.events[0].operation, "pull_image");
  EXPECT_EQ(s.agent.events[0].content, "registry.local/app:1@" + std::string(kDigest));
  EXPECT_EQ(s.agent.events[1].operation, "create_container");
  EXPECT_EQ(s.agent.events[1].content,
            "registry.local/app:1@" + std::string(kDigest) + ",container=c1,policy=allow");

  // a failed extension fails the call and nothing is created
  s.agent.measure_fails = true;
  EXPECT_EQ(s.code_of("CreateContainer", create_request("c2")), Code::kInternal);
  pb::ContainerStateRequest st;
  st.set_container_id("c2");
  EXPECT_EQ(s.code_of("ContainerState", st), Code::kNotFound);
}

// Unseals "sealed.ok-<value>" to <value>; anything else is a forged secret.
Result<Bytes> fake_unseal(std::string_view sealed) {
  constexpr std::string_view kOk = "sealed.ok-";
  if (!sealed.starts_with(kOk)) return make_error("sealed_secret_signature", "forged");
  return to_bytes(sealed.substr(kOk.size()));
}

TEST(AgentService, SealedSecretsInEnvironmentAndMountsAreUnsealedAndGoWithTheContainer) {
  coffer::testing::TempDir tmp;
  const auto sealed_dir = tmp.path() / "secrets";
  const auto secret_file = tmp.path() / "token";
  ASSERT_TRUE(write_file_atomic(secret_file, as_bytes(std::string_view("sealed.ok-file-value\n"))));
  const auto plain_file = tmp.path() / "plain";
  ASSERT_TRUE(write_file_atomic(plain_file, as_bytes(std::string_view("not sealed"))));
  const std::string rego = std::string(default_agent_policy()) +
                           "\nCreateContainerRequest if { count(input.request.mounts) <= 2 }\n";
  auto policy = AgentPolicy::load(rego, true);
  ASSERT_TRUE(policy);
  Served s(std::move(*policy), {}, [&](AgentServiceDeps& d) {
    d.unseal = fake_unseal;
    d.sealed_dir = sealed_dir;
  });
  s.agent.image_env = {"PATH=/bin", "IMAGE_SECRET=sealed.ok-image-value", "REPLACED=sealed.ok-x"};
  create_sandbox(s);
  auto req = create_request();
  req.add_env("REQ_SECRET=sealed.ok-request-value");
  req.add_env("REPLACED=plain");
  for (const auto& src : {secret_file, plain_file}) {
    auto* m = req.add_mounts();
    m->set_destination("/run/" + src.filename().string());
    m->set_type("bind");
    m->set_source(src.string());
  }
  auto r = s.call<pb::CreateContainerResponse>("CreateContainer", req);
  ASSERT_TRUE(r) << r.error().to_string();
  const auto& o = s.agent.executor.last_create.overrides;
  EXPECT_EQ(o.env, (std::vector<std::string>{"REQ_SECRET=request-value", "REPLACED=plain",
                                             "IMAGE_SECRET=image-value"}));
  ASSERT_EQ(o.mounts.size(), 2U);
  const std::filesystem::path unsealed = o.mounts[0].source;
  EXPECT_EQ(unsealed.parent_path(), sealed_dir / "c1");
  EXPECT_EQ(read_text_file(unsealed).value(), "file-value");
  EXPECT_EQ(std::filesystem::status(unsealed).permissions(), std::filesystem::perms::owner_read);
  EXPECT_EQ(o.mounts[1].source, plain_file.string());  // not sealed: as given

  // the same id again does not touch the existing container's secrets
  Code code{};
  (void)s.call<pb::CreateContainerResponse>(*s.client, "CreateContainer", req, &code);
  EXPECT_EQ(code, Code::kAlreadyExists);
  EXPECT_TRUE(std::filesystem::exists(unsealed));

  pb::RemoveContainerRequest rm;
  rm.set_container_id("c1");
  ASSERT_TRUE(s.call<pb::Empty>("RemoveContainer", rm));
  EXPECT_FALSE(std::filesystem::exists(sealed_dir / "c1"));

  // a forged secret fails the create: nothing created, nothing written
  auto forged = create_request("c2");
  forged.add_env("X=sealed.forged");
  EXPECT_EQ(s.code_of("CreateContainer", forged), Code::kPermissionDenied);
  auto forged_file = create_request("c3");
  ASSERT_TRUE(write_file_atomic(tmp.path() / "forged", as_bytes(std::string_view("sealed.bad"))));
  auto* m = forged_file.add_mounts();
  m->set_destination("/run/x");
  m->set_type("bind");
  m->set_source((tmp.path() / "forged").string());
  EXPECT_EQ(s.code_of("CreateContainer", forged_file), Code::kPermissionDenied);
  pb::ContainerStateRequest st;
  for (const char* id : {"c2", "c3"}) {
    st.set_container_id(id);
    EXPECT_EQ(s.code_of("ContainerState", st), Code::kNotFound) << id;
    EXPECT_FALSE(std::filesystem::exists(sealed_dir / id)) << id;
  }
}

TEST(AgentService, SealedSecretWithoutADataHubIsRefused) {
  Served s;
  s.agent.image_env = {"IMAGE_SECRET=sealed.ok-image-value"};
  create_sandbox(s);
  Code code{};
  auto r =
      s.call<pb::CreateContainerResponse>(*s.client, "CreateContainer", create_request(), &code);
  ASSERT_FALSE(r);
  EXPECT_EQ(code, Code::kInternal);
  EXPECT_NE(r.error().message.find("sealed_secrets_unavailable"), std::string::npos)
      << r.error().message;
}

TEST(AgentService, SandboxHooksSeeTheNetworkNamespaceAndAFailureUndoesTheSandbox) {
  std::vector<std::string> created;
  std::vector<std::string> removed;
  bool hook_fails = false;
  Served s(nullptr, {}, [&](AgentServiceDeps& d) {
    d.sandbox_hooks.on_created = [&](const std::string& id,
                                     const std::filesystem::path& netns) -> Status {
      if (hook_fails) return make_error("address_in_use", "127.0.0.1:8006");
      created.push_back(id + "@" + netns.string());
      return ok();
    };
    d.sandbox_hooks.on_removed = [&](const std::string& id) { removed.push_back(id); };
  });
  create_sandbox(s);
  EXPECT_EQ(created, std::vector<std::string>{"s1@/proc/self/ns/net"});
  hook_fails = true;
  pb::CreateSandboxRequest again;
  again.set_sandbox_id("s2");
  EXPECT_EQ(s.code_of("CreateSandbox", again), Code::kInternal);
  // s2 was removed again: creating it once the hook works succeeds
  hook_fails = false;
  EXPECT_TRUE(s.call<pb::Empty>("CreateSandbox", again));
  pb::RemoveSandboxRequest rm;
  rm.set_sandbox_id("s1");
  ASSERT_TRUE(s.call<pb::Empty>("RemoveSandbox", rm));
  EXPECT_EQ(removed, std::vector<std::string>{"s1"});
}

TEST(AgentService, BadInputIsInvalidArgument) {
  Served s;
  create_sandbox(s);
  // malformed protobuf payloads
  for (std::string bad : {std::string("\xff\xff\xff"), std::string("\x0a\x10short"),
                          std::string("\x0a\x02\xc3\x28")}) {  // invalid UTF-8 in a string
    auto r = s.client->call(kAgentService, "CreateContainer", bad, 20s);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Code::kInvalidArgument) << r.error().to_string();
  }
  auto bad_id = create_request("../../etc");
  EXPECT_EQ(s.code_of("CreateContainer", bad_id), Code::kInvalidArgument);
  auto no_image = create_request();
  no_image.clear_image();
  EXPECT_EQ(s.code_of("CreateContainer", no_image), Code::kInvalidArgument);
  auto bad_env = create_request();
  bad_env.add_env("NOEQUALS");
  EXPECT_EQ(s.code_of("CreateContainer", bad_env), Code::kInvalidArgument);
  auto rel_mount = create_request();
  rel_mount.add_mounts()->set_destination("relative");
  EXPECT_EQ(s.code_of("CreateContainer", rel_mount), Code::kInvalidArgument);
  pb::SignalProcessRequest sig;
  sig.set_container_id("c1");
  sig.set_signal(0);
  EXPECT_EQ(s.code_of("SignalProcess", sig), Code::kInvalidArgument);
  pb::ReadOutputRequest rd;
  rd.set_container_id("c1");
  rd.set_max_bytes(2U << 20U);
  EXPECT_EQ(s.code_of("ReadOutput", rd), Code::kInvalidArgument);
  pb::ExecProcessRequest exec;
  exec.set_container_id("c1");
  EXPECT_EQ(s.code_of("ExecProcess", exec), Code::kInvalidArgument);  // no args
  EXPECT_EQ(s.client->call(kAgentService, "Reboot", "", 20s).error().code, Code::kUnimplemented);
  // invalid input never reached the policy
  auto details = s.call<pb::GuestDetailsResponse>("GuestDetails", pb::GuestDetailsRequest());
  for (const auto& d : details->policy_decisions()) {
    EXPECT_NE(d.method(), "CreateContainer");
    EXPECT_NE(d.method(), "SignalProcess");
  }
}

TEST(AgentService, OversizedMessagesAreRefusedAndTheConnectionGoesOn) {
  Served s(nullptr, net::ttrpc::ServerConfig{16, 64, 64 << 10});
  create_sandbox(s);
  ASSERT_TRUE(s.call<pb::CreateContainerResponse>("CreateContainer", create_request()));
  pb::WriteStdinRequest w;
  w.set_container_id("c1");
  w.set_data(std::string(128 << 10, 'x'));
  EXPECT_EQ(s.code_of("WriteStdin", w), Code::kResourceExhausted);
  w.set_data(std::string(1000, 'x'));
  EXPECT_TRUE(s.call<pb::WriteStdinResponse>("WriteStdin", w));
  EXPECT_TRUE(s.call<pb::HealthResponse>("Health", pb::HealthRequest()));
}

TEST(AgentService, SixteenWaitsInFlightOnOneConnection) {
  Served s;
  create_sandbox(s);
  ASSERT_TRUE(s.call<pb::CreateContainerResponse>("CreateContainer", create_request()));
  pb::WaitProcessRequest w;
  w.set_container_id("c1");
  std::vector<std::future<Result<pb::WaitProcessResponse>>> waits;
  for (int i = 0; i < 16; ++i) {
    waits.push_back(std::async(std::launch::async, [&] {
      return s.call<pb::WaitProcessResponse>(*s.client, "WaitProcess", w);
    }));
  }
  ASSERT_TRUE(s.agent.executor.wait_until([](const FakeExecutor& e) { return e.waiting == 16; }));
  // the connection still answers other calls while 16 are blocked
  EXPECT_TRUE(s.call<pb::HealthResponse>("Health", pb::HealthRequest()));
  s.agent.executor.release();
  for (auto& f : waits) {
    auto r = f.get();
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(r->exit().exit_code(), 3);
  }
}

TEST(AgentService, ClientGoneMidCallStopsTheWait) {
  Served s;
  create_sandbox(s);
  ASSERT_TRUE(s.call<pb::CreateContainerResponse>("CreateContainer", create_request()));
  auto second = std::move(*net::ttrpc::Client::connect_unix(s.socket));
  pb::WaitProcessRequest w;
  w.set_container_id("c1");
  auto pending = std::async(std::launch::async, [&] {
    return second->call(kAgentService, "WaitProcess", w.SerializeAsString());
  });
  ASSERT_TRUE(s.agent.executor.wait_until([](const FakeExecutor& e) { return e.waiting == 1; }));
  second->close();
  EXPECT_EQ(pending.get().error().code, Code::kUnavailable);
  ASSERT_TRUE(s.agent.executor.wait_until([](const FakeExecutor& e) { return e.stops_seen == 1; }));
  EXPECT_TRUE(s.call<pb::HealthResponse>("Health", pb::HealthRequest()));
}

TEST(AgentService, DeadlineStopsTheWaitWithDeadlineExceeded) {
  Served s;
  create_sandbox(s);
  ASSERT_TRUE(s.call<pb::CreateContainerResponse>("CreateContainer", create_request()));
  pb::WaitProcessRequest w;
  w.set_container_id("c1");
  auto r = s.client->call(kAgentService, "WaitProcess", w.SerializeAsString(), 50ms);
  EXPECT_EQ(r.error().code, Code::kDeadlineExceeded);
  ASSERT_TRUE(s.agent.executor.wait_until([](const FakeExecutor& e) { return e.stops_seen == 1; }));
}

// A pty pair in raw mode: a character device with one byte stream and no accept.
TEST(AgentService, ServesACharacterDevice) {
  const int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(master, 0);
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  const int port = ::open(::ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(port, 0);
  struct stat st {};
  ASSERT_EQ(::fstat(port, &st), 0);
  ASSERT_TRUE(S_ISCHR(st.st_mode));
  for (int fd : {port, master}) {
    termios tio{};
    ASSERT_EQ(::tcgetattr(fd, &tio), 0);
    ::cfmakeraw(&tio);
    ASSERT_EQ(::tcsetattr(fd, TCSANOW, &tio), 0);
  }
  Agent agent;
  net::ttrpc::Server server;
  agent.service->register_methods(server);
  std::thread serving([&] { server.serve_fd(port); });
  {
    net::ttrpc::Client client(master);
    pb::CreateSandboxRequest sb;
    sb.set_sandbox_id("s1");
    ASSERT_TRUE(client.call(kAgentService, "CreateSandbox", sb.SerializeAsString(), 20s));
    auto r =
        client.call(kAgentService, "CreateContainer", create_request().SerializeAsString(), 20s);
    ASSERT_TRUE(r) << r.error().to_string();
    pb::ExecProcessRequest exec;
    exec.set_container_id("c1");
    exec.add_args("/bin/sh");
    EXPECT_EQ(client.call(kAgentService, "ExecProcess", exec.SerializeAsString(), 20s).error().code,
              Code::kPermissionDenied);
    pb::HealthResponse health;
    auto h = client.call(kAgentService, "Health", "", 20s);
    ASSERT_TRUE(h);
    ASSERT_TRUE(health.ParseFromString(*h));
    EXPECT_EQ(health.status(), "SERVING");
  }
  serving.join();
}

// ---- the two-enclave flow: ExportBundle / HandOverKey (the exporter itself is tested in
// src/runtime/test/exporter_test.cpp)

struct FakeExporter final : BundleExporter {
  std::vector<BundleExport> exports;
  std::vector<KeyHandOver> handovers;
  std::optional<Error> refuse;
  Result<BundleExported> export_bundle(const BundleExport& r) override {
    exports.push_back(r);
    return BundleExported{5, 12, 3456};
  }
  Result<KeyHandedOver> hand_over_key(const KeyHandOver& r) override {
    handovers.push_back(r);
    if (refuse) return std::unexpected(*refuse);
    return KeyHandedOver{Bytes{1}, Bytes{2}, Bytes{3}};
  }
};

pb::ExportBundleRequest export_request(std::string id = "b1") {
  pb::ExportBundleRequest r;
  r.set_bundle_id(std::move(id));
  r.set_key_handover("seal");
  r.mutable_container()->set_image("registry.local/app:1");
  return r;
}

TEST(AgentService, ExportBundleWithoutStorageIsFailedPrecondition) {
  Served s;
  Code code{};
  auto r = s.call<pb::ExportBundleResponse>(*s.client, "ExportBundle", export_request(), &code);
  ASSERT_FALSE(r);
  EXPECT_EQ(code, Code::kFailedPrecondition);
  EXPECT_NE(r.error().message.find("export_unavailable"), std::string::npos) << r.error().message;
}

TEST(AgentService, ExportBundleMeasuresThenHandsTheBundleToTheExporter) {
  auto exporter = std::make_shared<FakeExporter>();
  Served s(nullptr, {}, [&](AgentServiceDeps& d) { d.exporter = exporter; });
  auto r = s.call<pb::ExportBundleResponse>("ExportBundle", export_request());
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->image_digest(), kDigest);
  EXPECT_EQ(r->generation(), 5U);
  EXPECT_EQ(r->files(), 12U);
  ASSERT_EQ(exporter->exports.size(), 1U);
  const auto& e = exporter->exports[0];
  EXPECT_EQ(e.bundle_id, "b1");
  EXPECT_EQ(e.key_handover, "seal");
  EXPECT_EQ(e.rootfs, "/images/1/rootfs");
  EXPECT_EQ(e.config["root"]["path"], "rootfs");
  EXPECT_TRUE(e.config["process"].is_object()) << e.config.dump();
  std::lock_guard lock(s.agent.mu);
  ASSERT_EQ(s.agent.events.size(), 2U);  // pull_image, then export_bundle
  EXPECT_EQ(s.agent.events[1].operation, "export_bundle");
  EXPECT_NE(s.agent.events[1].content.find(",bundle=b1,key_handover=seal"), std::string::npos);
}

TEST(AgentService, ExportBundleFailsWhenTheMeasurementFails) {
  auto exporter = std::make_shared<FakeExporter>();
  Served s(nullptr, {}, [&](AgentServiceDeps& d) { d.exporter = exporter; });
  {
    std::lock_guard lock(s.agent.mu);
    s.agent.measure_fails = true;
  }
  EXPECT_FALSE(s.call<pb::ExportBundleResponse>("ExportBundle", export_request()));
  EXPECT_TRUE(exporter->exports.empty());
}

TEST(AgentService, ExportBundleRefusesBadRequests) {
  auto exporter = std::make_shared<FakeExporter>();
  Served s(nullptr, {}, [&](AgentServiceDeps& d) { d.exporter = exporter; });
  std::vector<pb::ExportBundleRequest> bad;
  for (const char* id : {"", "B1", "../x", "a/b", ".hidden"}) bad.push_back(export_request(id));
  bad.push_back(export_request());
  bad.back().set_key_handover("plain");
  bad.push_back(export_request());
  bad.back().clear_container();
  bad.push_back(export_request());
  bad.back().mutable_container()->add_mounts()->set_destination("/host");
  bad.push_back(export_request());
  bad.back().mutable_container()->set_privileged(true);
  for (const auto& r : bad) {
    EXPECT_EQ(s.code_of("ExportBundle", r), Code::kInvalidArgument) << r.ShortDebugString();
  }
  EXPECT_TRUE(exporter->exports.empty());
}

TEST(AgentService, ExportBundleOverridesFollowTheContainerRulesOfThePolicy) {
  auto exporter = std::make_shared<FakeExporter>();
  Served s(nullptr, {}, [&](AgentServiceDeps& d) { d.exporter = exporter; });
  auto r = export_request();
  r.mutable_container()->mutable_command()->add_values("/bin/sh");
  Code code{};
  auto denied = s.call<pb::ExportBundleResponse>(*s.client, "ExportBundle", r, &code);
  ASSERT_FALSE(denied);
  EXPECT_EQ(code, Code::kPermissionDenied);
  EXPECT_NE(denied.error().message.find("command_allowed"), std::string::npos)
      << denied.error().message;
  EXPECT_TRUE(exporter->exports.empty());
}

TEST(AgentService, HandOverKeyPassesThroughAndKeepsTheExportersRefusal) {
  auto exporter = std::make_shared<FakeExporter>();
  Served s(nullptr, {}, [&](AgentServiceDeps& d) { d.exporter = exporter; });
  pb::HandOverKeyRequest r;
  r.set_bundle_id("b1");
  r.set_report(std::string(432, 'r'));
  r.set_public_key(std::string(65, 'p'));
  auto answer = s.call<pb::HandOverKeyResponse>("HandOverKey", r);
  ASSERT_TRUE(answer) << answer.error().to_string();
  EXPECT_EQ(answer->ciphertext(), std::string(1, '\3'));
  ASSERT_EQ(exporter->handovers.size(), 1U);
  EXPECT_EQ(exporter->handovers[0].report.size(), 432U);
  exporter->refuse = Error{"peer_refused", "another signer"};
  EXPECT_EQ(s.code_of("HandOverKey", r), Code::kPermissionDenied);
  r.clear_report();
  EXPECT_EQ(s.code_of("HandOverKey", r), Code::kInvalidArgument);
}

}  // namespace

// PullProgress answers, on another connection, while a PullImage is in flight; PullImage then
// reports where its time went.
TEST(AgentServiceProgress, PullProgressWhileAPullIsInFlightAndTimingsAfter) {
  std::promise<void> polled;
  auto polled_future = polled.get_future().share();
  Served s(nullptr, {}, [&](AgentServiceDeps& deps) {
    deps.pull = [polled_future](const std::string& ref,
                                const std::stop_token&) -> Result<PulledImage> {
      polled_future.wait();  // held in flight until the test has seen its progress
      PulledImage img;
      img.reference = ref;
      img.manifest_digest = "sha256:" + std::string(64, 'a');
      img.rootfs = "/images/1/rootfs";
      img.timings = {.verify = 3000us, .key_fetch = 1500us, .layers = 20000us, .total = 25000us};
      return img;
    };
    deps.pull_progress = [] {
      return std::vector<PullProgress>{{.reference = "registry.local/app:1",
                                        .layer_index = 1,
                                        .layer_count = 3,
                                        .layer_bytes = 4096,
                                        .layer_total = 8192,
                                        .bytes_done = 12288,
                                        .elapsed = 5000us}};
    };
    deps.guest.startup_attestation = 7000us;
  });
  auto pull = std::async(std::launch::async, [&] {
    auto c = net::ttrpc::Client::connect_unix(s.socket);
    pb::PullImageRequest req;
    req.set_image("registry.local/app:1");
    return s.call<pb::PullImageResponse>(**c, "PullImage", req);
  });
  auto progress = s.call<pb::PullProgressResponse>("PullProgress", pb::PullProgressRequest());
  polled.set_value();
  ASSERT_TRUE(progress) << progress.error().to_string();
  ASSERT_EQ(progress->pulls_size(), 1);
  const auto& p = progress->pulls(0);
  EXPECT_EQ(p.image(), "registry.local/app:1");
  EXPECT_EQ(p.layer_index(), 1u);
  EXPECT_EQ(p.layer_count(), 3u);
  EXPECT_EQ(p.layer_bytes(), 4096u);
  EXPECT_EQ(p.layer_total(), 8192);
  EXPECT_EQ(p.bytes_done(), 12288u);
  EXPECT_EQ(p.elapsed_us(), 5000u);
  auto pulled = pull.get();
  ASSERT_TRUE(pulled) << pulled.error().to_string();
  EXPECT_EQ(pulled->attestation_us(), 7000u);
  EXPECT_EQ(pulled->verify_us(), 3000u);
  EXPECT_EQ(pulled->key_fetch_us(), 1500u);
  EXPECT_EQ(pulled->layers_us(), 20000u);
  EXPECT_EQ(pulled->pull_us(), 25000u);
}

// Without a progress source the answer is empty, not an error.
TEST(AgentServiceProgress, NoProgressSourceAnswersNoPulls) {
  Served s;
  auto progress = s.call<pb::PullProgressResponse>("PullProgress", pb::PullProgressRequest());
  ASSERT_TRUE(progress) << progress.error().to_string();
  EXPECT_EQ(progress->pulls_size(), 0);
}

}  // namespace coffer::agent
