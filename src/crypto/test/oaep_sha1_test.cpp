#include "crypto/oaep_sha1.h"

#include <gtest/gtest.h>

#include "crypto/random.h"

namespace coffer::crypto {
namespace {

TEST(OaepSha1Test, RoundTripAndTamper) {
  auto key = Key::generate(KeyType::kRsa, 2048);
  ASSERT_TRUE(key);
  Bytes secret = random_bytes(32);
  auto ct = rsa_oaep_sha1_encrypt(key->public_key(), secret);
  ASSERT_TRUE(ct) << ct.error().to_string();
  auto pt = rsa_oaep_sha1_decrypt(*key, *ct);
  ASSERT_TRUE(pt) << pt.error().to_string();
  EXPECT_EQ(*pt, secret);
  // SHA-1 and SHA-256 OAEP are not interchangeable.
  EXPECT_EQ(key->rsa_oaep_decrypt(*ct).error().code, "decrypt_failed");
  (*ct)[10] ^= 1;
  EXPECT_EQ(rsa_oaep_sha1_decrypt(*key, *ct).error().code, "decrypt_failed");
  EXPECT_EQ(rsa_oaep_sha1_decrypt(key->public_key(), *ct).error().code, "wrong_key_type");
  auto ec = Key::generate(KeyType::kEcP256);
  EXPECT_EQ(rsa_oaep_sha1_decrypt(*ec, *ct).error().code, "wrong_key_type");
}

}  // namespace
}  // namespace coffer::crypto
