// The `coffer image` commands end to end through the coffer executable.
#include <gtest/gtest.h>

#include <mutex>

#include "core/file.h"
#include "jose/jwt.h"
#include "net/http_server.h"
#include "oci/test/test_util.h"

namespace coffer::oci {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

const std::string kTool = std::string(COFFER_BINARY_DIR) + "/apps/coffer";

testing::CommandResult tool(std::vector<std::string> args) {
  args.insert(args.begin(), {kTool, "image"});
  return testing::run(args);
}

TEST(ImageCli, KeygenEncryptInspectUnpackSignVerify) {
  TempDir tmp;
  auto p = [&](const std::string& n) { return (tmp.path() / n).string(); };
  testing::write_image(tmp.path() / "img", "v1",
                       {testing::make_tar({{.name = "hello", .content = "world"}})});
  ASSERT_TRUE(write_file_atomic(tmp.path() / "pw", as_bytes("secret\n")));
  auto kg = tool({"keygen", "--output-key-prefix", p("cosign"), "--password-file", p("pw")});
  ASSERT_EQ(kg.exit_code, 0) << kg.output;
  ASSERT_TRUE(fs::exists(tmp.path() / "cosign.key"));

  auto jwe = crypto::Key::generate(crypto::KeyType::kEcP256).value();
  ASSERT_TRUE(write_file_atomic(tmp.path() / "pub.pem", as_bytes(jwe.public_pem())));
  ASSERT_TRUE(write_file_atomic(tmp.path() / "priv.pem", as_bytes(jwe.private_pem().value())));
  auto enc = tool({"encrypt", "oci:" + p("img") + ":v1", "oci:" + p("enc") + ":v1", "--recipient",
                   "jwe:" + p("pub.pem"), "--kbs-key", "kbs:///default/key/1", "--kbs-key-out",
                   p("kbs.key")});
  ASSERT_EQ(enc.exit_code, 0) << enc.output;
  EXPECT_NE(enc.output.find("layer 1/1"), std::string::npos) << enc.output;
  EXPECT_EQ(read_file(tmp.path() / "kbs.key")->size(), 32u);

  auto inspect = tool({"inspect", "oci:" + p("enc") + ":v1"});
  ASSERT_EQ(inspect.exit_code, 0) << inspect.output;
  auto j = parse_json(inspect.output.substr(inspect.output.find('{'))).value();
  EXPECT_EQ(j["layers"][0]["encrypted"], true);
  EXPECT_NE(j["layers"][0]["recipients"].dump().find("kbs:///default/key/1"), std::string::npos);

  auto denied =
      tool({"unpack", "oci:" + p("enc") + ":v1", "--bundle", p("b0"), "--insecure-policy"});
  EXPECT_EQ(denied.exit_code, 1);
  EXPECT_NE(denied.output.find("missing_decryption_key"), std::string::npos) << denied.output;
  // The hint names the options this command has.
  EXPECT_NE(denied.output.find("hint: give the key of one of the layer's recipients: "
                               "--decryption-key"),
            std::string::npos)
      << denied.output;
  EXPECT_FALSE(fs::exists(tmp.path() / "b0"));

  auto by_kbs = tool({"unpack", "oci:" + p("enc") + ":v1", "--bundle", p("b1"), "--insecure-policy",
                      "--kbs-key-file", "kbs:///default/key/1=" + p("kbs.key")});
  ASSERT_EQ(by_kbs.exit_code, 0) << by_kbs.output;
  EXPECT_EQ(read_text_file(tmp.path() / "b1/rootfs/hello").value(), "world");
  EXPECT_TRUE(fs::exists(tmp.path() / "b1/config.json"));
  auto by_jwe = tool(
      {"decrypt", "oci:" + p("enc") + ":v1", "oci:" + p("dec") + ":v1", "--key", p("priv.pem")});
  ASSERT_EQ(by_jwe.exit_code, 0) << by_jwe.output;

  auto sign = tool({"sign", "oci:" + p("enc") + ":v1", "--key", p("cosign.key"), "--password-file",
                    p("pw"), "--identity", "example.com/app:v1"});
  ASSERT_EQ(sign.exit_code, 0) << sign.output;
  auto policy = [&](const std::string& pub) {
    return testing::policy_json(
        testing::sigstore_signed(
            pub, {{"type", "exactReference"}, {"dockerReference", "example.com/app:v1"}}),
        "oci");
  };
  ASSERT_TRUE(write_file_atomic(tmp.path() / "policy.json", as_bytes(policy(p("cosign.pub")))));
  auto ok = tool({"verify", "oci:" + p("enc") + ":v1", "--policy", p("policy.json")});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  ASSERT_TRUE(write_file_atomic(tmp.path() / "other.pub", as_bytes(jwe.public_pem())));
  ASSERT_TRUE(write_file_atomic(tmp.path() / "policy2.json", as_bytes(policy(p("other.pub")))));
  auto bad = tool({"verify", "oci:" + p("enc") + ":v1", "--policy", p("policy2.json")});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.output.find("no_valid_signature"), std::string::npos) << bad.output;
  auto gated = tool({"unpack", "oci:" + p("enc") + ":v1", "--rootfs", p("r2"), "--policy",
                     p("policy2.json"), "--key", p("priv.pem")});
  EXPECT_EQ(gated.exit_code, 1) << gated.output;
  EXPECT_FALSE(fs::exists(tmp.path() / "r2"));
}

TEST(ImageCli, EncryptRegistersTheKeyInTheKbs) {
  TempDir tmp;
  auto p = [&](const std::string& n) { return (tmp.path() / n).string(); };
  testing::write_image(tmp.path() / "img", "v1",
                       {testing::make_tar({{.name = "a", .content = "b"}})});
  auto admin = crypto::Key::generate(crypto::KeyType::kEd25519).value();
  ASSERT_TRUE(write_file_atomic(tmp.path() / "admin.pem", as_bytes(admin.private_pem().value())));
  std::mutex mu;
  std::string path_seen, body_seen;
  bool token_ok = false;
  net::HttpServer kbs({.sockets = {"127.0.0.1:0"}}, [&](const net::Request& r) {
    std::lock_guard lock(mu);
    path_seen = r.path();
    body_seen = r.body;
    auto auth = r.headers.get("Authorization").value_or("");
    jose::JwtValidation v{.now = std::chrono::system_clock::now(),
                          .max_lifetime = std::chrono::hours(2)};
    std::vector<jose::JwsAlg> algs{jose::JwsAlg::kEdDSA};
    token_ok =
        auth.starts_with("Bearer ") && jose::jwt_verify(auth.substr(7), admin, algs, v).has_value();
    return net::Response::text(token_ok ? 200 : 401, "");
  });
  ASSERT_TRUE(kbs.start());
  std::string url = "http://127.0.0.1:" + std::to_string(kbs.bound_ports()[0]);
  auto enc = tool({"encrypt", "oci:" + p("img") + ":v1", "oci:" + p("enc") + ":v1", "--kbs-key",
                   "kbs:///default/image-key/app", "--kbs-url", url, "--kbs-admin-key",
                   p("admin.pem"), "--kbs-key-out", p("k")});
  ASSERT_EQ(enc.exit_code, 0) << enc.output;
  std::lock_guard lock(mu);
  EXPECT_TRUE(token_ok);
  EXPECT_EQ(path_seen, "/kbs/v0/resource/default/image-key/app");
  EXPECT_EQ(to_bytes(body_seen), read_file(tmp.path() / "k").value());
}

}  // namespace
}  // namespace coffer::oci
