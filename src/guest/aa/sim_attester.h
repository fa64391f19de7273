// The "sim-tdx", "sim-snp" and "sim-sgx" attesters: evidence from the simulated TEE's quote
// service over its Unix socket (the client alone, src/evidence/sim/quote_client.h). They report
// the KBS TEE names "tdx", "snp" and "sgx": the verifiers treat the evidence exactly like
// hardware evidence. sim-sgx binds init-data through CONFIGID (as the SGX verifier checks it).
#pragma once

#include "evidence/sim/quote_client.h"
#include "guest/aa/attester.h"

namespace coffer::guest::aa {

class SimAttester final : public Attester {
 public:
  enum class Kind { kTdx, kSnp, kSgx };
  SimAttester(Kind kind, std::filesystem::path socket) : kind_(kind), client_(std::move(socket)) {}

  [[nodiscard]] std::string_view tee() const override {
    return kind_ == Kind::kTdx ? "tdx" : kind_ == Kind::kSnp ? "snp" : "sgx";
  }
  // The quote service client (sim-sgx: report, verify_report, seal_key for this enclave).
  [[nodiscard]] const evidence::sim::QuoteServiceClient& client() const { return client_; }
  Result<Json> evidence(ByteView report_data) override;
  Status extend_runtime_measurement(std::uint32_t index, ByteView digest,
                                    std::string_view description) override;
  Result<InitDataBinding> check_init_data(ByteView digest) override;

 private:
  Kind kind_;
  evidence::sim::QuoteServiceClient client_;
};

}  // namespace coffer::guest::aa
