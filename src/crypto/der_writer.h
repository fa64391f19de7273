// A small ASN.1 DER writer (ITU-T X.690) for the X.509 extensions the simulated TEE issues: the
// Intel PCK SGX extensions and the AMD VEK TCB extensions. The reading side is der.h.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string_view>

#include "core/bytes.h"
#include "core/error.h"

namespace coffer::crypto {

// One TLV with a definite length.
Bytes der_tlv(std::uint8_t tag, ByteView contents);
// SEQUENCE of already-encoded elements.
Bytes der_sequence(std::initializer_list<ByteView> elements);
Bytes der_sequence_of(const std::vector<Bytes>& elements);
// Non-negative INTEGER in minimal two's complement form.
Bytes der_uint(std::uint64_t value);
Bytes der_octet_string(ByteView value);
Bytes der_ia5_string(std::string_view value);
// OBJECT IDENTIFIER from dotted text ("bad_der" when malformed).
Result<Bytes> der_oid(std::string_view dotted);

}  // namespace coffer::crypto
