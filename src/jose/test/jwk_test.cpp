#include "jose/jwk.h"

#include <gtest/gtest.h>

#include "test_keys.h"

namespace coffer::jose {
namespace {

using crypto::KeyType;
using test::test_key;

class JwkRoundTrip : public ::testing::TestWithParam<KeyType> {};

TEST_P(JwkRoundTrip, PublicAndPrivate) {
  const auto& key = test_key(GetParam());
  auto pub = key_to_jwk(key);
  ASSERT_TRUE(pub) << pub.error().to_string();
  EXPECT_FALSE(pub->contains("d"));
  auto back = key_from_jwk(*pub);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_FALSE(back->has_private());
  EXPECT_TRUE(back->same_public(key));

  auto priv = key_to_jwk(key, true);
  ASSERT_TRUE(priv);
  EXPECT_TRUE(priv->contains("d"));
  auto back_priv = key_from_jwk(*priv);
  ASSERT_TRUE(back_priv) << back_priv.error().to_string();
  EXPECT_TRUE(back_priv->has_private());
  EXPECT_TRUE(back_priv->same_public(key));
  EXPECT_EQ(*jwk_thumbprint(*pub), *jwk_thumbprint(*priv));
  EXPECT_EQ(*jwk_thumbprint(*pub), *jwk_thumbprint(key));
  EXPECT_EQ(key_to_jwk(key.public_key(), true).error().code, "missing_private_key");
}

INSTANTIATE_TEST_SUITE_P(AllTypes, JwkRoundTrip,
                         ::testing::Values(KeyType::kEcP256, KeyType::kEcP384, KeyType::kEcP521,
                                           KeyType::kRsa, KeyType::kEd25519));

// RFC 7638 section 3.1 example.
TEST(JwkTest, Rfc7638Thumbprint) {
  Json jwk = {{"kty", "RSA"},
              {"n",
               "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6t"
               "Soc_BJECPe"
               "bWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"
               "FDW2QvzqY36"
               "8QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-"
               "bFTWhAI4vMQFh6WeZu0fM4l"
               "Fd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"},
              {"e", "AQAB"},
              {"alg", "RS256"},
              {"kid", "2011-04-29"}};
  EXPECT_EQ(*jwk_thumbprint(jwk), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
  EXPECT_TRUE(key_from_jwk(jwk));
}

// RFC 8037 Appendix A.1 / A.3: Ed25519 key and its thumbprint.
TEST(JwkTest, Rfc8037Ed25519) {
  Json jwk = {{"kty", "OKP"},
              {"crv", "Ed25519"},
              {"d", "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"},
              {"x", "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}};
  EXPECT_EQ(*jwk_thumbprint(jwk), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
  auto key = key_from_jwk(jwk);
  ASSERT_TRUE(key) << key.error().to_string();
  EXPECT_TRUE(key->has_private());
  // Private part that does not match x.
  jwk["d"] = "AAAAne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
  EXPECT_EQ(key_from_jwk(jwk).error().code, "bad_jwk");
}

TEST(JwkTest, RejectsMalformedEc) {
  Json good = *key_to_jwk(test_key(KeyType::kEcP256), true);
  auto expect_bad = [](Json j, const char* why) {
    auto r = key_from_jwk(j);
    ASSERT_FALSE(r) << why;
    EXPECT_EQ(r.error().code, "bad_jwk") << why;
  };
  Json j = good;
  j.erase("y");
  expect_bad(j, "missing y");
  j = good;
  j["x"] = 5;
  expect_bad(j, "x not a string");
  j = good;
  j["crv"] = "P-384";
  expect_bad(j, "wrong curve for coordinate size");
  j = good;
  j["crv"] = "secp256k1";
  expect_bad(j, "unsupported curve");
  j = good;
  j["kty"] = "oct";
  expect_bad(j, "unsupported kty");
  j = good;
  j.erase("kty");
  expect_bad(j, "no kty");
  j = good;
  j["x"] = j["x"].get<std::string>() + "==";
  expect_bad(j, "padded base64url");
  j = good;
  j["x"] = j["x"].get<std::string>().substr(1);
  expect_bad(j, "short coordinate");
  j = good;
  auto y = *base64url_decode(j["y"].get<std::string>());
  y[31] ^= 1;
  j["y"] = base64url_encode(y);
  j.erase("d");
  expect_bad(j, "point off the curve");
  j = good;
  auto d = *base64url_decode(j["d"].get<std::string>());
  d[31] ^= 1;
  j["d"] = base64url_encode(d);
  expect_bad(j, "d does not match the point");
  expect_bad(Json::array(), "not an object");
}

TEST(JwkTest, RejectsInconsistentRsa) {
  Json good = *key_to_jwk(test_key(KeyType::kRsa), true);
  Json j = good;
  j.erase("dq");
  EXPECT_EQ(key_from_jwk(j).error().code, "bad_jwk");  // partial CRT members
  j = good;
  for (const char* m : {"d", "dp", "dq", "qi"}) j.erase(m);
  EXPECT_EQ(key_from_jwk(j).error().code, "bad_jwk");  // p, q without d
  j = good;
  auto d = *base64url_decode(j["d"].get<std::string>());
  d[d.size() / 2] ^= 0x10;
  j["d"] = base64url_encode(d);
  for (const char* m : {"p", "q", "dp", "dq", "qi"}) j.erase(m);
  EXPECT_EQ(key_from_jwk(j).error().code, "bad_jwk");  // d does not match n, e
  j = good;
  j["oth"] = Json::array();
  EXPECT_EQ(key_from_jwk(j).error().code, "bad_jwk");
  j = {{"kty", "RSA"}, {"n", "AAEC"}, {"e", "AQAB"}};
  EXPECT_EQ(key_from_jwk(j).error().code, "bad_jwk");  // leading zero in n
}

TEST(JwkTest, ThumbprintRejectsBadMembers) {
  EXPECT_EQ(jwk_thumbprint(Json{{"kty", "EC"}, {"crv", "P-256"}, {"x", "a"}}).error().code,
            "bad_jwk");
  EXPECT_EQ(jwk_thumbprint(Json{{"kty", "RSA"}, {"n", "a\"b"}, {"e", "AQAB"}}).error().code,
            "bad_jwk");
  EXPECT_EQ(jwk_thumbprint(Json{{"kty", "oct"}, {"k", "abc"}}).error().code, "bad_jwk");
}

// RSA keys we would encrypt to: e = 1 makes RSA-OAEP send the content key in the clear, e = 0
// and even exponents are not RSA, and small moduli are factorable.
TEST(JwkTest, RejectsWeakRsaPublicKeys) {
  Json good = *key_to_jwk(test_key(KeyType::kRsa).public_key());
  ASSERT_TRUE(key_from_jwk(good));
  auto with_e = [&](std::uint64_t e) {
    Bytes b;
    for (; e != 0; e >>= 8U) b.insert(b.begin(), static_cast<std::uint8_t>(e));
    if (b.empty()) b.push_back(0);
    Json j = good;
    j["e"] = base64url_encode(b);
    return j;
  };
  for (std::uint64_t e : {0ULL, 1ULL, 2ULL, 3ULL, 17ULL, 65535ULL, 65536ULL, 65538ULL}) {
    auto r = key_from_jwk(with_e(e));
    ASSERT_FALSE(r) << e;
    EXPECT_EQ(r.error().code, "bad_jwk") << e;
    EXPECT_NE(r.error().message.find("exponent"), std::string::npos) << e;
  }
  EXPECT_TRUE(key_from_jwk(with_e(65537)));
  EXPECT_TRUE(key_from_jwk(with_e(65539)));

  auto small = crypto::Key::generate(KeyType::kRsa, 1024);
  ASSERT_TRUE(small);
  auto r = key_from_jwk(*key_to_jwk(small->public_key()));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "bad_jwk");
  EXPECT_NE(r.error().message.find("1024 bits"), std::string::npos) << r.error().message;
  // also with its private part
  EXPECT_EQ(key_from_jwk(*key_to_jwk(*small, true)).error().code, "bad_jwk");
  // a 2047-bit and a 16385-bit modulus (refused before any key is built)
  Json j = good;
  Bytes n = *base64url_decode(good["n"].get<std::string>());
  n[0] = 0x7f;
  j["n"] = base64url_encode(n);
  EXPECT_EQ(key_from_jwk(j).error().code, "bad_jwk");
  Bytes huge(2049, 0xff);
  huge[0] = 0x01;
  j["n"] = base64url_encode(huge);
  r = key_from_jwk(j);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("16385 bits"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace coffer::jose
