#include "crypto/der.h"

namespace coffer::crypto {

Result<DerElement> DerReader::next() {
  // X.690 8.1.2/8.1.3: identifier octet, then short or long form length.
  if (data_.size() - pos_ < 2) return make_error("bad_der", "truncated TLV header");
  DerElement e;
  e.tag = data_[pos_++];
  if ((e.tag & 0x1f) == 0x1f) return make_error("bad_der", "multi-byte tags are not supported");
  std::size_t len = data_[pos_++];
  if (len & 0x80) {
    std::size_t n = len & 0x7f;
    if (n == 0 || n > 4) return make_error("bad_der", "unsupported length encoding");
    if (data_.size() - pos_ < n) return make_error("bad_der", "truncated length");
    len = 0;
    for (std::size_t i = 0; i < n; ++i) len = (len << 8) | data_[pos_++];
  }
  if (data_.size() - pos_ < len) return make_error("bad_der", "value runs past the end");
  e.contents = data_.subspan(pos_, len);
  pos_ += len;
  return e;
}

Result<ByteView> DerReader::expect(std::uint8_t tag) {
  auto e = COFFER_TRY(next());
  if (e.tag != tag) {
    return make_error(
        "bad_der", "unexpected tag " + std::to_string(e.tag) + ", wanted " + std::to_string(tag));
  }
  return e.contents;
}

Result<std::string> der_oid_to_string(ByteView contents) {
  // X.690 8.19: base-128 subidentifiers; the first encodes 40 * arc0 + arc1.
  if (contents.empty()) return make_error("bad_der", "empty OID");
  std::string out;
  std::uint64_t value = 0;
  bool first = true;
  for (std::size_t i = 0; i < contents.size(); ++i) {
    if (value > (UINT64_MAX >> 7)) return make_error("bad_der", "OID arc too large");
    value = (value << 7) | (contents[i] & 0x7f);
    if (contents[i] & 0x80) {
      if (i + 1 == contents.size()) return make_error("bad_der", "truncated OID arc");
      continue;
    }
    if (first) {
      std::uint64_t a0 = value < 40 ? 0 : (value < 80 ? 1 : 2);
      out = std::to_string(a0) + "." + std::to_string(value - 40 * a0);
      first = false;
    } else {
      out += "." + std::to_string(value);
    }
    value = 0;
  }
  return out;
}

Result<std::uint64_t> der_to_uint(ByteView contents) {
  // X.690 8.3: two's complement, big-endian, minimal; a leading 0x00 keeps the value positive.
  if (contents.empty()) return make_error("bad_der", "empty INTEGER");
  if (contents[0] & 0x80) return make_error("bad_der", "negative INTEGER");
  if (contents[0] == 0 && contents.size() > 1) contents = contents.subspan(1);
  if (contents.size() > 8) return make_error("bad_der", "INTEGER larger than 64 bits");
  std::uint64_t v = 0;
  for (auto b : contents) v = (v << 8) | b;
  return v;
}

}  // namespace coffer::crypto
