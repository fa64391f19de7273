// TCB level selection and status convergence, following Intel's TCB evaluation rules (Intel SGX
// and TDX PCS API, "TCB Info V3": the first level whose components are all <= the platform's
// is the platform's level; QE and TDX module statuses then converge into the quote status).
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "verifier/dcap/collateral.h"
#include "verifier/dcap/pck_extensions.h"

namespace coffer::verifier::dcap {

struct TdxTcbInput {
  std::array<std::uint8_t, 16> tee_tcb_svn{};
  std::array<std::uint8_t, 48> mrsigner_seam{};
  std::array<std::uint8_t, 8> seam_attributes{};
};

struct TcbEvaluation {
  TcbStatus status = TcbStatus::kUpToDate;  // converged
  TcbStatus platform_status = TcbStatus::kUpToDate;
  TcbStatus qe_status = TcbStatus::kUpToDate;
  std::optional<TcbStatus> tdx_module_status;
  std::string tcb_date;
  std::vector<std::string> advisory_ids;
};

// The first ISV level with isv_svn <= svn ("qe_tcb_level_not_found" style codes by caller).
const IsvTcbLevel* select_isv_level(const std::vector<IsvTcbLevel>& levels, std::uint16_t svn);

// Errors: tcb_level_not_found, tdx_module_mismatch, tdx_module_tcb_level_not_found.
Result<TcbEvaluation> evaluate_tcb(const TcbInfo& info, const PckExtensions& pck,
                                   const IsvTcbLevel& qe_level,
                                   const std::optional<TdxTcbInput>& tdx);

}  // namespace coffer::verifier::dcap
