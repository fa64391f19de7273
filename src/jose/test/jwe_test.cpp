#include "jose/jwe.h"

#include <array>

#include <gtest/gtest.h>

#include "crypto/cipher.h"
#include "crypto/oaep_sha1.h"
#include "crypto/random.h"
#include "jose/jwk.h"
#include "test_keys.h"

namespace coffer::jose {
namespace {

using crypto::KeyType;
using test::test_key;

Json decode_protected(const Json& jwe) {
  return Json::parse(to_string(*base64url_decode(jwe["protected"].get<std::string>())));
}

std::string flip(const std::string& b64, std::size_t index) {
  Bytes raw = *base64url_decode(b64);
  raw[index % raw.size()] ^= 0x01;
  return base64url_encode(raw);
}

class JweKeyTest : public ::testing::TestWithParam<KeyType> {};

TEST_P(JweKeyTest, RoundTripAndTamper) {
  const auto& key = test_key(GetParam());
  Bytes secret = crypto::random_bytes(100);
  auto jwe = jwe_encrypt(secret, key.public_key(), Json{{"kid", "tee"}});
  ASSERT_TRUE(jwe) << jwe.error().to_string();
  for (const char* member : {"protected", "encrypted_key", "iv", "ciphertext", "tag"}) {
    ASSERT_TRUE((*jwe)[member].is_string()) << member;
    EXPECT_EQ((*jwe)[member].get<std::string>().find('='), std::string::npos);
  }
  Json header = decode_protected(*jwe);
  EXPECT_EQ(header["enc"], "A256GCM");
  EXPECT_EQ(header["kid"], "tee");
  EXPECT_EQ(header["alg"], key.is_ec() ? "ECDH-ES+A256KW" : "RSA-OAEP-256");
  EXPECT_EQ(header.contains("epk"), key.is_ec());

  auto plain = jwe_decrypt(*jwe, key);
  ASSERT_TRUE(plain) << plain.error().to_string();
  EXPECT_EQ(*plain, secret);
  auto compact = jwe_to_compact(*jwe);
  ASSERT_TRUE(compact);
  EXPECT_EQ(*jwe_decrypt_compact(*compact, key), secret);
  EXPECT_EQ(*jwe_decrypt_text(jwe->dump(), key), secret);
  EXPECT_EQ(*jwe_decrypt_text(*compact, key), secret);

  // Any changed bit of key, iv, ciphertext or tag: decrypt_failed, never plaintext.
  for (const char* member : {"encrypted_key", "iv", "ciphertext", "tag"}) {
    for (std::size_t index : {0u, 7u, 1000u}) {
      Json bad = *jwe;
      bad[member] = flip(bad[member].get<std::string>(), index);
      auto r = jwe_decrypt(bad, key);
      ASSERT_FALSE(r) << member << index;
      EXPECT_EQ(r.error().code, "decrypt_failed") << member << " " << r.error().to_string();
    }
  }
  // Protected header changed but still valid: the AAD no longer matches.
  Json bad = *jwe;
  header["kid"] = "other";
  bad["protected"] = base64url_encode(as_bytes(header.dump()));
  EXPECT_EQ(jwe_decrypt(bad, key).error().code, "decrypt_failed");
  // Truncated ciphertext and tag.
  bad = *jwe;
  bad["ciphertext"] = bad["ciphertext"].get<std::string>().substr(4);
  EXPECT_EQ(jwe_decrypt(bad, key).error().code, "decrypt_failed");
  bad = *jwe;
  bad["tag"] = bad["tag"].get<std::string>().substr(0, 8);
  EXPECT_EQ(jwe_decrypt(bad, key).error().code, "decrypt_failed");
  // Another key of the same type.
  auto other = crypto::Key::generate(key.type(), 2048);
  EXPECT_EQ(jwe_decrypt(*jwe, *other).error().code, "decrypt_failed");
  // A key of the wrong family.
  const auto& wrong = test_key(key.is_ec() ? KeyType::kRsa : KeyType::kEcP256);
  EXPECT_EQ(jwe_decrypt(*jwe, wrong).error().code, "jwe_key_mismatch");
}

INSTANTIATE_TEST_SUITE_P(Recipients, JweKeyTest,
                         ::testing::Values(KeyType::kEcP256, KeyType::kEcP384, KeyType::kEcP521,
                                           KeyType::kRsa));

TEST(JweTest, ApuApvEnterTheKdf) {
  const auto& key = test_key(KeyType::kEcP256);
  Json extra = {{"apu", base64url_encode(as_bytes("Alice"))},
                {"apv", base64url_encode(as_bytes("Bob"))}};
  auto jwe = jwe_encrypt(as_bytes("x"), key.public_key(), extra);
  ASSERT_TRUE(jwe);
  EXPECT_EQ(to_string(*jwe_decrypt(*jwe, key)), "x");
  EXPECT_EQ(jwe_encrypt(as_bytes("x"), key, Json{{"apu", 5}}).error().code, "bad_jwe");
}

TEST(JweTest, EpkMustBeOnTheRecipientsCurve) {
  const auto& key = test_key(KeyType::kEcP256);
  Json jwe = *jwe_encrypt(as_bytes("secret"), key.public_key());
  Json header = decode_protected(jwe);
  auto with_epk = [&](const Json& epk) {
    Json h = header;
    h["epk"] = epk;
    Json j = jwe;
    j["protected"] = base64url_encode(as_bytes(h.dump()));
    return jwe_decrypt(j, key);
  };
  // P-384 ephemeral key against a P-256 recipient.
  EXPECT_EQ(with_epk(*key_to_jwk(test_key(KeyType::kEcP384))).error().code, "bad_jwe");
  // Point off the curve (invalid-curve attack).
  Json off = header["epk"];
  Bytes y = *base64url_decode(off["y"].get<std::string>());
  y[5] ^= 0x40;
  off["y"] = base64url_encode(y);
  EXPECT_EQ(with_epk(off).error().code, "bad_jwe");
  Json no_epk = header;
  no_epk.erase("epk");
  Json j = jwe;
  j["protected"] = base64url_encode(as_bytes(no_epk.dump()));
  EXPECT_EQ(jwe_decrypt(j, key).error().code, "bad_jwe");
  // A valid point of the right curve that is not the one used: decryption fails.
  EXPECT_EQ(with_epk(*key_to_jwk(test_key(KeyType::kEcP256))).error().code, "decrypt_failed");
}

TEST(JweTest, UnsupportedAndMalformed) {
  const auto& key = test_key(KeyType::kEcP256);
  Json jwe = *jwe_encrypt(as_bytes("secret"), key.public_key());
  Json header = decode_protected(jwe);
  auto with_header = [&](const Json& h) {
    Json j = jwe;
    j["protected"] = base64url_encode(as_bytes(h.dump()));
    return jwe_decrypt(j, key);
  };
  for (auto [name, value] : std::vector<std::pair<const char*, Json>>{{"enc", "A128GCM"},
                                                                      {"enc", "A256CBC-HS512"},
                                                                      {"alg", "ECDH-ES"},
                                                                      {"alg", "dir"},
                                                                      {"alg", "none"},
                                                                      {"zip", "DEF"},
                                                                      {"crit", {"b64"}}}) {
    Json h = header;
    h[name] = value;
    auto r = with_header(h);
    ASSERT_FALSE(r) << name;
    EXPECT_EQ(r.error().code, "unsupported_jwe") << name << " " << r.error().to_string();
  }
  for (const char* member : {"iv", "ciphertext", "tag", "encrypted_key"}) {
    Json j = jwe;
    j.erase(member);
    EXPECT_EQ(jwe_decrypt(j, key).error().code, "bad_jwe") << member;
    j[member] = "not*base64";
    EXPECT_EQ(jwe_decrypt(j, key).error().code, "bad_jwe") << member;
  }
  Json j = jwe;
  j["protected"] = base64url_encode(as_bytes("{not json"));
  EXPECT_EQ(jwe_decrypt(j, key).error().code, "bad_jwe");
  // The same member protected and unprotected.
  j = jwe;
  j["unprotected"] = Json{{"enc", "A256GCM"}};
  EXPECT_EQ(jwe_decrypt(j, key).error().code, "bad_jwe");
  EXPECT_EQ(jwe_decrypt(Json::array(), key).error().code, "bad_jwe");
  EXPECT_EQ(jwe_decrypt_compact("a.b.c.d", key).error().code, "bad_jwe");
  EXPECT_EQ(jwe_decrypt_compact("a.b.c.d.e.f", key).error().code, "bad_jwe");
  EXPECT_EQ(jwe_decrypt_text("{", key).error().code, "bad_jwe");
  EXPECT_EQ(jwe_encrypt(as_bytes("x"), key, Json{{"alg", "dir"}}).error().code, "bad_jwe");
  EXPECT_EQ(jwe_encrypt(as_bytes("x"), test_key(KeyType::kEd25519)).error().code,
            "unsupported_jwe");
  EXPECT_EQ(jwe_encrypt(as_bytes("x"), key, JweAlg::kRsaOaep256).error().code, "jwe_key_mismatch");
}

// What ocicrypt (go-jose) emits for several recipients: general serialization, {"enc"}
// protected, {"alg","epk"} per recipient; RSA recipients use RSA-OAEP (SHA-1).
TEST(JweTest, GeneralSerializationSeveralRecipients) {
  std::vector<crypto::Key> keys = {test_key(KeyType::kEcP256).public_key(),
                                   test_key(KeyType::kRsa).public_key(),
                                   test_key(KeyType::kEcP521).public_key()};
  auto jwe = jwe_encrypt_multi(as_bytes("layer key"), keys);
  ASSERT_TRUE(jwe) << jwe.error().to_string();
  EXPECT_EQ((*jwe)["recipients"].size(), 3u);
  EXPECT_EQ(decode_protected(*jwe), Json({{"enc", "A256GCM"}}));
  for (KeyType t : {KeyType::kEcP256, KeyType::kRsa, KeyType::kEcP521}) {
    auto plain = jwe_decrypt(*jwe, test_key(t));
    ASSERT_TRUE(plain) << plain.error().to_string();
    EXPECT_EQ(to_string(*plain), "layer key");
  }
  EXPECT_EQ(jwe_decrypt(*jwe, test_key(KeyType::kEcP384)).error().code, "jwe_key_mismatch");
  auto stranger = crypto::Key::generate(KeyType::kEcP256);
  EXPECT_EQ(jwe_decrypt(*jwe, *stranger).error().code, "decrypt_failed");
  EXPECT_EQ(jwe_to_compact(*jwe).error().code, "bad_jwe");

  {
    // One entry as a flattened JWE with an unprotected per-recipient "header".
    const auto& ec = test_key(KeyType::kEcP256);
    Json r0 = (*jwe)["recipients"][0];
    Json flat = {{"protected", (*jwe)["protected"]},
                 {"encrypted_key", r0["encrypted_key"]},
                 {"iv", (*jwe)["iv"]},
                 {"ciphertext", (*jwe)["ciphertext"]},
                 {"tag", (*jwe)["tag"]},
                 {"header", r0["header"]}};
    ASSERT_TRUE(jwe_decrypt(flat, ec));
  }
  Json sha1_entry = (*jwe)["recipients"][1];
  sha1_entry["header"]["alg"] = "RSA-OAEP";
  Json tampered = *jwe;
  tampered["recipients"] = Json::array({sha1_entry});
  // The entry still holds an OAEP-SHA-256 key: decrypting it as SHA-1 fails cleanly.
  EXPECT_EQ(jwe_decrypt(tampered, test_key(KeyType::kRsa)).error().code, "decrypt_failed");
}

TEST(JweTest, ConsumesRsaOaepSha1AndAad) {
  // Build by hand a flattened JWE with alg RSA-OAEP (SHA-1) and an "aad" member.
  const auto& key = test_key(KeyType::kRsa);
  Bytes cek = crypto::random_bytes(32);
  Bytes iv = crypto::random_bytes(12);
  std::string protected_b64 = base64url_encode(as_bytes(R"({"alg":"RSA-OAEP","enc":"A256GCM"})"));
  std::string aad_b64 = base64url_encode(as_bytes("extra"));
  std::string full_aad = protected_b64 + "." + aad_b64;
  auto sealed = crypto::aes_gcm_encrypt(cek, iv, as_bytes("opts"), as_bytes(full_aad));
  Json jwe = {
      {"protected", protected_b64},
      {"encrypted_key", base64url_encode(*crypto::rsa_oaep_sha1_encrypt(key.public_key(), cek))},
      {"iv", base64url_encode(iv)},
      {"ciphertext", base64url_encode(sealed->ciphertext)},
      {"tag", base64url_encode(sealed->tag)},
      {"aad", aad_b64}};
  EXPECT_EQ(to_string(*jwe_decrypt(jwe, key)), "opts");
  jwe["aad"] = base64url_encode(as_bytes("other"));
  EXPECT_EQ(jwe_decrypt(jwe, key).error().code, "decrypt_failed");
}

// Keys that arrive as PEM (not JWK) get the same rule before anything is sealed to them.
TEST(JweTest, RefusesRecipientsItCannotSafelySealTo) {
  EXPECT_TRUE(check_jwe_recipient(test_key(KeyType::kEcP256).public_key()));
  EXPECT_TRUE(check_jwe_recipient(test_key(KeyType::kRsa).public_key()));
  auto small = crypto::Key::generate(KeyType::kRsa, 1024);
  ASSERT_TRUE(small);
  EXPECT_EQ(check_jwe_recipient(small->public_key()).error().code, "weak_key");
  EXPECT_EQ(jwe_encrypt(as_bytes("s"), small->public_key()).error().code, "weak_key");
  EXPECT_EQ(check_jwe_recipient(test_key(KeyType::kEd25519)).error().code, "unsupported_jwe");
  // e = 3 on a 2048-bit modulus
  auto c = *test_key(KeyType::kRsa).rsa_components();
  crypto::RsaComponents pub{.n = c.n, .e = Bytes{3}};
  auto e3 = crypto::Key::rsa_from_components(pub);
  ASSERT_TRUE(e3) << e3.error().to_string();
  EXPECT_EQ(check_jwe_recipient(*e3).error().code, "weak_key");
  EXPECT_EQ(jwe_encrypt(as_bytes("s"), *e3).error().code, "weak_key");
  std::array<crypto::Key, 2> both = {test_key(KeyType::kEcP256).public_key(), *e3};
  EXPECT_EQ(jwe_encrypt_multi(as_bytes("s"), both).error().code, "weak_key");
}

}  // namespace
}  // namespace coffer::jose
