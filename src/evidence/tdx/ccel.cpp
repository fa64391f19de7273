#include "evidence/tdx/ccel.h"

#include <algorithm>

#include "crypto/digest.h"

namespace coffer::evidence::tdx {
namespace {

constexpr std::string_view kSpecIdSignature{"Spec ID Event03\0", 16};
// Bounds that no real log reaches; they keep hostile input from asking for huge allocations.
constexpr std::uint32_t kMaxAlgorithms = 16;
constexpr std::uint32_t kMaxDigestsPerEvent = 16;

struct EventTypeName {
  std::uint32_t type;
  std::string_view name;
};

// PC Client PFP, Table 9, and the UEFI/TCG EFI extensions.
constexpr EventTypeName kEventTypeNames[] = {
    {0x0, "EV_PREBOOT_CERT"},
    {0x1, "EV_POST_CODE"},
    {0x2, "EV_UNUSED"},
    {0x3, "EV_NO_ACTION"},
    {0x4, "EV_SEPARATOR"},
    {0x5, "EV_ACTION"},
    {0x6, "EV_EVENT_TAG"},
    {0x7, "EV_S_CRTM_CONTENTS"},
    {0x8, "EV_S_CRTM_VERSION"},
    {0x9, "EV_CPU_MICROCODE"},
    {0xA, "EV_PLATFORM_CONFIG_FLAGS"},
    {0xB, "EV_TABLE_OF_DEVICES"},
    {0xC, "EV_COMPACT_HASH"},
    {0xD, "EV_IPL"},
    {0xE, "EV_IPL_PARTITION_DATA"},
    {0xF, "EV_NONHOST_CODE"},
    {0x10, "EV_NONHOST_CONFIG"},
    {0x11, "EV_NONHOST_INFO"},
    {0x12, "EV_OMIT_BOOT_DEVICE_EVENTS"},
    {0x80000000, "EV_EFI_EVENT_BASE"},
    {0x80000001, "EV_EFI_VARIABLE_DRIVER_CONFIG"},
    {0x80000002, "EV_EFI_VARIABLE_BOOT"},
    {0x80000003, "EV_EFI_BOOT_SERVICES_APPLICATION"},
    {0x80000004, "EV_EFI_BOOT_SERVICES_DRIVER"},
    {0x80000005, "EV_EFI_RUNTIME_SERVICES_DRIVER"},
    {0x80000006, "EV_EFI_GPT_EVENT"},
    {0x80000007, "EV_EFI_ACTION"},
    {0x80000008, "EV_EFI_PLATFORM_FIRMWARE_BLOB"},
    {0x80000009, "EV_EFI_HANDOFF_TABLES"},
    {0x8000000A, "EV_EFI_PLATFORM_FIRMWARE_BLOB2"},
    {0x8000000B, "EV_EFI_HANDOFF_TABLES2"},
    {0x8000000C, "EV_EFI_VARIABLE_BOOT2"},
    {0x80000010, "EV_EFI_HCRTM_EVENT"},
    {0x800000E0, "EV_EFI_VARIABLE_AUTHORITY"},
    {0x800000E1, "EV_EFI_SPDM_FIRMWARE_BLOB"},
    {0x800000E2, "EV_EFI_SPDM_FIRMWARE_CONFIG"},
};

std::unexpected<Error> invalid(std::string message) {
  return make_error("eventlog_invalid", std::move(message));
}

// The end of the records: fewer than 8 bytes left, or 8 bytes of 0xFF fill or zeros.
bool at_end(ByteView data, std::size_t offset) {
  if (data.size() - offset < 8) return true;
  auto next = data.subspan(offset, 8);
  return std::all_of(next.begin(), next.end(), [](std::uint8_t b) { return b == 0xFF; }) ||
         std::all_of(next.begin(), next.end(), [](std::uint8_t b) { return b == 0x00; });
}

}  // namespace

std::string_view event_type_name(std::uint32_t type) {
  for (const auto& e : kEventTypeNames) {
    if (e.type == type) return e.name;
  }
  return "UNKNOWN";
}

std::string_view digest_alg_name(std::uint16_t alg) {
  switch (alg) {
    case kTpmAlgSha1:
      return "SHA-1";
    case kTpmAlgSha256:
      return "SHA-256";
    case kTpmAlgSha384:
      return "SHA-384";
    case kTpmAlgSha512:
      return "SHA-512";
    default:
      return "UNKNOWN";
  }
}

const Bytes* CcEvent::digest(std::uint16_t alg) const {
  for (const auto& d : digests) {
    if (d.alg == alg) return &d.digest;
  }
  return nullptr;
}

Result<EventLog> parse_event_log(ByteView data) {
  ByteReader in(data, "eventlog_truncated");
  EventLog log;

  // 1. TCG_PCR_EVENT header (SHA-1 format): index, EV_NO_ACTION, 20 zero bytes, Spec ID event
  COFFER_TRY(in.u32("header index"));
  if (COFFER_TRY(in.u32("header type")) != kEvNoAction) {
    return invalid("the first record is not the EV_NO_ACTION Spec ID event");
  }
  COFFER_TRY(in.take(20, "header digest"));
  std::uint32_t spec_size = COFFER_TRY(in.u32("header event size"));
  ByteReader spec(COFFER_TRY(in.take(spec_size, "Spec ID event")), "eventlog_truncated");
  auto signature = COFFER_TRY(spec.take(16, "Spec ID signature"));
  if (to_string(signature) != kSpecIdSignature) {
    return invalid("the header is not a crypto-agile \"Spec ID Event03\" log");
  }
  COFFER_TRY(spec.take(8, "platform class and versions"));  // platformClass, minor, major,
                                                            // errata, uintnSize
  std::uint32_t count = COFFER_TRY(spec.u32("number of algorithms"));
  if (count == 0 || count > kMaxAlgorithms) {
    return invalid("the Spec ID event lists " + std::to_string(count) + " algorithms");
  }
  for (std::uint32_t i = 0; i < count; ++i) {
    AlgorithmSize a;
    a.alg = COFFER_TRY(spec.u16("algorithm id"));
    a.size = COFFER_TRY(spec.u16("digest size"));
    if (a.size == 0 || a.size > 64) return invalid("digest size " + std::to_string(a.size));
    log.algorithms.push_back(a);
  }
  std::uint8_t vendor_size = COFFER_TRY(spec.u8("vendor info size"));
  auto vendor = COFFER_TRY(spec.take(vendor_size, "vendor info"));
  log.vendor_info.assign(vendor.begin(), vendor.end());
  if (spec.remaining() != 0) return invalid("the Spec ID event has trailing bytes");

  // 2. TCG_PCR_EVENT2 records until the fill
  while (!at_end(data, in.offset())) {
    CcEvent e;
    e.mr_index = COFFER_TRY(in.u32("event index"));
    e.type = COFFER_TRY(in.u32("event type"));
    std::uint32_t digests = COFFER_TRY(in.u32("digest count"));
    if (digests > kMaxDigestsPerEvent) {
      return invalid("event at offset " + std::to_string(in.offset()) + " has " +
                     std::to_string(digests) + " digests");
    }
    for (std::uint32_t i = 0; i < digests; ++i) {
      EventDigest d;
      d.alg = COFFER_TRY(in.u16("digest algorithm"));
      auto it = std::find_if(log.algorithms.begin(), log.algorithms.end(),
                             [&](const AlgorithmSize& a) { return a.alg == d.alg; });
      if (it == log.algorithms.end()) {
        return invalid("digest algorithm " + std::to_string(d.alg) +
                       " is not declared in the Spec ID event");
      }
      auto v = COFFER_TRY(in.take(it->size, "digest"));
      d.digest.assign(v.begin(), v.end());
      e.digests.push_back(std::move(d));
    }
    std::uint32_t size = COFFER_TRY(in.u32("event size"));
    auto v = COFFER_TRY(in.take(size, "event data"));
    e.data.assign(v.begin(), v.end());
    log.events.push_back(std::move(e));
  }
  return log;
}

Bytes serialize_event_log(const EventLog& log) {
  ByteWriter spec;
  spec.put(as_bytes(kSpecIdSignature));
  spec.u32(0);  // platformClass: client
  spec.u8(0);   // specVersionMinor
  spec.u8(2);   // specVersionMajor
  spec.u8(0);   // specErrata
  spec.u8(2);   // uintnSize: 64-bit UINTN
  spec.u32(static_cast<std::uint32_t>(log.algorithms.size()));
  for (const auto& a : log.algorithms) {
    spec.u16(a.alg);
    spec.u16(a.size);
  }
  spec.u8(static_cast<std::uint8_t>(log.vendor_info.size()));
  spec.put(log.vendor_info);
  Bytes spec_bytes = spec.take();

  ByteWriter out;
  out.u32(0);
  out.u32(kEvNoAction);
  out.put(Fixed<20>{});
  out.u32(static_cast<std::uint32_t>(spec_bytes.size()));
  out.put(spec_bytes);
  for (const auto& e : log.events) {
    out.u32(e.mr_index);
    out.u32(e.type);
    out.u32(static_cast<std::uint32_t>(e.digests.size()));
    for (const auto& d : e.digests) {
      out.u16(d.alg);
      out.put(d.digest);
    }
    out.u32(static_cast<std::uint32_t>(e.data.size()));
    out.put(e.data);
  }
  return out.take();
}

void extend_rtmr(Fixed<48>& rtmr, ByteView digest) {
  Bytes buf(rtmr.begin(), rtmr.end());
  buf.insert(buf.end(), digest.begin(), digest.end());
  Bytes next = crypto::sha384(buf);
  std::copy(next.begin(), next.end(), rtmr.begin());
}

Result<Rtmrs> replay_rtmrs(const EventLog& log) {
  Rtmrs rtmrs{};
  for (const auto& e : log.events) {
    // index 0 is MRTD (built by the TDX module, not extended from the log); EV_NO_ACTION is
    // informational by definition
    if (e.mr_index == 0 || e.type == kEvNoAction) continue;
    if (e.mr_index > 4) {
      return invalid("event measured into register index " + std::to_string(e.mr_index) +
                     " (only 1..4 map to RTMR0..3)");
    }
    const Bytes* d = e.digest(kTpmAlgSha384);
    if (!d || d->size() != 48) return invalid("an RTMR event lacks a SHA-384 digest");
    extend_rtmr(rtmrs[e.mr_index - 1], *d);
  }
  return rtmrs;
}

EventLogWriter::EventLogWriter() {
  log_.algorithms.push_back({kTpmAlgSha384, 48});
  log_.vendor_info = to_bytes("coffer");
}

void EventLogWriter::append(unsigned rtmr, std::uint32_t type, ByteView event_data,
                            ByteView measured) {
  Bytes digest = crypto::sha384(measured);
  append_digest(rtmr, type, event_data, digest);
}

void EventLogWriter::append_digest(unsigned rtmr, std::uint32_t type, ByteView event_data,
                                   ByteView digest) {
  if (rtmr > 3 || digest.size() != 48) std::abort();  // caller bug, not input
  CcEvent e;
  e.mr_index = rtmr + 1;
  e.type = type;
  e.digests.push_back({kTpmAlgSha384, Bytes(digest.begin(), digest.end())});
  e.data.assign(event_data.begin(), event_data.end());
  log_.events.push_back(std::move(e));
  extend_rtmr(rtmrs_[rtmr], digest);
}

}  // namespace coffer::evidence::tdx
