// The "sgx" verifier: evidence {"quote": "<base64 SGX DCAP quote v3>"}; claims as Trustee's SGX
// verifier names them (header.*, body.*, report_data, init_data = CONFIGID).
#pragma once

#include <memory>

#include "verifier/dcap/dcap_verifier.h"
#include "verifier/verifier.h"

namespace coffer::verifier::sgx {

class SgxVerifier final : public Verifier {
 public:
  explicit SgxVerifier(std::shared_ptr<const dcap::DcapVerifier> dcap) : dcap_(std::move(dcap)) {}
  [[nodiscard]] std::string_view tee() const override { return "sgx"; }
  Result<Json> verify(const VerifyInput& input) const override;

 private:
  std::shared_ptr<const dcap::DcapVerifier> dcap_;
};

Json sgx_quote_claims(const evidence::sgx::Quote& quote);

}  // namespace coffer::verifier::sgx
