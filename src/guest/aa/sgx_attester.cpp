#include "guest/aa/sgx_attester.h"

#include <fcntl.h>
#include <unistd.h>

#include "core/file.h"

namespace coffer::guest::aa {

bool GramineSgxAttester::probe(const AttesterOptions& options) {
  auto type = read_text_file(options.gramine_attestation_dir / "attestation_type", 64);
  return type && type->starts_with("dcap");
}

Result<Json> GramineSgxAttester::evidence(ByteView report_data) {
  if (report_data.size() != kReportDataSize)
    return make_error("bad_report_data", "report data must be exactly 64 bytes");
  const auto& dir = options_.gramine_attestation_dir;
  auto type = read_text_file(dir / "attestation_type", 64);
  if (!type)
    return make_error("tee_not_found", "no Gramine attestation interface at " + dir.string());
  if (!type->starts_with("dcap")) {
    return make_error("tee_not_found",
                      "Gramine attestation type is '" + type->substr(0, type->find('\n')) +
                          "'; DCAP is required (sgx.remote_attestation = \"dcap\")");
  }
  int fd = ::open((dir / "user_report_data").c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return make_error("tee_io_error", "cannot open user_report_data");
  ssize_t n = ::write(fd, report_data.data(), report_data.size());
  ::close(fd);
  if (n != static_cast<ssize_t>(report_data.size()))
    return make_error("tee_io_error", "cannot write user_report_data");
  auto quote = read_file(dir / "quote", 1 << 20);
  if (!quote || quote->empty()) return make_error("tee_io_error", "cannot read the SGX quote");
  return Json{{"quote", base64_encode(*quote)}};
}

Status GramineSgxAttester::extend_runtime_measurement(std::uint32_t, ByteView, std::string_view) {
  return make_error("not_supported", "SGX enclaves have no runtime measurement registers");
}

Result<InitDataBinding> GramineSgxAttester::check_init_data(ByteView) {
  // Gramine does not let the host set CONFIGID; init-data is not bound by the hardware.
  return InitDataBinding::kUnsupported;
}

}  // namespace coffer::guest::aa
