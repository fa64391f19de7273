// Key derivation: scrypt (RFC 7914), as cosign's key files use it; HKDF-SHA256 (RFC 5869); and
// wiping secrets from memory.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "core/bytes.h"
#include "core/error.h"

namespace coffer::crypto {

struct ScryptParams {
  std::uint64_t n = 32768;  // CPU/memory cost, a power of two
  std::uint32_t r = 8;      // block size
  std::uint32_t p = 1;      // parallelism
};

// `length` bytes derived from `password` and `salt`. Parameters are bounded (N up to 2^20, r up
// to 32, p up to 16, at most 1 GiB of memory) so that a hostile key file cannot ask for more:
// "bad_key" outside them, "crypto_error" if OpenSSL fails.
Result<Bytes> scrypt(std::string_view password, ByteView salt, const ScryptParams& params,
                     std::size_t length);

// HKDF-SHA256 (RFC 5869, extract then expand): `length` (1..8160) bytes from the input keying
// material `ikm`, `salt` (may be empty) and the context `info`. "crypto_error" if OpenSSL fails,
// "bad_key" for a length out of range.
Result<Bytes> hkdf_sha256(ByteView ikm, ByteView salt, ByteView info, std::size_t length);

// Overwrites `secret` in a way the compiler does not remove (OPENSSL_cleanse).
void cleanse(std::span<std::uint8_t> secret);

}  // namespace coffer::crypto
