// The "sample" attester: CoCo's unsigned test evidence {"svn": "...", "report_data": "<std
// base64 of the first 48 bytes of report data>"}. It proves nothing and is only ever used when
// asked for by name.
#pragma once

#include <string>

#include "guest/aa/attester.h"

namespace coffer::guest::aa {

class SampleAttester final : public Attester {
 public:
  explicit SampleAttester(std::string svn = "1") : svn_(std::move(svn)) {}
  [[nodiscard]] std::string_view tee() const override { return "sample"; }
  Result<Json> evidence(ByteView report_data) override;
  Status extend_runtime_measurement(std::uint32_t index, ByteView digest,
                                    std::string_view description) override;
  Result<InitDataBinding> check_init_data(ByteView digest) override;

 private:
  std::string svn_;
};

}  // namespace coffer::guest::aa
