// The guest side end to end for AA/CDH/REST tests: an in-process coffer-trustee trusting the
// simulation roots, a simulated TDX (or SNP) enclave launched with init-data that names that
// trustee, the guest configuration parsed from it and an AttestationAgent over the sim attester.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "core/clock.h"
#include "guest/aa/agent.h"
#include "guest/aa/sim_attester.h"
#include "guest/cdh/data_hub.h"
#include "guest/config.h"
#include "guest/test/sim_fixture.h"

namespace coffer::guest::testing {

// Counts evidence requests (each KBS handshake asks for one).
class CountingAttester final : public aa::Attester {
 public:
  CountingAttester(std::unique_ptr<aa::Attester> inner, std::shared_ptr<std::atomic<int>> count)
      : inner_(std::move(inner)), count_(std::move(count)) {}
  [[nodiscard]] std::string_view tee() const override { return inner_->tee(); }
  Result<Json> evidence(ByteView report_data) override {
    ++*count_;
    return inner_->evidence(report_data);
  }
  Status extend_runtime_measurement(std::uint32_t index, ByteView digest,
                                    std::string_view description) override {
    return inner_->extend_runtime_measurement(index, digest, description);
  }
  Result<aa::InitDataBinding> check_init_data(ByteView digest) override {
    return inner_->check_init_data(digest);
  }

 private:
  std::unique_ptr<aa::Attester> inner_;
  std::shared_ptr<std::atomic<int>> count_;
};

inline std::string guest_init_data(const std::string& kbs_url, const std::string& algorithm) {
  return "version = \"0.1.0\"\nalgorithm = \"" + algorithm +
         "\"\n[data]\n\"aa.toml\" = '''\n[token_configs.kbs]\nurl = \"" + kbs_url +
         "\"\n'''\n\"cdh.toml\" = '''\n[kbc]\nname = \"cc_kbc\"\nurl = \"" + kbs_url +
         "\"\n[sealed_secret]\nverification_keys = [\"kbs:///default/sealed-secret-key/1\"]\n"
         "'''\n";
}

class GuestEnv {
 public:
  explicit GuestEnv(aa::SimAttester::Kind kind = aa::SimAttester::Kind::kTdx)
      : trustee_(pki().root_ca),
        init_data_(guest_init_data(trustee_.kbs().url(),
                                   kind == aa::SimAttester::Kind::kTdx ? "sha384" : "sha256")),
        enclave_("agent v1", false, init_data_),
        clock_(std::make_shared<ManualClock>(std::chrono::system_clock::now())),
        evidence_count_(std::make_shared<std::atomic<int>>(0)) {
    trustee_.register_enclave(enclave_);
    auto config = parse_guest_config(init_data_);
    EXPECT_TRUE(config) << config.error().to_string();
    config_ = *config;
    aa::KbsClientOptions o;
    o.initial_backoff = std::chrono::milliseconds(0);
    o.max_retries = 1;
    o.clock = clock_;
    aa_ = std::make_unique<AttestationAgent>(
        std::make_unique<CountingAttester>(
            std::make_unique<aa::SimAttester>(kind, enclave_.socket()), evidence_count_),
        config_, o);
    cdh_ = std::make_unique<DataHub>(*aa_, config_);
  }

  SimTrustee& trustee() { return trustee_; }
  TrusteeFixture& kbs() { return trustee_.kbs(); }
  const GuestConfig& config() const { return config_; }
  AttestationAgent& aa() { return *aa_; }
  DataHub& cdh() { return *cdh_; }
  ManualClock& clock() { return *clock_; }
  int evidence_count() const { return evidence_count_->load(); }

 private:
  SimTrustee trustee_;
  std::string init_data_;
  SimEnclave enclave_;
  std::shared_ptr<ManualClock> clock_;
  std::shared_ptr<std::atomic<int>> evidence_count_;
  GuestConfig config_;
  std::unique_ptr<AttestationAgent> aa_;
  std::unique_ptr<DataHub> cdh_;
};

}  // namespace coffer::guest::testing
