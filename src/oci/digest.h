// Content digests as OCI uses them ("sha256:<64 hex>"), computed and verified incrementally.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/error.h"
#include "crypto/digest.h"

namespace coffer::oci {

// Checks the OCI digest grammar for the algorithms we can verify: "sha256:" + 64 lower-case hex
// or "sha512:" + 128 ("bad_digest" otherwise, also for unsupported algorithms).
Status validate_digest(std::string_view digest);

// "sha256:<hex>" of `data`.
std::string sha256_digest(ByteView data);

// The hex part of a validated digest.
std::string_view digest_hex(std::string_view digest);

// Hashes a stream and compares with an expected digest and size at the end.
class DigestChecker {
 public:
  // `expected` must be valid (validate_digest); size < 0: size unknown.
  DigestChecker(std::string expected, std::int64_t expected_size);
  void update(ByteView data);
  [[nodiscard]] std::uint64_t bytes() const { return bytes_; }
  // "digest_mismatch" or "size_mismatch", naming what was expected.
  Status finish();
  // Fails early once more bytes than the expected size arrived.
  [[nodiscard]] bool over_size() const {
    return expected_size_ >= 0 && bytes_ > static_cast<std::uint64_t>(expected_size_);
  }

 private:
  std::string expected_;
  std::int64_t expected_size_;
  crypto::Hasher hasher_;
  std::uint64_t bytes_ = 0;
};

// Streaming "sha256:<hex>" computation.
class Sha256Digester {
 public:
  Sha256Digester() : hasher_(crypto::DigestAlg::kSha256) {}
  void update(ByteView data) {
    hasher_.update(data);
    bytes_ += data.size();
  }
  std::string finish() { return "sha256:" + hex_encode(hasher_.finish()); }
  [[nodiscard]] std::uint64_t bytes() const { return bytes_; }

 private:
  crypto::Hasher hasher_;
  std::uint64_t bytes_ = 0;
};

}  // namespace coffer::oci
