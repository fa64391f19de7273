// The boot step's parts that run without an enclave: options, config.json, and the key by local
// attestation through a real ttrpc HandOverKey call (a tiny agent here: its own quote service and
// answer_key_request, as the agent enclave answers).
#include "runtime/appenclave/boot.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "coffer/agent/v1/agent.pb.h"
#include "core/test/temp_dir.h"
#include "net/ttrpc/server.h"
#include "runtime/appenclave/test/sim_platform.h"

namespace coffer::runtime::appenclave {
namespace {

namespace fs = std::filesystem;
namespace agentpb = ::coffer::agent::v1;
using evidence::sim::SgxIdentity;

using test::identity;
using test::SimEnclave;

BundleKey sample_key() { return BundleKey{Bytes(32, 0x42), 9}; }

// The agent enclave's side of HandOverKey, once per bundle.
class TinyAgent {
 public:
  TinyAgent(const fs::path& dir, const SgxIdentity& id) : enclave_(dir / "agent-qs.sock", id) {
    server_.add_method(
        "coffer.agent.v1.Agent", "HandOverKey",
        [this](const net::ttrpc::CallContext&, std::string_view body) -> net::ttrpc::CallResult {
          agentpb::HandOverKeyRequest req;
          if (!req.ParseFromString(std::string(body))) {
            return net::ttrpc::status_error(net::ttrpc::Code::kInvalidArgument, "bad request");
          }
          std::lock_guard lock(mu_);
          if (!key_) {
            return net::ttrpc::status_error(net::ttrpc::Code::kNotFound, "no key for the bundle");
          }
          KeyRequest request{to_bytes(req.report()), to_bytes(req.public_key())};
          auto answer = answer_key_request(enclave_.qs(), req.bundle_id(), request, *key_);
          if (!answer) {
            return net::ttrpc::status_error(net::ttrpc::Code::kPermissionDenied,
                                            answer.error().to_string());
          }
          key_.reset();  // handed over once
          agentpb::HandOverKeyResponse resp;
          resp.set_report(to_string(answer->report));
          resp.set_public_key(to_string(answer->public_key));
          resp.set_ciphertext(to_string(answer->ciphertext));
          return resp.SerializeAsString();
        });
    EXPECT_TRUE(server_.listen_unix(dir / "agent.sock"));
  }
  ~TinyAgent() { server_.stop(); }
  TinyAgent(const TinyAgent&) = delete;
  TinyAgent& operator=(const TinyAgent&) = delete;

 private:
  SimEnclave enclave_;
  net::ttrpc::Server server_;
  std::mutex mu_;
  std::optional<BundleKey> key_ = sample_key();
};

BootOptions local_options(const fs::path& dir, const std::string& app_socket,
                          std::uint8_t agent_mr = 0xa1) {
  BootOptions o;
  o.quote_service = dir / app_socket;
  o.storage = dir;
  o.bundle_id = "bundle-1";
  o.key_handover = "local";
  o.agent_socket = dir / "agent.sock";
  Fixed<32> mr{};
  mr.fill(agent_mr);
  o.agent_mr_enclave = hex_encode(mr);
  return o;
}

TEST(Boot, KeyByLocalAttestationOverTtrpcOnceOnly) {
  coffer::testing::TempDir dir;
  TinyAgent agent(dir.path(), identity(0xa1, 0x51));
  SimEnclave app(dir.path() / "app-qs.sock", identity(0xa2, 0x51));
  auto key = obtain_bundle_key(local_options(dir.path(), "app-qs.sock"));
  ASSERT_TRUE(key) << key.error().to_string();
  EXPECT_EQ(key->key, sample_key().key);
  EXPECT_EQ(key->generation, 9U);
  // The agent forgot it.
  auto again = obtain_bundle_key(local_options(dir.path(), "app-qs.sock"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, "key_handover_failed");
}

TEST(Boot, LocalAttestationRefusals) {
  coffer::testing::TempDir dir;
  TinyAgent agent(dir.path(), identity(0xa1, 0x51));
  // An app enclave of another signer: the agent refuses.
  SimEnclave rogue(dir.path() / "rogue-qs.sock", identity(0xa2, 0x52));
  auto refused = obtain_bundle_key(local_options(dir.path(), "rogue-qs.sock"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, "key_handover_failed");
  EXPECT_NE(refused.error().message.find("peer_refused"), std::string::npos)
      << refused.error().message;
  // The host names another MRENCLAVE for the agent: the REPORT does not verify there.
  SimEnclave app(dir.path() / "app-qs.sock", identity(0xa3, 0x51));
  auto wrong_target = obtain_bundle_key(local_options(dir.path(), "app-qs.sock", 0xee));
  ASSERT_FALSE(wrong_target);
  EXPECT_EQ(wrong_target.error().code, "key_handover_failed");
  EXPECT_NE(wrong_target.error().message.find("report_mac_mismatch"), std::string::npos)
      << wrong_target.error().message;
  // Nothing listens.
  BootOptions o = local_options(dir.path(), "app-qs.sock");
  o.agent_socket = dir.path() / "none.sock";
  EXPECT_EQ(obtain_bundle_key(o).error().code, "agent_unavailable");
}

TEST(Boot, Options) {
  BootOptions o;
  o.quote_service = "/q";
  o.storage = "/s";
  o.bundle_id = "b-1.x_y";
  EXPECT_TRUE(check_boot_options(o));
  for (const char* bad : {"", "B", "-a", "../x", "a/b", "a b"}) {
    o.bundle_id = bad;
    EXPECT_EQ(check_boot_options(o).error().code, "usage") << bad;
  }
  o.bundle_id = std::string(64, 'a');
  EXPECT_TRUE(check_boot_options(o));
  o.bundle_id = std::string(65, 'a');
  EXPECT_EQ(check_boot_options(o).error().code, "usage");
  o.bundle_id = "b";
  o.key_handover = "both";
  EXPECT_EQ(check_boot_options(o).error().code, "usage");
  o.key_handover = "local";
  EXPECT_EQ(check_boot_options(o).error().code, "usage");  // no agent socket / MRENCLAVE
  o.agent_socket = "/a.sock";
  o.agent_mr_enclave = std::string(64, '0');
  EXPECT_TRUE(check_boot_options(o));
}

TEST(Boot, WorkloadSpecFromConfig) {
  auto w = parse_workload_spec(
      R"({"process":{"args":["sh","-c","x"],"env":["A=1","PATH=/bin"],"cwd":"/w",)"
      R"("user":{"uid":1000,"gid":100,"additionalGids":[5,6]}}})");
  ASSERT_TRUE(w) << w.error().to_string();
  EXPECT_EQ(w->args, (std::vector<std::string>{"sh", "-c", "x"}));
  EXPECT_EQ(w->env, (std::vector<std::string>{"A=1", "PATH=/bin"}));
  EXPECT_EQ(w->cwd, "/w");
  EXPECT_EQ(w->uid, 1000U);
  EXPECT_EQ(w->gid, 100U);
  EXPECT_EQ(w->additional_gids, (std::vector<std::uint32_t>{5, 6}));
  auto defaults = parse_workload_spec(R"({"process":{"args":["/x"]}})").value();
  EXPECT_EQ(defaults.cwd, "/");
  EXPECT_EQ(defaults.uid, 0U);
  EXPECT_TRUE(defaults.env.empty());
  for (const char* bad : {
           R"([])",
           R"({})",
           R"({"process":{}})",
           R"({"process":{"args":[]}})",
           R"({"process":{"args":[""]}})",
           R"({"process":{"args":[1]}})",
           R"({"process":{"args":["a\u0000b"]}})",
           R"({"process":{"args":["x"],"cwd":"rel"}})",
           R"({"process":{"args":["x"],"env":"A=1"}})",
           R"({"process":{"args":["x"],"user":{"uid":-1}}})",
           R"({"process":{"args":["x"],"user":{"uid":4294967296}}})",
           R"({"process":{"args":["x"],"terminal":true}})",
           R"({"process":{"args":["x"],"args":["y"]}})",
       }) {
    auto r = parse_workload_spec(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, "bad_config") << bad;
  }
  EXPECT_EQ(parse_workload_spec(std::string(kMaxConfigBytes + 1, ' ')).error().code, "bad_config");
}

}  // namespace
}  // namespace coffer::runtime::appenclave
