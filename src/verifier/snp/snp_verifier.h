// The "snp" verifier: evidence {"attestation_report": <virtee/sev AttestationReport JSON> or
// "<base64 1184-byte report>",
// "cert_chain": [{"cert_type": "VCEK"|"VLEK"|"ASK"|"ARK", "data": [bytes] | "<base64>"}]?};
// claims as Trustee's SNP verifier names them (policy_*, reported_tcb_*, platform_*,
// measurement, report_data, init_data - base64 like Trustee) plus vmpl, product, vek_type.
#pragma once

#include <memory>

#include "verifier/snp/vek_chain.h"
#include "verifier/verifier.h"

namespace coffer::verifier::snp {

class SnpVerifier final : public Verifier {
 public:
  explicit SnpVerifier(std::shared_ptr<const SnpChainVerifier> chain) : chain_(std::move(chain)) {}
  [[nodiscard]] std::string_view tee() const override { return "snp"; }
  // Errors: bad_evidence, report_* parse codes, every chain step code, report_data_mismatch,
  // init_data_mismatch. VMPL and policy bits are claims, judged by policy.
  Result<Json> verify(const VerifyInput& input) const override;

 private:
  std::shared_ptr<const SnpChainVerifier> chain_;
};

Json snp_report_claims(const evidence::snp::Report& report, Product product);

}  // namespace coffer::verifier::snp
