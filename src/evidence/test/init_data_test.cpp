#include "evidence/init_data.h"

#include <gtest/gtest.h>

namespace coffer::evidence {
namespace {

constexpr std::string_view kSample = R"(version = "0.1.0"
algorithm = "sha256"

[data]
"aa.toml" = '''
[token_configs.kbs]
url = "http://127.0.0.1:8080"
'''
"policy.rego" = '''
package agent_policy
default AllowRequestsFailingPolicy := true
'''
)";

TEST(InitData, DigestOfTheTextAndDataAsClaims) {
  auto d = parse_init_data(kSample);
  ASSERT_TRUE(d) << d.error().to_string();
  EXPECT_EQ(d->algorithm, crypto::DigestAlg::kSha256);
  EXPECT_EQ(d->digest, crypto::sha256(as_bytes(kSample)));
  ASSERT_TRUE(d->claims.contains("policy.rego"));
  EXPECT_NE(d->claims["aa.toml"].get<std::string>().find("token_configs"), std::string::npos);
  // sha384 when no algorithm is named; {} without [data]
  auto bare = parse_init_data("version = \"0.1.0\"\n");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->digest, crypto::sha384(as_bytes("version = \"0.1.0\"\n")));
  EXPECT_EQ(bare->claims, Json::object());
}

TEST(InitData, RefusesBadDocuments) {
  for (std::string text : {std::string("algorithm = \"md5\"\n"), std::string("algorithm = 1\n"),
                           std::string("[data\n"), std::string("x = \"\xff\"\n")}) {
    auto d = parse_init_data(text);
    ASSERT_FALSE(d) << text;
    EXPECT_EQ(d.error().code, "bad_init_data") << text;
  }
}

// Found by sending it to /attest: a dotted key 20,000 levels deep under [data] overflowed the
// stack converting TOML to JSON. It is refused before any tree is built.
TEST(InitData, DeepDottedKeyIsRefused) {
  std::string key = "a";
  for (int i = 1; i < 20'000; ++i) key += ".a";
  auto d = parse_init_data("[data]\n" + key + " = 1\n");
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, "bad_init_data");
  EXPECT_NE(d.error().message.find("nesting deeper than 64 levels"), std::string::npos)
      << d.error().message;
}

}  // namespace
}  // namespace coffer::evidence
