// A simulated enclave (its files, launch measurements and quote service) and a coffer-trustee
// that trusts the simulation roots, with the development policy: for guest tests end to end.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/file.h"
#include "evidence/sim/measure.h"
#include "evidence/sim/quote_service.h"
#include "evidence/sim/test/sim_test_util.h"
#include "guest/test/trustee_fixture.h"
#include "verifier/dcap/collateral_source.h"
#include "verifier/dcap/dcap_verifier.h"
#include "verifier/sgx/sgx_verifier.h"
#include "verifier/snp/snp_verifier.h"
#include "verifier/tdx/tdx_verifier.h"

namespace coffer::guest::testing {

namespace sim = evidence::sim;

inline const std::string kSimInitData =
    "version = \"0.1.0\"\nalgorithm = \"sha384\"\n[data]\n\"policy.rego\" = \"package x\"\n";

inline const sim::SimPki& pki() { return sim::testing::shared_pki(); }

// One simulated enclave: its files, measurements and quote service. An empty init_data launches
// it without init-data. `sgx`: an SGX enclave with this identity (MRENCLAVE from the
// measurements), whose reference values then include sgx.mr_enclave and sgx.mr_signer.
class SimEnclave {
 public:
  explicit SimEnclave(std::string agent = "agent v1", bool debug = false,
                      const std::string& init_data = kSimInitData,
                      std::optional<sim::SgxIdentity> sgx = std::nullopt) {
    EXPECT_TRUE(write_file_atomic(dir_.path() / "agent", as_bytes(agent)));
    EXPECT_TRUE(write_file_atomic(dir_.path() / "rootfs.manifest", as_bytes("rootfs v1")));
    sim::EnclaveComponents c;
    c.agent = dir_.path() / "agent";
    c.rootfs_manifest = dir_.path() / "rootfs.manifest";
    if (!init_data.empty()) c.init_data = init_data;
    auto m = sim::measure_enclave(c);
    EXPECT_TRUE(m) << m.error().to_string();
    reference_values_ = m->reference_values();
    sim::QuoteServiceConfig config{.socket_path = dir_.path() / "qs.sock"};
    if (debug) config.td_attributes |= sim::kTdAttributesDebug;
    if (sgx) {
      sgx->mr_enclave = m->mr_enclave;
      if (debug) sgx->flags |= sim::kSgxFlagsDebug;
      reference_values_["sgx.mr_enclave"] = hex_encode(sgx->mr_enclave);
      reference_values_["sgx.mr_signer"] = hex_encode(sgx->mr_signer);
      config.sgx = sgx;
    }
    service_ = std::make_unique<sim::QuoteService>(pki(), std::move(*m), config);
    EXPECT_TRUE(service_->start());
  }
  [[nodiscard]] std::filesystem::path socket() const { return dir_.path() / "qs.sock"; }
  [[nodiscard]] const Json& reference_values() const { return reference_values_; }

 private:
  TempDir dir_;
  Json reference_values_;
  std::unique_ptr<sim::QuoteService> service_;
};

// A trustee that trusts `root` for TDX and SGX, with the simulated collateral and the development
// policy.
class SimTrustee {
 public:
  explicit SimTrustee(const crypto::Certificate& root, bool trust_sim_ark = true)
      : kbs_("", false, system_clock(), [&](trustee::Trustee& t) {
          EXPECT_TRUE(sim::write_sim_pki(pki(), collateral_.path(), true));
          auto source = std::make_shared<verifier::dcap::DirectoryCollateralSource>(
              verifier::dcap::DirectoryCollateralSource::split_layout(collateral_.path() / "intel" /
                                                                      "collateral"));
          auto dcap = std::make_shared<const verifier::dcap::DcapVerifier>(
              std::vector<crypto::Certificate>{root}, source);
          t.attestation_service().register_verifier(
              std::make_unique<verifier::tdx::TdxVerifier>(dcap));
          auto sgx_source = std::make_shared<verifier::dcap::DirectoryCollateralSource>(
              verifier::dcap::DirectoryCollateralSource::split_layout(collateral_.path() / "intel" /
                                                                      "collateral_sgx"));
          t.attestation_service().register_verifier(std::make_unique<verifier::sgx::SgxVerifier>(
              std::make_shared<const verifier::dcap::DcapVerifier>(
                  std::vector<crypto::Certificate>{root}, sgx_source)));
          // SNP: the sim ARK/ASK as a configured (non-AMD) vendor chain.
          auto chain = verifier::snp::vendor_chain_from_pem(pki().amd_vendor_chain_pem());
          EXPECT_TRUE(chain) << chain.error().to_string();
          std::map<evidence::snp::Product, verifier::snp::VendorChain> vendors{
              {pki().platform.product, *chain}};
          auto snp_chain = std::make_shared<const verifier::snp::SnpChainVerifier>(
              vendors, nullptr,
              verifier::snp::SnpChainVerifier::Options{
                  .trust_configured_arks = trust_sim_ark,
                  // the sim PKI's AMD-like CRL: revocation is checked, as the policies require
                  .crl_source = std::make_shared<verifier::snp::DirectoryCrlSource>(
                      (collateral_.path() / "amd" / "crl").string())});
          t.attestation_service().register_verifier(
              std::make_unique<verifier::snp::SnpVerifier>(snp_chain));
        }) {
    auto policy = read_text_file(std::string(COFFER_SOURCE_DIR) +
                                 "/src/trustee/policies/development_attestation.rego");
    EXPECT_TRUE(policy);
    kbs_.set_attestation_policy(*policy);
    kbs_.put_resource("default/key/sim", "sim secret");
  }
  void register_enclave(const SimEnclave& e) {
    for (const auto& [name, value] : e.reference_values().items())
      kbs_.set_reference_value(name, Json::array({value}));
  }
  TrusteeFixture& kbs() { return kbs_; }

 private:
  TempDir collateral_;
  TrusteeFixture kbs_;
};

}  // namespace coffer::guest::testing
