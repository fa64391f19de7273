// Helpers shared by the jose sources; not part of the module's interface.
#pragma once

#include <bit>
#include <cstdint>
#include <string>

#include "core/bytes.h"
#include "core/error.h"
#include "core/json.h"

namespace coffer::jose::detail {

// Compact JSON text; strings that are not valid UTF-8 fail with `code` instead of throwing.
inline Result<std::string> dump_json(const Json& j, const char* code) {
  try {
    return j.dump();
  } catch (const Json::exception& e) {
    return make_error(code, std::string("cannot serialize JSON: ") + e.what());
  }
}

// The rule for every RSA key we seal to (RSA-OAEP) or verify with, from its big-endian n and e:
// e = 1 would send the content key in the clear, e = 0 or an even e is not RSA, a small modulus
// is factorable (RFC 7518 sections 3.3 and 4.2 ask for 2048 bits or more) and one over 16384
// bits only costs us time. Fails with `code`.
inline Status check_rsa_public(ByteView n, ByteView e, const char* code) {
  constexpr std::uint64_t kMinExponent = 65537;
  constexpr std::size_t kMinBits = 2048;
  constexpr std::size_t kMaxBits = 16384;
  if (e.empty() || e.size() > sizeof(std::uint64_t)) {
    return make_error(code, "RSA exponent 'e' must be 1 to 8 bytes");
  }
  std::uint64_t exponent = 0;
  for (std::uint8_t b : e) exponent = (exponent << 8U) | b;
  if (exponent < kMinExponent || exponent % 2 == 0) {
    return make_error(code, "RSA exponent 'e' must be odd and at least 65537");
  }
  std::size_t i = 0;
  while (i < n.size() && n[i] == 0) ++i;
  std::size_t bits = i == n.size() ? 0 : (n.size() - i - 1) * 8 + std::bit_width(n[i]);
  if (bits < kMinBits || bits > kMaxBits) {
    return make_error(
        code, "RSA modulus of " + std::to_string(bits) + " bits: use a key of 2048 to 16384 bits");
  }
  return ok();
}

}  // namespace coffer::jose::detail
