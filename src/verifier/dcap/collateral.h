// Intel PCS collateral: TCB info (v3, SGX and TDX) and enclave identity (QE / TD_QE, v2), as the
// Intel PCS v4 API returns them (Intel SGX and TDX PCS API specification, "TCB Info V3" and
// "Enclave Identity V2"). The signature covers the exact bytes of the "tcbInfo" /
// "enclaveIdentity" member as they appear in the response text, so parsing keeps that text.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/clock.h"
#include "core/error.h"

namespace coffer::verifier::dcap {

enum class TcbStatus {
  kUpToDate,
  kSWHardeningNeeded,
  kConfigurationNeeded,
  kConfigurationAndSWHardeningNeeded,
  kOutOfDate,
  kOutOfDateConfigurationNeeded,
  kRevoked,
};
std::string_view tcb_status_name(TcbStatus s);  // Intel's spelling, e.g. "SWHardeningNeeded"
Result<TcbStatus> parse_tcb_status(std::string_view name);

// A level keyed by one ISV SVN (QE identity levels, TDX module identity levels).
struct IsvTcbLevel {
  std::uint16_t isv_svn = 0;
  TcbStatus status = TcbStatus::kUpToDate;
  std::string tcb_date;
  std::vector<std::string> advisory_ids;
};

struct TcbLevel {
  std::array<std::uint8_t, 16> sgx_components{};
  std::uint16_t pce_svn = 0;
  std::optional<std::array<std::uint8_t, 16>> tdx_components;  // TDX TCB info only
  TcbStatus status = TcbStatus::kUpToDate;
  std::string tcb_date;
  std::vector<std::string> advisory_ids;
};

struct TdxModuleIdentity {
  std::string id;  // "TDX_01", "TDX_03", ...; "" for the legacy tdxModule entry
  Bytes mrsigner;  // 48 bytes
  Bytes attributes;
  Bytes attributes_mask;  // 8 bytes each
  std::vector<IsvTcbLevel> levels;
};

struct TcbInfo {
  std::string id;  // "SGX" or "TDX"
  int version = 0;
  TimePoint issue_date;
  TimePoint next_update;
  Bytes fmspc;
  Bytes pce_id;
  int tcb_evaluation_data_number = 0;
  std::optional<TdxModuleIdentity> tdx_module;
  std::vector<TdxModuleIdentity> tdx_module_identities;
  std::vector<TcbLevel> levels;
  std::string signed_body;  // the raw "tcbInfo" member text
  Bytes signature;          // ECDSA P-256 r || s
};

struct EnclaveIdentity {
  std::string id;  // "QE", "TD_QE", "QVE"
  int version = 0;
  TimePoint issue_date;
  TimePoint next_update;
  int tcb_evaluation_data_number = 0;
  std::uint32_t miscselect = 0;
  std::uint32_t miscselect_mask = 0;
  Bytes attributes;       // 16 bytes
  Bytes attributes_mask;  // 16 bytes
  Bytes mrsigner;         // 32 bytes
  std::uint16_t isv_prod_id = 0;
  std::vector<IsvTcbLevel> levels;
  std::string signed_body;
  Bytes signature;
};

// "tcb_info_invalid" / "qe_identity_invalid" on malformed documents.
Result<TcbInfo> parse_tcb_info(std::string_view response_body);
Result<EnclaveIdentity> parse_enclave_identity(std::string_view response_body);

// The raw text of a top-level member's value in a JSON object text (exact bytes, no
// re-serialisation); "bad_json" if absent, malformed, or if any top-level member name repeats
// (compared after unescaping, so "tcb\u0049nfo" repeats "tcbInfo").
Result<std::string_view> raw_json_member(std::string_view object_text, std::string_view key);

}  // namespace coffer::verifier::dcap
