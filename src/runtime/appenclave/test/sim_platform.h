// Test helpers of the two-enclave flow's unit tests: one simulated SGX platform (a sim PKI whose
// platform secret derives the report and sealing keys) and simulated enclaves on it, each with
// its own quote service on its own socket, as the launcher gives every enclave.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "evidence/sim/quote_client.h"
#include "evidence/sim/quote_service.h"
#include "evidence/sim/sim_pki.h"

namespace coffer::runtime::appenclave::test {

// One platform for the whole test binary (generating a PKI takes a while).
inline const evidence::sim::SimPki& platform() {
  static const evidence::sim::SimPki p = [] {
    evidence::sim::SimPkiOptions o;
    o.rsa_bits = 2048;
    auto r = evidence::sim::generate_sim_pki(o);
    if (!r) std::abort();
    return std::move(*r);
  }();
  return p;
}

inline evidence::Fixed<32> fixed32(std::uint8_t v) {
  evidence::Fixed<32> f{};
  f.fill(v);
  return f;
}

// An identity whose MRENCLAVE and MRSIGNER are the byte repeated.
inline evidence::sim::SgxIdentity identity(std::uint8_t mr_enclave, std::uint8_t mr_signer = 0x51,
                                           std::uint16_t prod = 7, std::uint16_t svn = 3) {
  evidence::sim::SgxIdentity id;
  id.mr_enclave = fixed32(mr_enclave);
  id.mr_signer = fixed32(mr_signer);
  id.isv_prod_id = prod;
  id.isv_svn = svn;
  return id;
}

// One simulated enclave: its quote service, serving at `socket`, and the client it uses.
class SimEnclave {
 public:
  SimEnclave(const std::filesystem::path& socket, const evidence::sim::SgxIdentity& id)
      : socket_(socket), client_(socket) {
    evidence::sim::QuoteServiceConfig cfg;
    cfg.socket_path = socket;
    cfg.sgx = id;
    service_ = std::make_unique<evidence::sim::QuoteService>(
        platform(), evidence::sim::LaunchMeasurements{}, cfg);
    auto started = service_->start();
    if (!started) ADD_FAILURE() << started.error().to_string();
  }
  ~SimEnclave() { service_->stop(); }
  SimEnclave(const SimEnclave&) = delete;
  SimEnclave& operator=(const SimEnclave&) = delete;
  [[nodiscard]] const std::filesystem::path& socket() const { return socket_; }
  [[nodiscard]] const evidence::sim::QuoteServiceClient& qs() const { return client_; }

 private:
  std::filesystem::path socket_;
  evidence::sim::QuoteServiceClient client_;
  std::unique_ptr<evidence::sim::QuoteService> service_;
};

}  // namespace coffer::runtime::appenclave::test
