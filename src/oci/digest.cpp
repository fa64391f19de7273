#include "oci/digest.h"

#include "crypto/digest.h"

namespace coffer::oci {
namespace {

bool is_lower_hex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

crypto::DigestAlg alg_of(std::string_view digest) {
  return digest.starts_with("sha512:") ? crypto::DigestAlg::kSha512 : crypto::DigestAlg::kSha256;
}

}  // namespace

Status validate_digest(std::string_view digest) {
  auto colon = digest.find(':');
  if (colon == std::string_view::npos) {
    return make_error("bad_digest", "digest '" + std::string(digest) + "' has no algorithm prefix");
  }
  auto alg = digest.substr(0, colon);
  auto hex = digest.substr(colon + 1);
  std::size_t want = 0;
  if (alg == "sha256") {
    want = 64;
  } else if (alg == "sha512") {
    want = 128;
  } else {
    return make_error("bad_digest", "unsupported digest algorithm '" + std::string(alg) +
                                        "' (sha256 and sha512 are supported)");
  }
  if (hex.size() != want || !is_lower_hex(hex)) {
    return make_error("bad_digest", "digest '" + std::string(digest.substr(0, 80)) + "' is not " +
                                        std::to_string(want) + " lower-case hex");
  }
  return ok();
}

std::string sha256_digest(ByteView data) { return "sha256:" + hex_encode(crypto::sha256(data)); }

std::string_view digest_hex(std::string_view digest) {
  auto colon = digest.find(':');
  return colon == std::string_view::npos ? digest : digest.substr(colon + 1);
}

DigestChecker::DigestChecker(std::string expected, std::int64_t expected_size)
    : expected_(std::move(expected)), expected_size_(expected_size), hasher_(alg_of(expected_)) {}

void DigestChecker::update(ByteView data) {
  hasher_.update(data);
  bytes_ += data.size();
}

Status DigestChecker::finish() {
  if (expected_size_ >= 0 && bytes_ != static_cast<std::uint64_t>(expected_size_)) {
    return make_error("size_mismatch", "blob " + expected_ + " has " + std::to_string(bytes_) +
                                           " bytes, its descriptor says " +
                                           std::to_string(expected_size_));
  }
  auto colon = expected_.find(':');
  std::string got = expected_.substr(0, colon) + ":" + hex_encode(hasher_.finish());
  if (got != expected_) {
    return make_error("digest_mismatch",
                      "content has digest " + got + " but " + expected_ + " was expected");
  }
  return ok();
}

}  // namespace coffer::oci
