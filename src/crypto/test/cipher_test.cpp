#include "crypto/cipher.h"

#include <gtest/gtest.h>

#include "crypto/random.h"

namespace coffer::crypto {
namespace {

Bytes h(std::string_view s) { return *hex_decode(s); }

// McGrew & Viega GCM spec, test case 16 (AES-256, 60-byte plaintext, AAD).
TEST(AesGcm, KnownVector) {
  auto key = h("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
  auto iv = h("cafebabefacedbaddecaf888");
  auto pt =
      h("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
        "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
  auto aad = h("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  auto sealed = aes_gcm_encrypt(key, iv, pt, aad);
  ASSERT_TRUE(sealed);
  EXPECT_EQ(hex_encode(sealed->ciphertext),
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
            "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662");
  EXPECT_EQ(hex_encode(sealed->tag), "76fc6ece0f4e1768cddf8853bb2d551b");
  auto opened = aes_gcm_decrypt(key, iv, sealed->ciphertext, sealed->tag, aad);
  ASSERT_TRUE(opened);
  EXPECT_EQ(*opened, pt);
}

TEST(AesGcm, RejectsTamperingAndWrongKey) {
  auto key = random_bytes(32);
  auto iv = random_bytes(12);
  auto sealed = *aes_gcm_encrypt(key, iv, as_bytes("secret"), as_bytes("aad"));
  auto ct = sealed.ciphertext;
  ct[0] ^= 1;
  EXPECT_EQ(aes_gcm_decrypt(key, iv, ct, sealed.tag, as_bytes("aad")).error().code,
            "decrypt_failed");
  EXPECT_EQ(aes_gcm_decrypt(key, iv, sealed.ciphertext, sealed.tag, as_bytes("aaD")).error().code,
            "decrypt_failed");
  EXPECT_EQ(aes_gcm_decrypt(random_bytes(32), iv, sealed.ciphertext, sealed.tag, as_bytes("aad"))
                .error()
                .code,
            "decrypt_failed");
  EXPECT_EQ(
      aes_gcm_decrypt(key, iv, sealed.ciphertext, ByteView(sealed.tag).first(8), as_bytes("aad"))
          .error()
          .code,
      "decrypt_failed");
  EXPECT_EQ(aes_gcm_encrypt(random_bytes(31), iv, as_bytes("x"), {}).error().code, "bad_key");
}

// RFC 3394 section 4.6: 256-bit KEK wrapping 256-bit key data.
TEST(AesKeyWrap, Rfc3394Vector) {
  auto kek = h("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
  auto key = h("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F");
  auto wrapped = aes_key_wrap(kek, key);
  ASSERT_TRUE(wrapped);
  EXPECT_EQ(hex_encode(*wrapped),
            "28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21");
  EXPECT_EQ(*aes_key_unwrap(kek, *wrapped), key);
  auto bad = *wrapped;
  bad[5] ^= 0x80;
  EXPECT_EQ(aes_key_unwrap(kek, bad).error().code, "decrypt_failed");
}

// NIST SP 800-38A F.5.5 CTR-AES256.Encrypt, first block; streaming in odd chunk sizes.
TEST(AesCtr, KnownVectorStreaming) {
  auto key = h("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
  auto iv = h("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
  auto pt = h("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
  auto ctr = AesCtr::create(key, iv);
  ASSERT_TRUE(ctr);
  Bytes out(pt.size());
  ctr->update(ByteView(pt).first(5), out.data());
  ctr->update(ByteView(pt).subspan(5), out.data() + 5);
  EXPECT_EQ(hex_encode(out), "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5");
}

}  // namespace
}  // namespace coffer::crypto
