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

// RFC 5869, Appendix A, test cases 1 (salt and info) and 3 (no salt, no info).
TEST(Hkdf, Rfc5869Vectors) {
  Bytes ikm(22, 0x0b);
  auto one = hkdf_sha256(ikm, hex_decode("000102030405060708090a0b0c").value(),
                         hex_decode("f0f1f2f3f4f5f6f7f8f9").value(), 42);
  ASSERT_TRUE(one) << one.error().to_string();
  EXPECT_EQ(hex_encode(*one),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
  auto three = hkdf_sha256(ikm, {}, {}, 42);
  ASSERT_TRUE(three) << three.error().to_string();
  EXPECT_EQ(hex_encode(*three),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
  EXPECT_EQ(hkdf_sha256(ikm, {}, {}, 0).error().code, "bad_key");
  EXPECT_EQ(hkdf_sha256({}, {}, {}, 32).error().code, "bad_key");
}

TEST(Cleanse, ZeroesTheBuffer) {
  Bytes secret = random_bytes(64);
  secret[0] = 1;
  cleanse(secret);
  EXPECT_EQ(secret, Bytes(64, 0));
}

}  // namespace
}  // namespace coffer::crypto
