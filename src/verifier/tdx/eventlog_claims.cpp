#include "verifier/tdx/eventlog_claims.h"

#include <algorithm>
#include <optional>
#include <string>

#include "crypto/digest.h"

namespace coffer::verifier::tdx {
namespace {

namespace etdx = evidence::tdx;

// The bytes as text if they are valid UTF-8 (policies get "" otherwise, as Trustee's do).
std::optional<std::string> utf8(ByteView b) {
  std::size_t i = 0;
  while (i < b.size()) {
    std::uint8_t c = b[i];
    std::size_t n = 0;  // continuation bytes
    if (c < 0x80) {
      n = 0;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
    } else {
      return std::nullopt;
    }
    if (b.size() - i <= n) return std::nullopt;
    for (std::size_t k = 1; k <= n; ++k) {
      if ((b[i + k] & 0xC0) != 0x80) return std::nullopt;
    }
    // overlong forms, surrogates, beyond U+10FFFF
    std::uint8_t c1 = n > 0 ? b[i + 1] : 0;
    if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0) || (c == 0xF0 && c1 < 0x90) ||
        (c == 0xF4 && c1 >= 0x90)) {
      return std::nullopt;
    }
    i += n + 1;
  }
  return to_string(b);
}

std::string without_nul(std::string s) {
  std::erase(s, '\0');
  return s;
}

// Drops Unicode control characters (C0, DEL, C1) from valid UTF-8.
std::string without_controls(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) continue;
    if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) < 0xA0) {
      ++i;
      continue;
    }
    out.push_back(s[i]);
  }
  return out;
}

Json string_details(std::string s) { return Json{{"string", std::move(s)}}; }

std::string guid_text(ByteView g) {
  return hex_encode(g.subspan(0, 4)) + "-" + hex_encode(g.subspan(4, 2)) + "-" +
         hex_encode(g.subspan(6, 2)) + "-" + hex_encode(g.subspan(8, 2)) + "-" +
         hex_encode(g.subspan(10, 6));
}

// UEFI_VARIABLE_DATA (PC Client PFP, 10.4.4): GUID, u64 name length (UTF-16 units), u64 data
// length, name, data.
Json variable_details(ByteView d) {
  if (d.size() < 32) return Json::object();
  std::uint64_t name_len = load_le64(d.data() + 16);
  std::uint64_t data_len = load_le64(d.data() + 24);
  if (name_len > (d.size() - 32) / 2 || data_len > d.size() - 32 - name_len * 2) {
    return Json::object();
  }
  auto name = utf8(d.subspan(32, name_len * 2));
  if (!name) return Json::object();
  return Json{
      {"unicode_name", without_nul(*name)},
      {"unicode_name_length", name_len},
      {"variable_data", data_len ? base64_encode(d.subspan(32 + name_len * 2, data_len)) : ""},
      {"variable_data_length", data_len},
      {"variable_name", guid_text(d.first(16))}};
}

Json details(const etdx::CcEvent& e) {
  ByteView d = e.data;
  switch (e.type) {
    case 0x1:   // EV_POST_CODE
    case 0x5:   // EV_ACTION
    case 0xC:   // EV_COMPACT_HASH
    case 0x12:  // EV_OMIT_BOOT_DEVICE_EVENTS
    case etdx::kEvEfiAction:
      return string_details(utf8(d).value_or(""));
    case etdx::kEvEventTag: {
      // TCG_PCClientTaggedEvent: u32 id, u32 size, data
      if (d.size() < 8) return Json::object();
      std::uint32_t size = load_le32(d.data() + 4);
      if (size > d.size() - 8) return Json::object();
      auto s = utf8(d.subspan(8, size));
      return s ? string_details(without_nul(*s)) : Json::object();
    }
    case etdx::kEvPlatformConfigFlags: {
      // td-shim's TD_SHIM_PLATFORM_CONFIG_INFO: descriptor, u32 length, text
      std::string s = utf8(d).value_or("");
      std::replace(s.begin(), s.end(), '\x10', ' ');
      return string_details(without_controls(s));
    }
    case etdx::kEvIpl:
      return string_details(without_nul(utf8(d).value_or("")));
    case etdx::kEvEfiPlatformFirmwareBlob2:
    case 0x8000000B: {  // EV_EFI_HANDOFF_TABLES2: u8 description size, description, ...
      if (d.empty() || d[0] > d.size() - 1) return Json::object();
      auto s = utf8(d.subspan(1, d[0]));
      return s ? string_details(without_nul(*s)) : Json::object();
    }
    case 0x80000001:  // EV_EFI_VARIABLE_DRIVER_CONFIG
    case 0x80000002:  // EV_EFI_VARIABLE_BOOT
    case 0x8000000C:  // EV_EFI_VARIABLE_BOOT2
    case 0x800000E0:  // EV_EFI_VARIABLE_AUTHORITY
      return variable_details(d);
    default:
      return Json::object();
  }
}

// Whether every digest of the record is the hash of its event data (true for events that
// measure themselves, e.g. separators, EFI actions, variables).
bool digest_matches_event(const etdx::CcEvent& e) {
  if (e.digests.empty()) return false;
  for (const auto& dg : e.digests) {
    crypto::DigestAlg alg;
    switch (dg.alg) {
      case etdx::kTpmAlgSha256:
        alg = crypto::DigestAlg::kSha256;
        break;
      case etdx::kTpmAlgSha384:
        alg = crypto::DigestAlg::kSha384;
        break;
      case etdx::kTpmAlgSha512:
        alg = crypto::DigestAlg::kSha512;
        break;
      default:
        return false;
    }
    if (crypto::digest(alg, e.data) != dg.digest) return false;
  }
  return true;
}

}  // namespace

Json event_log_claims(const etdx::EventLog& log) {
  Json out = Json::array();
  for (const auto& e : log.events) {
    Json digests = Json::array();
    for (const auto& d : e.digests) {
      digests.push_back(
          {{"alg", std::string(etdx::digest_alg_name(d.alg))}, {"digest", hex_encode(d.digest)}});
    }
    out.push_back({{"details", details(e)},
                   {"digest_matches_event", digest_matches_event(e)},
                   {"digests", std::move(digests)},
                   {"event", base64_encode(e.data)},
                   {"index", e.mr_index},
                   {"type_name", std::string(etdx::event_type_name(e.type))}});
  }
  return out;
}

}  // namespace coffer::verifier::tdx
