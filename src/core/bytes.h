// Byte buffers and their text encodings (hex, base64, base64url).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace coffer {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

inline Bytes to_bytes(std::string_view s) { return Bytes(s.begin(), s.end()); }
inline std::string to_string(ByteView b) { return std::string(b.begin(), b.end()); }
inline ByteView as_bytes(std::string_view s) {
  return ByteView(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

// Lower-case hex.
std::string hex_encode(ByteView data);
// Accepts upper and lower case; rejects odd length and non-hex characters ("bad_hex").
Result<Bytes> hex_decode(std::string_view text);

// RFC 4648 section 4, with '=' padding.
std::string base64_encode(ByteView data);
// Strict: requires correct padding and alphabet ("bad_base64").
Result<Bytes> base64_decode(std::string_view text);

// RFC 4648 section 5, without padding (as JOSE uses it).
std::string base64url_encode(ByteView data);
// Accepts input with or without trailing '=' padding ("bad_base64").
Result<Bytes> base64url_decode(std::string_view text);

// Compares in time independent of where the inputs differ (secrets, MACs, tokens).
bool constant_time_equal(ByteView a, ByteView b);
bool constant_time_equal(std::string_view a, std::string_view b);

// True when `text` is well-formed UTF-8 (RFC 3629: no overlong forms, surrogates or code points
// above U+10FFFF). Untrusted text is checked with this at the boundary before it is stored,
// compared or quoted in a JSON error.
bool is_valid_utf8(std::string_view text);

// Untrusted bytes made safe to quote in a message or a log line: printable ASCII is kept, every
// other byte becomes \xNN, and the result is cut after `max_bytes` input bytes with "..." added.
// The result is always ASCII, so serialising it (JSON, RFC 7807) cannot fail.
std::string printable_excerpt(std::string_view bytes, std::size_t max_bytes = 64);

// Little-endian integer reads for binary formats; callers check bounds first.
std::uint16_t load_le16(const std::uint8_t* p);
std::uint32_t load_le32(const std::uint8_t* p);
std::uint64_t load_le64(const std::uint8_t* p);
void store_le16(std::uint8_t* p, std::uint16_t v);
void store_le32(std::uint8_t* p, std::uint32_t v);
void store_le64(std::uint8_t* p, std::uint64_t v);

}  // namespace coffer
