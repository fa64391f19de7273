// scrypt (RFC 7914 test vector, parameter bounds) and NaCl secretbox behind src/crypto.
#include "crypto/kdf.h"

#include <gtest/gtest.h>

#include "crypto/random.h"
#include "crypto/secretbox.h"

namespace coffer::crypto {
namespace {

// RFC 7914 section 12, the third vector.
TEST(Scrypt, Rfc7914Vector) {
  auto key = scrypt("password", as_bytes("NaCl"), ScryptParams{.n = 1024, .r = 8, .p = 16}, 64);
  ASSERT_TRUE(key) << key.error().to_string();
  EXPECT_EQ(hex_encode(*key),
            "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
            "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640");
}

// A hostile key file must not be able to ask for gigabytes of memory or hours of work.
TEST(Scrypt, RefusesParametersOutsideTheBounds) {
  Bytes salt(32, 1);
  for (auto p :
       {ScryptParams{.n = 1 << 21}, ScryptParams{.n = 1000}, ScryptParams{.n = 1},
        ScryptParams{.r = 0}, ScryptParams{.r = 33}, ScryptParams{.p = 0}, ScryptParams{.p = 17}}) {
    auto key = scrypt("pw", salt, p, 32);
    ASSERT_FALSE(key);
    EXPECT_EQ(key.error().code, "bad_key");
  }
  EXPECT_EQ(scrypt("pw", salt, ScryptParams{.n = 16}, 0).error().code, "bad_key");
}

TEST(Secretbox, SealOpenTamperAndSizes) {
  Bytes key = random_bytes(kSecretboxKeySize);
  Bytes nonce = random_bytes(kSecretboxNonceSize);
  Bytes msg = to_bytes("a private key in DER");
  auto boxed = secretbox_seal(key, nonce, msg);
  ASSERT_TRUE(boxed);
  EXPECT_EQ(boxed->size(), msg.size() + kSecretboxMacSize);
  EXPECT_EQ(secretbox_open(key, nonce, *boxed).value(), msg);

  Bytes flipped = *boxed;
  flipped.back() ^= 1;
  EXPECT_EQ(secretbox_open(key, nonce, flipped).error().code, "decrypt_failed");
  Bytes other = random_bytes(kSecretboxKeySize);
  EXPECT_EQ(secretbox_open(other, nonce, *boxed).error().code, "decrypt_failed");
  EXPECT_EQ(secretbox_open(key, nonce, ByteView(boxed->data(), 15)).error().code, "decrypt_failed");
  EXPECT_EQ(secretbox_seal(Bytes(31), nonce, msg).error().code, "bad_key");
  EXPECT_EQ(secretbox_open(key, Bytes(12), *boxed).error().code, "bad_key");
}

TEST(Cleanse, ZeroesTheBuffer) {
  Bytes secret = random_bytes(64);
  secret[0] = 1;
  cleanse(secret);
  EXPECT_EQ(secret, Bytes(64, 0));
}

}  // namespace
}  // namespace coffer::crypto
