// libFuzzer target: SEV-SNP report parser (binary) and the CoCo JSON report form.
#include <cstdint>
#include <cstdlib>

#include "core/json.h"
#include "evidence/snp/report.h"
#include "evidence/snp/report_json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace esnp = coffer::evidence::snp;
  coffer::ByteView in(data, size);
  if (auto r = esnp::parse_report(in)) {
    if (esnp::serialize_report(*r) != coffer::Bytes(data, data + size)) std::abort();
    (void)r->product_from_cpuid();
    // the JSON form of a parsed report converts back to the same report
    auto back = esnp::report_from_json(esnp::report_to_json(*r));
    if (back && back->measurement != r->measurement) std::abort();
  }
  if (auto j = coffer::parse_json(std::string_view(reinterpret_cast<const char*>(data), size))) {
    (void)esnp::report_from_json(*j);
  }
  return 0;
}
