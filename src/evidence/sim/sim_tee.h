// The simulated TEE's evidence: TDX quote v4 and SEV-SNP report v3, every byte in the hardware
// layout, signed through the simulation PKI (sim_pki.h). Verifiers accept it only when the sim
// root (Intel-like root CA, AMD-like ARK) is configured as trusted.
#pragma once

#include <array>
#include <cstdint>

#include "core/bytes.h"
#include "core/error.h"
#include "core/json.h"
#include "evidence/byte_reader.h"
#include "evidence/sim/sim_pki.h"

namespace coffer::evidence::sim {

// TDATTRIBUTES bit 0: DEBUG; bit 28: SEPT_VE_DISABLE (set on production TDs).
inline constexpr std::uint64_t kTdAttributesDebug = 1ULL << 0;
inline constexpr std::uint64_t kTdAttributesSeptVeDisable = 1ULL << 28;
// XFAM of a typical TD (x87, SSE, AVX, AVX-512, PKRU, AMX).
inline constexpr std::uint64_t kDefaultXfam = 0x00000000000642e7ULL;

struct TdMeasurements {
  Fixed<48> mr_td{};
  std::array<Fixed<48>, 4> rtmr{};
  Fixed<48> mr_config_id{};
  Fixed<48> mr_owner{};
  Fixed<48> mr_owner_config{};
  std::uint64_t td_attributes = kTdAttributesSeptVeDisable;
  std::uint64_t xfam = kDefaultXfam;
};

// A TDX quote v4 (certification data type 6 nesting the PEM PCK chain) over `report_data`
// (64 bytes). "bad_report_data" for another size.
Result<Bytes> make_tdx_quote(const SimPki& pki, const TdMeasurements& td, ByteView report_data);

// SNP guest policy: ABI 0.0, bit 16 SMT allowed, bit 17 reserved-must-be-one; debug (bit 19)
// and migration agent (bit 18) off.
inline constexpr std::uint64_t kDefaultSnpPolicy = 0x30000;

struct SnpGuest {
  Fixed<48> measurement{};
  Fixed<32> host_data{};
  std::uint64_t policy = kDefaultSnpPolicy;
  std::uint32_t vmpl = 0;
  std::uint32_t guest_svn = 0;
  Fixed<16> family_id{};
  Fixed<16> image_id{};
};

// An SNP ATTESTATION_REPORT v3 (1184 bytes) signed by the sim VCEK.
Result<Bytes> make_snp_report(const SimPki& pki, const SnpGuest& guest, ByteView report_data);

// KBS protocol evidence JSON (tee-evidence.primary_evidence), as CoCo's attesters send it:
// tdx {"quote": b64, "cc_eventlog": b64 (omitted when empty)};
// snp {"attestation_report": b64, "cert_chain": [{"cert_type": "VCEK", "data": b64 DER}]}.
Json tdx_evidence_json(ByteView quote, ByteView cc_eventlog);
Json snp_evidence_json(ByteView report, ByteView vcek_der);

}  // namespace coffer::evidence::sim
