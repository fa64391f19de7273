#include "crypto/random.h"

#include <cstdlib>

#include <openssl/rand.h>

namespace coffer::crypto {

Bytes random_bytes(std::size_t n) {
  Bytes out(n);
  // A failing system DRBG leaves no safe way to continue.
  if (n > 0 && RAND_bytes(out.data(), static_cast<int>(n)) != 1) std::abort();
  return out;
}

std::string random_uuid_hex() {
  Bytes b = random_bytes(16);
  b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x40);  // RFC 4122 version 4
  b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return hex_encode(b);
}

}  // namespace coffer::crypto
