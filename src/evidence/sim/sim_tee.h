// The simulated TEE's evidence: TDX quote v4, SGX quote v3 and SEV-SNP report v3, every byte in the
// hardware layout, signed through the simulation PKI (sim_pki.h). Verifiers accept it only when the
// sim root (Intel-like root CA, AMD-like ARK) is configured as trusted.
#pragma once

#include <array>
#include <cstdint>

#include "core/bytes.h"
#include "core/error.h"
#include "core/json.h"
#include "evidence/byte_reader.h"
#include "evidence/sgx/report.h"
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

// SGX SECS ATTRIBUTES.FLAGS bits (Intel SDM Vol. 3D, 38.7.1): INIT, DEBUG, MODE64BIT.
inline constexpr std::uint64_t kSgxFlagsInit = 1ULL << 0;
inline constexpr std::uint64_t kSgxFlagsDebug = 1ULL << 1;
inline constexpr std::uint64_t kSgxFlagsMode64 = 1ULL << 2;
// XFRM of a typical enclave (x87, SSE, AVX, AVX-512 state).
inline constexpr std::uint64_t kDefaultSgxXfrm = 0xe7;

// An SGX enclave's identity, as the hardware reports it (docs/simulated-tee.md, "Simulated
// SGX"): MRENCLAVE from the image's measurement, MRSIGNER from the key that signed it,
// ISVPRODID/ISVSVN from its signed metadata, CONFIGID = the init-data digest (zero-padded).
struct SgxIdentity {
  Fixed<32> mr_enclave{};
  Fixed<32> mr_signer{};
  std::uint16_t isv_prod_id = 0;
  std::uint16_t isv_svn = 0;
  std::uint64_t flags = kSgxFlagsInit | kSgxFlagsMode64;
  std::uint64_t xfrm = kDefaultSgxXfrm;
  std::uint32_t misc_select = 0;
  Fixed<64> config_id{};
  std::uint16_t config_svn = 0;
};

// The REPORT body the simulated CPU writes for `id` on this platform (CPUSVN from the platform).
sgx::EnclaveReport sgx_report_body(const SimPlatform& platform, const SgxIdentity& id,
                                   ByteView report_data);

// An SGX DCAP quote v3 over `report_data` (64 bytes; "bad_report_data" otherwise): header with
// QE_SVN/PCE_SVN, the enclave's report body, signed by the QE attestation key; the SGX QE's
// report (ISVPRODID 1) signed by the sim PCK key; certification data type 5 (PCK chain, PEM).
Result<Bytes> make_sgx_quote(const SimPki& pki, const SgxIdentity& id, ByteView report_data);

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
// snp {"attestation_report": b64, "cert_chain": [{"cert_type": "VCEK", "data": b64 DER}]};
// sgx {"quote": b64} (Trustee's SgxEvidence).
Json tdx_evidence_json(ByteView quote, ByteView cc_eventlog);
Json sgx_evidence_json(ByteView quote);
Json snp_evidence_json(ByteView report, ByteView vcek_der);

}  // namespace coffer::evidence::sim
