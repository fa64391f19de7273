#include "guest/aa/sample_attester.h"

namespace coffer::guest::aa {

// The KBS's sample verifier compares report_data with the 48-byte SHA-384 of the runtime data,
// which the RCAR client zero-pads to 64 bytes for every TEE.
constexpr std::size_t kSampleReportDataSize = 48;

Result<Json> SampleAttester::evidence(ByteView report_data) {
  if (report_data.size() != kReportDataSize)
    return make_error("bad_report_data", "report data must be exactly 64 bytes");
  return Json{{"svn", svn_},
              {"report_data", base64_encode(report_data.first(kSampleReportDataSize))}};
}

Status SampleAttester::extend_runtime_measurement(std::uint32_t /*index*/, ByteView /*digest*/,
                                                  std::string_view /*description*/) {
  return make_error("not_supported", "the sample TEE has no runtime measurement registers");
}

Result<InitDataBinding> SampleAttester::check_init_data(ByteView /*digest*/) {
  return InitDataBinding::kUnsupported;
}

}  // namespace coffer::guest::aa
