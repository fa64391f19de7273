// parse_guest_config: CoCo's init-data with aa.toml/cdh.toml/policy.rego, strict types, unknown
// keys ignored; check_init_data_binding against the simulated TEE's quote service.
#include <gtest/gtest.h>

#include "crypto/digest.h"
#include "guest/aa/sim_attester.h"
#include "guest/config.h"
#include "guest/test/sim_fixture.h"

namespace coffer::guest {
namespace {

const std::string kCert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

// As CoCo deployments write it (guest-components example.config.toml, trustee operator docs).
std::string coco_init_data(const std::string& algorithm = "sha384") {
  return "version = \"0.1.0\"\nalgorithm = \"" + algorithm + "\"\n" + R"([data]
"aa.toml" = '''
[token_configs]
[token_configs.coco_as]
url = "https://as.example:8080"
[token_configs.kbs]
url = "https://kbs.example:8080/"
cert = """
)" + kCert +
         R"("""
'''
"cdh.toml" = '''
socket = 'unix:///run/confidential-containers/cdh.sock'
credentials = []
[kbc]
name = "cc_kbc"
url = "https://kbs.example:8080"
[image]
max_concurrent_layer_downloads_per_image = 3
image_security_policy_uri = "kbs:///default/security-policy/test"
authenticated_registry_credentials_uri = "kbs:///default/credential/test"
insecure_registries = ["127.0.0.1:5000"]
require_encrypted_layers = true
[image.registry_config]
unqualified-search-registries = ["docker.io"]
[sealed_secret]
verification_keys = ["kbs:///default/sealed-secret-key/1"]
'''
"policy.rego" = '''
package agent_policy
default CreateContainerRequest := true
'''
"unknown.file" = 42
)";
}

TEST(GuestConfig, ParsesCocoInitData) {
  const std::string text = coco_init_data();
  auto c = parse_guest_config(text);
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_TRUE(c->from_init_data);
  EXPECT_EQ(c->init_data_toml, text);
  EXPECT_EQ(c->init_data_digest, crypto::sha384(as_bytes(text)));
  EXPECT_EQ(c->kbs_url, "https://kbs.example:8080");
  EXPECT_EQ(c->kbs_cert_pem, kCert);
  EXPECT_EQ(c->image_security_policy_uri, "kbs:///default/security-policy/test");
  EXPECT_EQ(c->registry_credentials_uri, "kbs:///default/credential/test");
  EXPECT_EQ(c->insecure_registries, std::vector<std::string>{"127.0.0.1:5000"});
  EXPECT_TRUE(c->require_encrypted_layers);
  EXPECT_EQ(c->sealed_secret_keys, std::vector<std::string>{"kbs:///default/sealed-secret-key/1"});
  EXPECT_NE(c->agent_policy_rego.find("package agent_policy"), std::string::npos);
}

TEST(GuestConfig, DigestFollowsTheAlgorithm) {
  const std::string text = coco_init_data("sha512");
  auto c = parse_guest_config(text);
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->init_data_algorithm, crypto::DigestAlg::kSha512);
  EXPECT_EQ(c->init_data_digest, crypto::sha512(as_bytes(text)));
}

TEST(GuestConfig, KbcAloneConfiguresTheKbs) {
  auto c = parse_guest_config(
      "version = \"0.1.0\"\n[data]\n\"cdh.toml\" = '''\n[kbc]\nname = \"cc_kbc\"\n"
      "url = \"http://127.0.0.1:8080\"\nkbs_cert = \"PEM\"\n'''\n");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->kbs_url, "http://127.0.0.1:8080");
  EXPECT_EQ(c->kbs_cert_pem, "PEM");
  EXPECT_TRUE(c->agent_policy_rego.empty());
}

TEST(GuestConfig, EmptyDataIsDefaults) {
  auto c = parse_guest_config("version = \"0.1.0\"\nalgorithm = \"sha256\"\n");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_TRUE(c->from_init_data);
  EXPECT_TRUE(c->kbs_url.empty());
  EXPECT_EQ(c->init_data_digest.size(), 32U);
}

struct Bad {
  const char* name;
  std::string text;
  const char* message_part;
};

class GuestConfigRefuses : public ::testing::TestWithParam<Bad> {};

TEST_P(GuestConfigRefuses, WithBadInitData) {
  auto c = parse_guest_config(GetParam().text);
  ASSERT_FALSE(c) << GetParam().name;
  EXPECT_EQ(c.error().code, "bad_init_data");
  EXPECT_NE(c.error().message.find(GetParam().message_part), std::string::npos)
      << c.error().message;
}

const std::string kHead = "version = \"0.1.0\"\n[data]\n";

INSTANTIATE_TEST_SUITE_P(
    Negative, GuestConfigRefuses,
    ::testing::Values(
        Bad{"truncated", coco_init_data().substr(0, 200), "not"},
        Bad{"not toml", "version = \n", "not TOML"},
        Bad{"bad algorithm", "algorithm = \"md5\"\n", "algorithm"},
        Bad{"algorithm type", "algorithm = 384\n", "algorithm"},
        Bad{"version type", "version = 1\n", "version"}, Bad{"data type", "data = \"x\"\n", "data"},
        Bad{"aa.toml type", kHead + "\"aa.toml\" = 1\n", "aa.toml"},
        Bad{"aa.toml not toml", kHead + "\"aa.toml\" = \"[token_configs\"\n", "aa.toml"},
        Bad{"token_configs type", kHead + "\"aa.toml\" = \"token_configs = 1\"\n", "token_configs"},
        Bad{"kbs url type", kHead + "\"aa.toml\" = \"[token_configs.kbs]\\nurl = 8080\"\n",
            "token_configs.kbs.url"},
        Bad{"kbc url disagrees",
            kHead + "\"aa.toml\" = \"[token_configs.kbs]\\nurl = \\\"http://a:1\\\"\"\n"
                    "\"cdh.toml\" = \"[kbc]\\nname = \\\"cc_kbc\\\"\\nurl = \\\"http://b:1\\\"\"\n",
            "disagrees"},
        Bad{"kbs cert disagrees",
            kHead + "\"aa.toml\" = \"[token_configs.kbs]\\ncert = \\\"A\\\"\"\n"
                    "\"cdh.toml\" = \"[kbc]\\nkbs_cert = \\\"B\\\"\"\n",
            "kbs_cert disagrees"},
        Bad{"offline kbc", kHead + "\"cdh.toml\" = \"[kbc]\\nname = \\\"offline_fs_kbc\\\"\"\n",
            "cc_kbc"},
        Bad{"policy uri not kbs",
            kHead +
                "\"cdh.toml\" = \"[image]\\nimage_security_policy_uri = \\\"file:///etc/p\\\"\"\n",
            "image_security_policy_uri"},
        Bad{"policy uri traversal",
            kHead + "\"cdh.toml\" = \"[image]\\nimage_security_policy_uri = "
                    "\\\"kbs:///default/../x\\\"\"\n",
            "invalid segment"},
        Bad{"credentials uri segments",
            kHead + "\"cdh.toml\" = \"[image]\\nauthenticated_registry_credentials_uri = "
                    "\\\"kbs:///a/b\\\"\"\n",
            "kbs:///repo/type/tag"},
        Bad{"insecure registries type",
            kHead + "\"cdh.toml\" = \"[image]\\ninsecure_registries = \\\"r\\\"\"\n",
            "insecure_registries"},
        Bad{"insecure registries element",
            kHead + "\"cdh.toml\" = \"[image]\\ninsecure_registries = [1]\"\n",
            "insecure_registries"},
        Bad{"require encrypted type",
            kHead + "\"cdh.toml\" = \"[image]\\nrequire_encrypted_layers = \\\"yes\\\"\"\n",
            "require_encrypted_layers"},
        Bad{"image type", kHead + "\"cdh.toml\" = \"image = 1\"\n", "image"},
        Bad{"sealed keys not kbs",
            kHead +
                "\"cdh.toml\" = \"[sealed_secret]\\nverification_keys = [\\\"https://x\\\"]\"\n",
            "verification_keys"},
        Bad{"policy.rego type", kHead + "\"policy.rego\" = [\"x\"]\n", "policy.rego"},
        Bad{"too deep", "a = " + std::string(100, '[') + std::string(100, ']') + "\n", "TOML"},
        Bad{"too large", "# " + std::string(kMaxInitDataBytes, 'x') + "\n", "limit"}),
    [](const ::testing::TestParamInfo<Bad>& p) {
      std::string n = p.param.name;
      for (char& ch : n)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      return n;
    });

// --- binding: the quote service launched with a given init-data digest ---

using testing::SimEnclave;

TEST(InitDataBinding, SimTdxMatchesAndMismatches) {
  const std::string text = coco_init_data();
  SimEnclave enclave("agent v1", false, text);
  aa::SimAttester attester(aa::SimAttester::Kind::kTdx, enclave.socket());
  auto config = parse_guest_config(text);
  ASSERT_TRUE(config) << config.error().to_string();
  EXPECT_TRUE(check_init_data_binding(*config, attester));

  auto other = parse_guest_config(text + "# one more byte\n");
  ASSERT_TRUE(other);
  auto s = check_init_data_binding(*other, attester);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, "init_data_mismatch");
  EXPECT_NE(s.error().message.find("MRCONFIGID"), std::string::npos);
}

TEST(InitDataBinding, SimSnpMatchesAndMismatches) {
  const std::string text = coco_init_data("sha256");  // HOST_DATA holds 32 bytes
  SimEnclave enclave("agent v1", false, text);
  aa::SimAttester attester(aa::SimAttester::Kind::kSnp, enclave.socket());
  auto config = parse_guest_config(text);
  ASSERT_TRUE(config) << config.error().to_string();
  EXPECT_TRUE(check_init_data_binding(*config, attester));

  auto other = parse_guest_config(coco_init_data("sha256") + "\n");
  ASSERT_TRUE(other);
  auto s = check_init_data_binding(*other, attester);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, "init_data_mismatch");
  EXPECT_NE(s.error().message.find("HOST_DATA"), std::string::npos);
}

TEST(InitDataBinding, EnclaveWithoutInitDataRefusesAnyInitData) {
  SimEnclave enclave("agent v1", false, /*init_data=*/"");
  aa::SimAttester attester(aa::SimAttester::Kind::kTdx, enclave.socket());
  auto config = parse_guest_config(coco_init_data());
  ASSERT_TRUE(config);
  EXPECT_EQ(check_init_data_binding(*config, attester).error().code, "init_data_mismatch");
  // No init-data: built-in defaults, nothing to compare.
  EXPECT_TRUE(check_init_data_binding(GuestConfig{}, attester));
}

}  // namespace
}  // namespace coffer::guest
