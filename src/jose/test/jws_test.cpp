#include "jose/jws.h"

#include <array>

#include <gtest/gtest.h>

#include "jose/jwk.h"
#include "test_keys.h"

namespace coffer::jose {
namespace {

using crypto::KeyType;
using test::test_key;

constexpr std::array<JwsAlg, 5> kAll = {JwsAlg::kES256, JwsAlg::kES384, JwsAlg::kRS256,
                                        JwsAlg::kPS256, JwsAlg::kEdDSA};

KeyType key_type_for(JwsAlg alg) {
  switch (alg) {
    case JwsAlg::kES256:
      return KeyType::kEcP256;
    case JwsAlg::kES384:
      return KeyType::kEcP384;
    case JwsAlg::kEdDSA:
      return KeyType::kEd25519;
    default:
      return KeyType::kRsa;
  }
}

std::string b64(std::string_view s) { return base64url_encode(as_bytes(s)); }

class JwsAlgTest : public ::testing::TestWithParam<JwsAlg> {};

TEST_P(JwsAlgTest, SignVerifyAndTamper) {
  JwsAlg alg = GetParam();
  const auto& key = test_key(key_type_for(alg));
  auto jws = jws_sign(as_bytes("hello"), key, alg, Json{{"kid", "k1"}});
  ASSERT_TRUE(jws) << jws.error().to_string();
  auto ok = jws_verify(*jws, key.public_key(), kAll);
  ASSERT_TRUE(ok) << ok.error().to_string();
  EXPECT_EQ(to_string(ok->payload), "hello");
  EXPECT_EQ(ok->header["alg"], jws_alg_name(alg));
  EXPECT_EQ(ok->header["kid"], "k1");
  EXPECT_EQ((*jws_peek_header(*jws))["kid"], "k1");

  // Every single-character change in the payload or the signature breaks it.
  auto dot2 = jws->rfind('.');
  for (std::size_t pos : {jws->find('.') + 1, dot2 - 1, dot2 + 1, jws->size() - 2}) {
    std::string bad = *jws;
    bad[pos] = bad[pos] == 'A' ? 'B' : 'A';
    auto r = jws_verify(bad, key, kAll);
    ASSERT_FALSE(r) << pos;
    EXPECT_TRUE(r.error().code == "signature_invalid" || r.error().code == "bad_jws")
        << r.error().to_string();
  }
  // Truncated.
  EXPECT_FALSE(jws_verify(jws->substr(0, jws->size() - 4), key, kAll));
  EXPECT_EQ(jws_verify(jws->substr(0, dot2), key, kAll).error().code, "bad_jws");
  // Another key of the same type.
  auto other = crypto::Key::generate(key.type(), 2048);
  EXPECT_EQ(jws_verify(*jws, *other, kAll).error().code, "signature_invalid");
  // Not in the allowed list.
  std::array<JwsAlg, 1> only{alg == JwsAlg::kES256 ? JwsAlg::kES384 : JwsAlg::kES256};
  EXPECT_EQ(jws_verify(*jws, key, only).error().code, "alg_not_allowed");
}

INSTANTIATE_TEST_SUITE_P(All, JwsAlgTest, ::testing::ValuesIn(kAll));

TEST(JwsTest, AlgNames) {
  for (JwsAlg a : kAll) EXPECT_EQ(*parse_jws_alg(jws_alg_name(a)), a);
  EXPECT_EQ(parse_jws_alg("none").error().code, "alg_not_allowed");
  EXPECT_EQ(parse_jws_alg("HS256").error().code, "alg_not_allowed");
  EXPECT_EQ(*default_jws_alg(test_key(KeyType::kEcP384)), JwsAlg::kES384);
  EXPECT_EQ(default_jws_alg(test_key(KeyType::kEcP521)).error().code, "alg_key_mismatch");
}

TEST(JwsTest, RejectsAlgNone) {
  const auto& key = test_key(KeyType::kEcP256);
  std::string token = b64(R"({"alg":"none"})") + "." + b64("x") + ".";
  EXPECT_EQ(jws_verify(token, key, kAll).error().code, "bad_jws");  // empty signature
  token += "AAAA";
  EXPECT_EQ(jws_verify(token, key, kAll).error().code, "alg_not_allowed");
  token = b64(R"({"alg":"HS256"})") + "." + b64("x") + ".AAAA";
  EXPECT_EQ(jws_verify(token, key, kAll).error().code, "alg_not_allowed");
  token = b64(R"({"typ":"JWT"})") + "." + b64("x") + ".AAAA";
  EXPECT_EQ(jws_verify(token, key, kAll).error().code, "bad_jws");
}

TEST(JwsTest, AlgKeyConfusion) {
  // ES256 header verified with a P-384 key, and the reverse.
  auto p256 = jws_sign(as_bytes("x"), test_key(KeyType::kEcP256), JwsAlg::kES256);
  EXPECT_EQ(jws_verify(*p256, test_key(KeyType::kEcP384), kAll).error().code, "alg_key_mismatch");
  auto p384 = jws_sign(as_bytes("x"), test_key(KeyType::kEcP384), JwsAlg::kES384);
  EXPECT_EQ(jws_verify(*p384, test_key(KeyType::kEcP256), kAll).error().code, "alg_key_mismatch");
  // RS256 signature relabelled PS256.
  auto rs = *jws_sign(as_bytes("x"), test_key(KeyType::kRsa), JwsAlg::kRS256);
  std::string relabelled = b64(R"({"alg":"PS256"})") + rs.substr(rs.find('.'));
  EXPECT_EQ(jws_verify(relabelled, test_key(KeyType::kRsa), kAll).error().code,
            "signature_invalid");
  // Signing with a key the alg does not fit.
  EXPECT_EQ(jws_sign(as_bytes("x"), test_key(KeyType::kEd25519), JwsAlg::kES256).error().code,
            "alg_key_mismatch");
  auto small_rsa = crypto::Key::generate(KeyType::kRsa, 1024);
  EXPECT_EQ(jws_sign(as_bytes("x"), *small_rsa, JwsAlg::kRS256).error().code, "alg_key_mismatch");
}

TEST(JwsTest, MalformedInput) {
  const auto& key = test_key(KeyType::kEcP256);
  auto good = *jws_sign(as_bytes("x"), key, JwsAlg::kES256);
  for (std::string bad :
       {std::string(""), std::string("a.b"), std::string("a.b.c.d"), good + "=", " " + good,
        std::string("!!.e30.AAAA"), b64("not json") + ".e30.AAAA", b64("[1]") + ".e30.AAAA"}) {
    auto r = jws_verify(bad, key, kAll);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, "bad_jws") << bad;
  }
  EXPECT_EQ(jws_verify(std::string(kMaxJwsBytes + 1, 'a'), key, kAll).error().code, "bad_jws");
  // crit is never understood.
  auto crit = *jws_sign(as_bytes("x"), key, JwsAlg::kES256, Json{{"crit", {"exp"}}, {"exp", 1}});
  EXPECT_EQ(jws_verify(crit, key, kAll).error().code, "bad_jws");
  EXPECT_EQ(jws_sign(as_bytes("x"), key, JwsAlg::kES256, Json{{"alg", "none"}}).error().code,
            "bad_jws");
  EXPECT_EQ(jws_sign(as_bytes("x"), key, JwsAlg::kES256, Json::array()).error().code, "bad_jws");
  // A DER signature instead of r || s.
  std::string der = good.substr(0, good.rfind('.') + 1) + base64url_encode(Bytes(72, 0x30));
  EXPECT_EQ(jws_verify(der, key, kAll).error().code, "signature_invalid");
  EXPECT_EQ(jws_peek_header("abc").error().code, "bad_jws");
}

// A compact JWS over a header and payload text of our choosing, correctly signed (ES256).
std::string signed_with_header(const std::string& header, const std::string& payload) {
  std::string input = b64(header) + "." + b64(payload);
  crypto::SignatureParams p;
  p.format = crypto::SignatureFormat::kRaw;
  auto sig = test_key(KeyType::kEcP256).sign(as_bytes(input), p);
  EXPECT_TRUE(sig);
  return input + "." + base64url_encode(*sig);
}

// A verifier reading one "alg" and a later check reading the other is what strict parsing of the
// header prevents: a repeated header member, also spelled with escapes, refuses the JWS.
TEST(JwsTest, RepeatedHeaderMemberIsRefused) {
  const auto& key = test_key(KeyType::kEcP256);
  ASSERT_TRUE(jws_verify(signed_with_header(R"({"alg":"ES256"})", "x"), key, kAll));
  for (const char* header :
       {R"({"alg":"ES256","alg":"ES256"})", R"({"alg":"ES256","alg":"none"})",
        R"({"alg":"ES256","\u0061lg":"ES256"})", R"({"alg":"ES256","kid":"a","kid":"b"})"}) {
    auto r = jws_verify(signed_with_header(header, "x"), key, kAll);
    ASSERT_FALSE(r) << header;
    EXPECT_EQ(r.error().code, "bad_jws") << header;
  }
}

}  // namespace
}  // namespace coffer::jose
