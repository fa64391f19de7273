// Message digests and HMAC (OpenSSL 3 EVP).
#pragma once

#include <memory>
#include <string_view>

#include "core/bytes.h"
#include "core/error.h"

namespace coffer::crypto {

enum class DigestAlg { kSha256, kSha384, kSha512 };

std::size_t digest_size(DigestAlg alg);
std::string_view digest_name(DigestAlg alg);  // "SHA256", "SHA384", "SHA512"

Bytes digest(DigestAlg alg, ByteView data);
inline Bytes sha256(ByteView data) { return digest(DigestAlg::kSha256, data); }
inline Bytes sha384(ByteView data) { return digest(DigestAlg::kSha384, data); }
inline Bytes sha512(ByteView data) { return digest(DigestAlg::kSha512, data); }

// Incremental hashing for streams (layers, files).
class Hasher {
 public:
  explicit Hasher(DigestAlg alg);
  ~Hasher();
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;
  void update(ByteView data);
  Bytes finish();  // the hasher cannot be updated afterwards

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

Bytes hmac(DigestAlg alg, ByteView key, ByteView data);

// Incremental HMAC (ocicrypt MACs the ciphertext stream).
class HmacStream {
 public:
  HmacStream(DigestAlg alg, ByteView key);
  ~HmacStream();
  HmacStream(HmacStream&&) noexcept;
  HmacStream& operator=(HmacStream&&) noexcept;
  void update(ByteView data);
  Bytes finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace coffer::crypto
