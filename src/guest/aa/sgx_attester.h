// The "sgx" attester inside a Gramine enclave: Gramine's attestation pseudo-filesystem
// (/dev/attestation): `attestation_type` must read "dcap", the report data goes to
// `user_report_data`, the DCAP quote v3 comes from `quote`.
#pragma once

#include "guest/aa/attester.h"

namespace coffer::guest::aa {

class GramineSgxAttester final : public Attester {
 public:
  explicit GramineSgxAttester(AttesterOptions options) : options_(std::move(options)) {}
  static bool probe(const AttesterOptions& options);

  [[nodiscard]] std::string_view tee() const override { return "sgx"; }
  Result<Json> evidence(ByteView report_data) override;
  Status extend_runtime_measurement(std::uint32_t index, ByteView digest,
                                    std::string_view description) override;
  Result<InitDataBinding> check_init_data(ByteView digest) override;

 private:
  AttesterOptions options_;
};

}  // namespace coffer::guest::aa
