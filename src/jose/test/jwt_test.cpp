#include "jose/jwt.h"

#include <array>

#include <gtest/gtest.h>

#include "test_keys.h"

namespace coffer::jose {
namespace {

using crypto::KeyType;
using std::chrono::seconds;
using test::test_key;

constexpr std::array<JwsAlg, 2> kEs = {JwsAlg::kES256, JwsAlg::kEdDSA};
const TimePoint kNow = from_unix_seconds(1'750'000'000);

JwtValidation at_now() {
  JwtValidation v;
  v.now = kNow;
  return v;
}

std::string sign(const Json& claims) {
  auto t = jwt_sign(claims, test_key(KeyType::kEcP256), JwsAlg::kES256);
  EXPECT_TRUE(t);
  return *t;
}

const crypto::Key& pub() {
  static const crypto::Key k = test_key(KeyType::kEcP256).public_key();
  return k;
}

TEST(JwtTest, SignVerify) {
  Json claims = {
      {"iss", "kbs"}, {"aud", {"a", "b"}}, {"exp", 1'750'000'060}, {"iat", 1'750'000'000}};
  std::string token = sign(claims);
  EXPECT_EQ((*jws_peek_header(token))["typ"], "JWT");
  auto v = at_now();
  v.issuer = "kbs";
  v.audience = "b";
  auto got = jwt_verify(token, pub(), kEs, v);
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(*got, claims);
  EXPECT_EQ(*jwt_peek_claims(token), claims);
  v.audience = "c";
  EXPECT_EQ(jwt_verify(token, pub(), kEs, v).error().code, "token_audience_mismatch");
  v.audience.reset();
  v.issuer = "other";
  EXPECT_EQ(jwt_verify(token, pub(), kEs, v).error().code, "token_issuer_mismatch");
}

TEST(JwtTest, TimeChecks) {
  auto v = at_now();
  EXPECT_EQ(jwt_verify(sign({{"exp", 1'750'000'000}}), pub(), kEs, v).error().code,
            "token_expired");
  EXPECT_EQ(jwt_verify(sign({{"exp", 1'749'999'000}}), pub(), kEs, v).error().code,
            "token_expired");
  v.leeway = seconds(30);
  EXPECT_TRUE(jwt_verify(sign({{"exp", 1'749'999'990}}), pub(), kEs, v));
  v.leeway = seconds(0);
  EXPECT_EQ(jwt_verify(sign({{"exp", 1'750'000'100}, {"nbf", 1'750'000'010}}), pub(), kEs, v)
                .error()
                .code,
            "token_not_yet_valid");
  EXPECT_EQ(jwt_verify(sign({{"exp", 1'750'000'100}, {"iat", 1'750'000'010}}), pub(), kEs, v)
                .error()
                .code,
            "token_not_yet_valid");
  EXPECT_EQ(jwt_verify(sign({{"sub", "x"}}), pub(), kEs, v).error().code, "bad_jwt");
  v.require_exp = false;
  EXPECT_TRUE(jwt_verify(sign({{"sub", "x"}}), pub(), kEs, v));
  EXPECT_EQ(jwt_verify(sign({{"exp", "tomorrow"}}), pub(), kEs, v).error().code, "bad_jwt");
}

TEST(JwtTest, MaxLifetime) {
  auto v = at_now();
  v.max_lifetime = seconds(7200);  // KBS admin tokens
  EXPECT_TRUE(jwt_verify(sign({{"exp", 1'750'007'200}}), pub(), kEs, v));
  EXPECT_EQ(jwt_verify(sign({{"exp", 1'750'007'201}}), pub(), kEs, v).error().code,
            "token_lifetime_too_long");
  v.require_exp = false;
  EXPECT_EQ(jwt_verify(sign({{"sub", "x"}}), pub(), kEs, v).error().code, "bad_jwt");
}

TEST(JwtTest, RejectsNonObjectClaimsAndBadSignatures) {
  auto arr = jws_sign(as_bytes("[1,2]"), test_key(KeyType::kEcP256), JwsAlg::kES256);
  EXPECT_EQ(jwt_verify(*arr, pub(), kEs, at_now()).error().code, "bad_jwt");
  auto text = jws_sign(as_bytes("hello"), test_key(KeyType::kEcP256), JwsAlg::kES256);
  EXPECT_EQ(jwt_verify(*text, pub(), kEs, at_now()).error().code, "bad_jwt");
  std::string token = sign({{"exp", 1'750'000'100}});
  token[token.size() - 3] = token[token.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(jwt_verify(token, pub(), kEs, at_now()).error().code, "signature_invalid");
  EXPECT_EQ(jwt_sign(Json::array(), test_key(KeyType::kEcP256), JwsAlg::kES256).error().code,
            "bad_jwt");
  EXPECT_EQ(jwt_sign({{"s", std::string("\xff")}}, test_key(KeyType::kEcP256), JwsAlg::kES256)
                .error()
                .code,
            "bad_jwt");
  EXPECT_EQ(jwt_peek_claims("abc").error().code, "bad_jwt");
}

// A claim given twice (an early "exp" the signer saw and a late one a lenient parser would keep)
// refuses the token, also when the second spelling uses escapes.
TEST(JwtTest, RepeatedClaimIsRefused) {
  auto signed_payload = [](const std::string& payload) {
    auto t = jws_sign(as_bytes(payload), test_key(KeyType::kEcP256), JwsAlg::kES256);
    EXPECT_TRUE(t);
    return *t;
  };
  ASSERT_TRUE(jwt_verify(signed_payload(R"({"exp":1750000100})"), pub(), kEs, at_now()));
  for (const char* payload :
       {R"({"exp":1750000100,"exp":1750000100})", R"({"exp":1,"exp":1750000100})",
        R"({"exp":1750000100,"\u0065xp":1})", R"({"exp":1750000100,"sub":"a","sub":"b"})",
        R"({"exp":1750000100,"x":{"role":"user","role":"admin"}})"}) {
    auto r = jwt_verify(signed_payload(payload), pub(), kEs, at_now());
    ASSERT_FALSE(r) << payload;
    EXPECT_EQ(r.error().code, "bad_jwt") << payload;
    EXPECT_EQ(jwt_peek_claims(signed_payload(payload)).error().code, "bad_jwt") << payload;
  }
}

}  // namespace
}  // namespace coffer::jose
