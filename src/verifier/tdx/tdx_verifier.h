// The "tdx" verifier: evidence {"quote": "<base64 TDX quote v4/v5>", "cc_eventlog": "<base64>"?}
// as CoCo's attestation agent sends it; claims as Trustee's TDX verifier names them.
#pragma once

#include <memory>

#include "verifier/dcap/dcap_verifier.h"
#include "verifier/verifier.h"

namespace coffer::verifier::tdx {

class TdxVerifier final : public Verifier {
 public:
  explicit TdxVerifier(std::shared_ptr<const dcap::DcapVerifier> dcap) : dcap_(std::move(dcap)) {}
  [[nodiscard]] std::string_view tee() const override { return "tdx"; }
  // Errors: bad_evidence, the quote_* parse codes, every DCAP step code, report_data_mismatch,
  // init_data_mismatch.
  Result<Json> verify(const VerifyInput& input) const override;

 private:
  std::shared_ptr<const dcap::DcapVerifier> dcap_;
};

// The quote part of the claims (quote.header.*, quote.body.*, td_attributes, report_data,
// init_data), without verification results.
Json tdx_quote_claims(const evidence::tdx::Quote& quote);

}  // namespace coffer::verifier::tdx
