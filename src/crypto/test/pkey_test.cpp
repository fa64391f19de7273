#include "crypto/pkey.h"

#include <gtest/gtest.h>

#include "crypto/random.h"

namespace coffer::crypto {
namespace {

class SignTest : public ::testing::TestWithParam<KeyType> {};

TEST_P(SignTest, SignVerifyTamperPemRoundTrip) {
  auto key = Key::generate(GetParam(), 2048);
  ASSERT_TRUE(key) << key.error().to_string();
  EXPECT_TRUE(key->has_private());
  SignatureParams params;
  params.format = SignatureFormat::kRaw;
  auto sig = key->sign(as_bytes("message"), params);
  ASSERT_TRUE(sig) << sig.error().to_string();
  auto pub = key->public_key();
  EXPECT_FALSE(pub.has_private());
  EXPECT_TRUE(pub.verify(as_bytes("message"), *sig, params));
  EXPECT_EQ(pub.verify(as_bytes("messagE"), *sig, params).error().code, "signature_invalid");
  auto bad = *sig;
  bad[bad.size() / 2] ^= 1;
  EXPECT_EQ(pub.verify(as_bytes("message"), bad, params).error().code, "signature_invalid");
  // PEM round trips keep the key.
  auto reloaded = Key::from_pem(*key->private_pem());
  ASSERT_TRUE(reloaded);
  EXPECT_TRUE(reloaded->same_public(*key));
  auto reloaded_pub = Key::from_pem(key->public_pem());
  ASSERT_TRUE(reloaded_pub);
  EXPECT_FALSE(reloaded_pub->has_private());
  EXPECT_TRUE(reloaded_pub->verify(as_bytes("message"), *sig, params));
  // A different key of the same type rejects the signature.
  auto other = Key::generate(GetParam(), 2048);
  EXPECT_EQ(other->verify(as_bytes("message"), *sig, params).error().code, "signature_invalid");
}

INSTANTIATE_TEST_SUITE_P(AllTypes, SignTest,
                         ::testing::Values(KeyType::kEcP256, KeyType::kEcP384, KeyType::kEcP521,
                                           KeyType::kRsa, KeyType::kEd25519));

TEST(Key, EcPointRoundTripAndOffCurveRejected) {
  auto key = *Key::generate(KeyType::kEcP256);
  auto pt = *key.ec_point();
  EXPECT_EQ(pt.x.size(), 32u);
  auto d = *key.ec_private_scalar();
  auto again = Key::ec_from_point(KeyType::kEcP256, pt, ByteView(d));
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_TRUE(again->same_public(key));
  auto off = pt;
  off.y[31] ^= 1;
  EXPECT_EQ(Key::ec_from_point(KeyType::kEcP256, off).error().code, "bad_key");
  EXPECT_EQ(Key::ec_from_point(KeyType::kEcP384, pt).error().code, "bad_key");
}

TEST(Key, EcdhAgreesBothWays) {
  auto a = *Key::generate(KeyType::kEcP256);
  auto b = *Key::generate(KeyType::kEcP256);
  EXPECT_EQ(*a.ecdh(b.public_key()), *b.ecdh(a.public_key()));
  auto c = *Key::generate(KeyType::kEcP384);
  EXPECT_EQ(a.ecdh(c.public_key()).error().code, "wrong_key_type");
}

TEST(Key, RsaOaepAndComponents) {
  auto key = *Key::generate(KeyType::kRsa, 2048);
  auto ct = key.public_key().rsa_oaep_encrypt(as_bytes("cek"));
  ASSERT_TRUE(ct);
  EXPECT_EQ(to_string(*key.rsa_oaep_decrypt(*ct)), "cek");
  auto bad = *ct;
  bad[10] ^= 1;
  EXPECT_EQ(key.rsa_oaep_decrypt(bad).error().code, "decrypt_failed");
  auto comps = *key.rsa_components();
  auto rebuilt = Key::rsa_from_components(comps);
  ASSERT_TRUE(rebuilt) << rebuilt.error().to_string();
  EXPECT_TRUE(rebuilt->has_private());
  EXPECT_EQ(to_string(*rebuilt->rsa_oaep_decrypt(*ct)), "cek");
}

TEST(Key, RsaPss) {
  auto key = *Key::generate(KeyType::kRsa, 2048);
  SignatureParams pss{.digest = DigestAlg::kSha384, .rsa_padding = RsaPadding::kPss};
  auto sig = *key.sign(as_bytes("m"), pss);
  EXPECT_TRUE(key.verify(as_bytes("m"), sig, pss));
  EXPECT_EQ(key.verify(as_bytes("m"), sig, {.digest = DigestAlg::kSha384}).error().code,
            "signature_invalid");
}

TEST(Key, Ed25519Raw) {
  auto key = *Key::generate(KeyType::kEd25519);
  auto pub = *key.ed25519_raw_public();
  auto priv = *key.ed25519_raw_private();
  auto again = Key::ed25519_from_raw(pub, ByteView(priv));
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->same_public(key));
  auto wrong_pub = pub;
  wrong_pub[0] ^= 1;
  EXPECT_EQ(Key::ed25519_from_raw(wrong_pub, ByteView(priv)).error().code, "bad_key");
}

TEST(Key, RejectsGarbage) {
  EXPECT_EQ(Key::from_pem("not a key").error().code, "bad_key");
  EXPECT_EQ(Key::from_public_der(random_bytes(40)).error().code, "bad_key");
}

TEST(Ecdsa, DerRawConversions) {
  auto key = *Key::generate(KeyType::kEcP384);
  auto der = *key.sign(as_bytes("x"), {.digest = DigestAlg::kSha384});
  auto raw = *ecdsa_der_to_raw(der, 48);
  EXPECT_EQ(raw.size(), 96u);
  EXPECT_EQ(*ecdsa_raw_to_der(raw), der);
  EXPECT_EQ(ecdsa_der_to_raw(ByteView(der).first(10), 48).error().code, "signature_invalid");
}

}  // namespace
}  // namespace coffer::crypto
