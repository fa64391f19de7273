// A small reader for ASN.1 DER (ITU-T X.690) as it appears inside X.509 extensions: the Intel PCK
// SGX extensions (OID 1.2.840.113741.1.13.1) and the AMD VEK TCB extensions (1.3.6.1.4.1.3704.1.x).
// Bounds are checked on every read; malformed input yields "bad_der".
#pragma once

#include <cstdint>
#include <string>

#include "core/bytes.h"
#include "core/error.h"

namespace coffer::crypto {

namespace der_tag {
inline constexpr std::uint8_t kInteger = 0x02;
inline constexpr std::uint8_t kOctetString = 0x04;
inline constexpr std::uint8_t kOid = 0x06;
inline constexpr std::uint8_t kEnumerated = 0x0a;
inline constexpr std::uint8_t kSequence = 0x30;
}  // namespace der_tag

struct DerElement {
  std::uint8_t tag = 0;
  ByteView contents;
};

class DerReader {
 public:
  explicit DerReader(ByteView data) : data_(data) {}

  [[nodiscard]] bool empty() const { return pos_ >= data_.size(); }
  // The next TLV of any tag (single-byte tags, definite lengths only, as DER requires).
  Result<DerElement> next();
  // The next TLV, which must carry `tag`.
  Result<ByteView> expect(std::uint8_t tag);

 private:
  ByteView data_;
  std::size_t pos_ = 0;
};

// Dotted text of an OBJECT IDENTIFIER's contents ("1.2.840.113741.1.13.1").
Result<std::string> der_oid_to_string(ByteView contents);
// A non-negative INTEGER or ENUMERATED that fits in 64 bits.
Result<std::uint64_t> der_to_uint(ByteView contents);

}  // namespace coffer::crypto
