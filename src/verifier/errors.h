// Error codes the TEE verifiers share (evidence shape, freshness and configuration binding, event
// log replay); see verifier/error_code.h. The wire strings are stable.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "verifier/error_code.h"

namespace coffer::verifier {

enum class VerifierError : std::uint8_t {
  kBadEvidence,
  kReportDataMismatch,
  kInitDataMismatch,
  kEventlogRtmrMismatch,
  kAaEventlogRtmrMismatch,
  kCount
};

inline constexpr auto kVerifierErrorNames = std::to_array<ErrorCodeName<VerifierError>>({
    {VerifierError::kBadEvidence, "bad_evidence"},
    {VerifierError::kReportDataMismatch, "report_data_mismatch"},
    {VerifierError::kInitDataMismatch, "init_data_mismatch"},
    {VerifierError::kEventlogRtmrMismatch, "eventlog_rtmr_mismatch"},
    {VerifierError::kAaEventlogRtmrMismatch, "aa_eventlog_rtmr_mismatch"},
});
static_assert(error_table_is_ordered(kVerifierErrorNames));

constexpr std::string_view code_string(VerifierError e) {
  return kVerifierErrorNames[static_cast<std::size_t>(e)].name;
}

}  // namespace coffer::verifier
