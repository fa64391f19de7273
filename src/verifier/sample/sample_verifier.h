// CoCo's "sample" TEE: unsigned JSON evidence {"svn": "1", "report_data": "<std base64>"}.
// It proves nothing and exists for protocol tests; the attestation service registers it only
// when explicitly enabled, and never falls back to it.
#pragma once

#include "verifier/verifier.h"

namespace coffer::verifier::sample {

class SampleVerifier final : public Verifier {
 public:
  [[nodiscard]] std::string_view tee() const override { return "sample"; }
  // Claims: {"svn", "report_data" (hex), "init_data" (hex, when given), "tee_root": "none"}.
  Result<Json> verify(const VerifyInput& input) const override;
};

}  // namespace coffer::verifier::sample
