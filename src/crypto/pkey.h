// Asymmetric keys (EC P-256/P-384/P-521, RSA, Ed25519): generation, import/export, signatures,
// ECDH and RSA-OAEP. The OpenSSL handle stays inside; callers see only this class.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/error.h"
#include "crypto/digest.h"

namespace coffer::crypto {

enum class KeyType { kEcP256, kEcP384, kEcP521, kRsa, kEd25519 };

std::string_view key_type_name(KeyType t);  // "P-256", "P-384", "P-521", "RSA", "Ed25519"
// Size in bytes of one coordinate / scalar of an EC curve (32, 48, 66).
std::size_t ec_field_size(KeyType t);

struct EcPoint {
  Bytes x;  // big-endian, left-padded to the field size
  Bytes y;
};

struct RsaComponents {
  Bytes n, e;                 // public
  Bytes d, p, q, dp, dq, qi;  // private (empty for a public key)
};

enum class SignatureFormat {
  kDer,  // ASN.1 ECDSA-Sig-Value (X.509, OpenSSL default)
  kRaw,  // r || s, each left-padded to the field size (JOSE, IEEE P1363)
};

enum class RsaPadding { kPkcs1v15, kPss };

struct SignatureParams {
  DigestAlg digest = DigestAlg::kSha256;           // ignored for Ed25519
  SignatureFormat format = SignatureFormat::kDer;  // ECDSA only
  RsaPadding rsa_padding = RsaPadding::kPkcs1v15;  // RSA only; PSS salt length = digest length
};

class Key {
 public:
  static Result<Key> generate(KeyType type, int rsa_bits = 3072);
  // PEM: PKCS#8 or traditional private keys, SubjectPublicKeyInfo public keys.
  static Result<Key> from_pem(std::string_view pem);
  static Result<Key> from_public_der(ByteView spki);
  static Result<Key> from_private_der(ByteView pkcs8);
  static Result<Key> ec_from_point(KeyType curve, const EcPoint& pub,
                                   std::optional<ByteView> private_scalar = std::nullopt);
  static Result<Key> rsa_from_components(const RsaComponents& c);
  static Result<Key> ed25519_from_raw(ByteView public_key,
                                      std::optional<ByteView> private_key = std::nullopt);

  Key(const Key&);
  Key& operator=(const Key&);
  Key(Key&&) noexcept;
  Key& operator=(Key&&) noexcept;
  ~Key();

  [[nodiscard]] KeyType type() const { return type_; }
  [[nodiscard]] bool is_ec() const;
  [[nodiscard]] bool has_private() const { return has_private_; }
  [[nodiscard]] Key public_key() const;

  Result<std::string> private_pem() const;  // PKCS#8, unencrypted
  std::string public_pem() const;           // SubjectPublicKeyInfo
  Bytes public_der() const;
  Result<Bytes> private_der() const;  // PKCS#8
  bool same_public(const Key& other) const;

  Result<EcPoint> ec_point() const;
  Result<Bytes> ec_private_scalar() const;
  Result<RsaComponents> rsa_components() const;
  Result<Bytes> ed25519_raw_public() const;
  Result<Bytes> ed25519_raw_private() const;
  int rsa_bits() const;

  Result<Bytes> sign(ByteView data, const SignatureParams& params = {}) const;
  // "signature_invalid" if the signature does not verify; other codes for malformed input.
  Status verify(ByteView data, ByteView signature, const SignatureParams& params = {}) const;

  // ECDH shared secret (the x coordinate) between this private key and a peer public key.
  Result<Bytes> ecdh(const Key& peer_public) const;

  // RSA-OAEP with the given digest for both OAEP and MGF1 (JWE RSA-OAEP-256 uses SHA-256).
  Result<Bytes> rsa_oaep_encrypt(ByteView plaintext, DigestAlg digest = DigestAlg::kSha256) const;
  Result<Bytes> rsa_oaep_decrypt(ByteView ciphertext, DigestAlg digest = DigestAlg::kSha256) const;

  // For src/crypto internals (X.509) only: the EVP_PKEY*, typed as void* to keep OpenSSL out.
  [[nodiscard]] void* native_handle() const;
  static Result<Key> adopt_native(void* evp_pkey);  // takes ownership

 private:
  struct Impl;
  Key(std::unique_ptr<Impl> impl, KeyType type, bool has_private);
  std::unique_ptr<Impl> impl_;
  KeyType type_;
  bool has_private_;
};

// ECDSA signature conversions between DER and fixed-width r || s.
Result<Bytes> ecdsa_der_to_raw(ByteView der, std::size_t field_size);
Result<Bytes> ecdsa_raw_to_der(ByteView raw);

}  // namespace coffer::crypto
