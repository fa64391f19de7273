// The CC event log (CCEL) of a TD: a TCG2 "crypto agile" event log (TCG PC Client Platform
// Firmware Profile Specification, section 10.2: a TCG_PCR_EVENT header carrying the
// TCG_EfiSpecIDEvent, then TCG_PCR_EVENT2 records with a TPML_DIGEST_VALUES each). Firmware
// (TDVF, td-shim) publishes it through the ACPI CCEL table; the area after the last record is
// filled with 0xFF (or zeros).
//
// The record's "PCR index" is a measurement register index: 0 = MRTD, 1..4 = RTMR0..3 (Intel TDX
// Virtual Firmware Design Guide, "TD Event Log"; UEFI 2.10 EFI_CC_MEASUREMENT_PROTOCOL). RTMRs
// start at zero and are extended as RTMR := SHA-384(RTMR || digest).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "core/error.h"
#include "evidence/byte_reader.h"

namespace coffer::evidence::tdx {

// TPM_ALG_ID values (TCG Algorithm Registry).
inline constexpr std::uint16_t kTpmAlgSha1 = 0x0004;
inline constexpr std::uint16_t kTpmAlgSha256 = 0x000B;
inline constexpr std::uint16_t kTpmAlgSha384 = 0x000C;
inline constexpr std::uint16_t kTpmAlgSha512 = 0x000D;

// Event types (PC Client PFP, Table 9 "Events").
inline constexpr std::uint32_t kEvNoAction = 0x3;
inline constexpr std::uint32_t kEvSeparator = 0x4;
inline constexpr std::uint32_t kEvEventTag = 0x6;
inline constexpr std::uint32_t kEvPlatformConfigFlags = 0xA;
inline constexpr std::uint32_t kEvIpl = 0xD;
inline constexpr std::uint32_t kEvEfiAction = 0x80000007;
inline constexpr std::uint32_t kEvEfiPlatformFirmwareBlob2 = 0x8000000A;

// "EV_SEPARATOR", "EV_EFI_PLATFORM_FIRMWARE_BLOB2", ...; "UNKNOWN" for other values.
std::string_view event_type_name(std::uint32_t type);
// "SHA-1", "SHA-256", "SHA-384", "SHA-512", "UNKNOWN".
std::string_view digest_alg_name(std::uint16_t alg);

struct AlgorithmSize {
  std::uint16_t alg = 0;
  std::uint16_t size = 0;
};

struct EventDigest {
  std::uint16_t alg = 0;
  Bytes digest;
};

struct CcEvent {
  std::uint32_t mr_index = 0;  // 0 MRTD, 1..4 RTMR0..3
  std::uint32_t type = 0;
  std::vector<EventDigest> digests;
  Bytes data;
  // The digest of `alg`, if the record carries one.
  [[nodiscard]] const Bytes* digest(std::uint16_t alg) const;
};

struct EventLog {
  // From the TCG_EfiSpecIDEvent header.
  std::vector<AlgorithmSize> algorithms;
  Bytes vendor_info;
  std::vector<CcEvent> events;
};

using Rtmrs = std::array<Fixed<48>, 4>;

// Errors: "eventlog_invalid" (bad header, unknown algorithm, inconsistent sizes) and
// "eventlog_truncated".
Result<EventLog> parse_event_log(ByteView data);
// Header and records, without the 0xFF fill.
Bytes serialize_event_log(const EventLog& log);

// RTMR0-3 from the SHA-384 digests of the records with index 1..4 (EV_NO_ACTION records are not
// extended). "eventlog_invalid" if such a record lacks a SHA-384 digest.
Result<Rtmrs> replay_rtmrs(const EventLog& log);
// RTMR := SHA-384(RTMR || digest).
void extend_rtmr(Fixed<48>& rtmr, ByteView digest);

// Builds a CCEL the way TD firmware does, SHA-384 only, tracking the RTMR values it implies (for
// the simulated TEE and tests).
class EventLogWriter {
 public:
  EventLogWriter();
  // Records an event extended into RTMR `rtmr` (0..3): its digest is SHA-384(measured).
  void append(unsigned rtmr, std::uint32_t type, ByteView event_data, ByteView measured);
  // Records an event with a precomputed SHA-384 digest (48 bytes).
  void append_digest(unsigned rtmr, std::uint32_t type, ByteView event_data, ByteView digest);
  [[nodiscard]] const Rtmrs& rtmrs() const { return rtmrs_; }
  [[nodiscard]] const EventLog& log() const { return log_; }
  [[nodiscard]] Bytes serialize() const { return serialize_event_log(log_); }

 private:
  EventLog log_;
  Rtmrs rtmrs_{};
};

}  // namespace coffer::evidence::tdx
