#include "verifier/dcap/pck_extensions.h"

#include <charconv>
#include <optional>
#include <string>

#include "crypto/der.h"
#include "verifier/dcap/errors.h"

namespace coffer::verifier::dcap {
namespace {

using crypto::DerReader;
namespace der_tag = crypto::der_tag;

// OIDs under the SGX extensions arc: kSgxExtensionsOid + "." + the sub-identifier.
std::optional<std::string> sgx_sub_oid(const std::string& oid) {
  std::string_view prefix(kSgxExtensionsOid);
  if (oid.size() <= prefix.size() || !oid.starts_with(prefix) || oid[prefix.size()] != '.')
    return std::nullopt;
  return oid.substr(prefix.size() + 1);
}

std::unexpected<Error> invalid(const std::string& what) {
  return make_error(DcapError::kPckExtensionsInvalid, "PCK certificate SGX extensions: " + what);
}

// One SEQUENCE { OID, value } entry: returns the OID suffix after the SGX prefix and the value.
Result<std::pair<std::string, crypto::DerElement>> read_entry(DerReader& in) {
  auto seq = COFFER_TRY(in.expect(der_tag::kSequence));
  DerReader entry(seq);
  auto oid_der = COFFER_TRY(entry.expect(der_tag::kOid));
  auto oid = COFFER_TRY(crypto::der_oid_to_string(oid_der));
  auto value = COFFER_TRY(entry.next());
  auto sub = sgx_sub_oid(oid);
  if (!sub) return make_error("bad_der", "foreign OID " + oid);
  return std::pair{std::move(*sub), value};
}

Result<void> read_tcb(ByteView tcb_seq, PckExtensions& out) {
  DerReader in(tcb_seq);
  std::uint32_t seen = 0;
  while (!in.empty()) {
    auto [id, value] = COFFER_TRY(read_entry(in));
    if (id == "2.18") {
      if (value.tag != der_tag::kOctetString || value.contents.size() != 16) {
        return make_error("bad_der", "CPUSVN is not a 16-byte OCTET STRING");
      }
      std::copy(value.contents.begin(), value.contents.end(), out.cpu_svn.begin());
      seen |= 1u << 18;
      continue;
    }
    if (value.tag != der_tag::kInteger) return make_error("bad_der", "TCB " + id + " not INTEGER");
    auto v = COFFER_TRY(crypto::der_to_uint(value.contents));
    if (id == "2.17") {
      if (v > 0xffff) return make_error("bad_der", "PCESVN out of range");
      out.pce_svn = static_cast<std::uint16_t>(v);
      seen |= 1u << 17;
      continue;
    }
    int n = 0;
    bool numeric =
        id.starts_with("2.") &&
        std::from_chars(id.data() + 2, id.data() + id.size(), n).ptr == id.data() + id.size();
    if (!numeric || n < 1 || n > 16 || v > 0xff) {
      return make_error("bad_der", "unexpected TCB entry " + id);
    }
    out.components[static_cast<std::size_t>(n - 1)] = static_cast<std::uint8_t>(v);
    seen |= 1u << n;
  }
  if (seen != 0x7fffeu) return make_error("bad_der", "TCB lacks some of its 18 entries");
  return {};
}

Result<PckExtensions> parse(ByteView ext) {
  PckExtensions out;
  DerReader outer(ext);
  DerReader in(COFFER_TRY(outer.expect(der_tag::kSequence)));
  bool has_tcb = false;
  while (!in.empty()) {
    auto [id, value] = COFFER_TRY(read_entry(in));
    Bytes bytes(value.contents.begin(), value.contents.end());
    if (id == "1") {
      out.ppid = bytes;
    } else if (id == "2") {
      COFFER_TRY_STATUS(read_tcb(value.contents, out));
      has_tcb = true;
    } else if (id == "3") {
      out.pce_id = bytes;
    } else if (id == "4") {
      out.fmspc = bytes;
    } else if (id == "5") {
      out.sgx_type = COFFER_TRY(crypto::der_to_uint(value.contents));
    } else if (id == "6") {
      out.platform_instance_id = bytes;
    }
  }
  if (!has_tcb || out.fmspc.size() != 6 || out.pce_id.size() != 2) {
    return make_error("bad_der", "TCB, FMSPC (6 bytes) and PCE-ID (2 bytes) are required");
  }
  return out;
}

}  // namespace

Result<PckExtensions> parse_pck_extensions(const crypto::Certificate& pck) {
  auto ext = pck.extension_value(kSgxExtensionsOid);
  if (!ext) return invalid("extension " + std::string(kSgxExtensionsOid) + " is missing");
  auto parsed = parse(*ext);
  if (!parsed) return invalid(parsed.error().message);
  return parsed;
}

}  // namespace coffer::verifier::dcap
