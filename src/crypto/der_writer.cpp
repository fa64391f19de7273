#include "crypto/der_writer.h"

#include <charconv>
#include <vector>

#include "crypto/der.h"

namespace coffer::crypto {
namespace {

void append_base128(Bytes& out, std::uint64_t v) {
  std::uint8_t tmp[10];
  int n = 0;
  do {
    tmp[n++] = static_cast<std::uint8_t>(v & 0x7f);
    v >>= 7;
  } while (v != 0);
  while (n > 0) {
    --n;
    out.push_back(static_cast<std::uint8_t>(tmp[n] | (n > 0 ? 0x80 : 0)));
  }
}

}  // namespace

Bytes der_tlv(std::uint8_t tag, ByteView contents) {
  Bytes out{tag};
  std::size_t len = contents.size();
  if (len < 0x80) {
    out.push_back(static_cast<std::uint8_t>(len));
  } else {
    Bytes len_bytes;
    for (std::size_t l = len; l != 0; l >>= 8) len_bytes.insert(len_bytes.begin(), l & 0xff);
    out.push_back(static_cast<std::uint8_t>(0x80 | len_bytes.size()));
    out.insert(out.end(), len_bytes.begin(), len_bytes.end());
  }
  out.insert(out.end(), contents.begin(), contents.end());
  return out;
}

Bytes der_sequence(std::initializer_list<ByteView> elements) {
  Bytes body;
  for (ByteView e : elements) body.insert(body.end(), e.begin(), e.end());
  return der_tlv(der_tag::kSequence, body);
}

Bytes der_sequence_of(const std::vector<Bytes>& elements) {
  Bytes body;
  for (const Bytes& e : elements) body.insert(body.end(), e.begin(), e.end());
  return der_tlv(der_tag::kSequence, body);
}

Bytes der_uint(std::uint64_t value) {
  Bytes body;
  do {
    body.insert(body.begin(), static_cast<std::uint8_t>(value & 0xff));
    value >>= 8;
  } while (value != 0);
  if (body.front() & 0x80) body.insert(body.begin(), 0);
  return der_tlv(der_tag::kInteger, body);
}

Bytes der_octet_string(ByteView value) { return der_tlv(der_tag::kOctetString, value); }

Bytes der_ia5_string(std::string_view value) { return der_tlv(0x16, as_bytes(value)); }

Result<Bytes> der_oid(std::string_view dotted) {
  std::vector<std::uint64_t> arcs;
  std::size_t pos = 0;
  while (pos <= dotted.size()) {
    auto dot = dotted.find('.', pos);
    if (dot == std::string_view::npos) dot = dotted.size();
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(dotted.data() + pos, dotted.data() + dot, v);
    if (ec != std::errc() || p != dotted.data() + dot || dot == pos)
      return make_error("bad_der", "malformed OID " + std::string(dotted));
    arcs.push_back(v);
    pos = dot + 1;
  }
  if (arcs.size() < 2 || arcs[0] > 2 || (arcs[0] < 2 && arcs[1] >= 40))
    return make_error("bad_der", "malformed OID " + std::string(dotted));
  Bytes body;
  append_base128(body, arcs[0] * 40 + arcs[1]);
  for (std::size_t i = 2; i < arcs.size(); ++i) append_base128(body, arcs[i]);
  return der_tlv(der_tag::kOid, body);
}

}  // namespace coffer::crypto
