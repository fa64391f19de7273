// The hardware TEE verifiers built from [attestation_service.verifier.*] and registered in the AS.
#include "trustee/as/verifiers.h"

#include <gtest/gtest.h>

#include "core/file.h"
#include "core/test/evidence_files.h"
#include "crypto/random.h"
#include "crypto/x509_issue.h"
#include "evidence/sim/sim_pki.h"
#include "evidence/sim/sim_tee.h"
#include "evidence/sim/test/sim_test_util.h"
#include "evidence/snp/report.h"
#include "evidence/tdx/quote.h"
#include "trustee/rvps/rvps.h"
#include "trustee/storage/sqlite_store.h"
#include "trustee/test/test_util.h"

namespace coffer::trustee::as {
namespace {

using testing::TempDir;

const std::string kEvidence = std::string(COFFER_SOURCE_DIR) + "/testdata/evidence/";

TimePoint at(const char* t) { return *parse_rfc3339(t); }
Bytes load(const std::string& rel) { return coffer::testing::evidence_bytes(rel); }

struct Parsed {
  toml::table table;
  config::Section section() const {
    return config::Section(&table, "attestation_service.verifier");
  }
};

Parsed parse(const std::string& text) { return Parsed{*config::parse(text)}; }

verifier::Verifier* find(std::vector<std::unique_ptr<verifier::Verifier>>& v,
                         std::string_view tee) {
  for (auto& p : v) {
    if (p->tee() == tee) return p.get();
  }
  return nullptr;
}

Result<Json> verify_tdx_quote4(verifier::Verifier& v) {
  Bytes raw = load("tdx/trustee/tdx_quote_4.dat");
  auto q = *evidence::tdx::parse_quote(raw);
  Json evidence = {{"quote", base64_encode(raw)}};
  return v.verify(
      {evidence, ByteView(q.body.report_data), std::nullopt, at("2023-07-01T01:00:00Z")});
}

TEST(TeeVerifiers, DefaultsEnableAllThreeWithVendorRoots) {
  auto cfg = parse("");
  auto verifiers = build_tee_verifiers(cfg.section(), nullptr);
  ASSERT_TRUE(verifiers) << verifiers.error().to_string();
  ASSERT_EQ(verifiers->size(), 3u);
  // no collateral configured: chain-only, anchored at the embedded Intel root
  auto claims = verify_tdx_quote4(*find(*verifiers, "tdx"));
  ASSERT_TRUE(claims) << claims.error().to_string();
  EXPECT_EQ((*claims)["tee_root"], "intel");
  EXPECT_EQ((*claims)["tcb_status"], "Unknown");
  // SNP with the embedded AMD chains and the VCEK from the evidence
  Json evidence = {
      {"attestation_report", base64_encode(load("snp/go-sev-guest/attestation.bin"))},
      {"cert_chain",
       Json::array({{{"cert_type", "VCEK"},
                     {"data", base64_encode(load("snp/go-sev-guest/vcek.testcer"))}}})}};
  Bytes rd = {1, 2, 3, 4, 5};
  auto snp =
      find(*verifiers, "snp")->verify({evidence, rd, std::nullopt, at("2025-01-01T00:00:00Z")});
  ASSERT_TRUE(snp) << snp.error().to_string();
  EXPECT_EQ((*snp)["tee_root"], "amd");
}

TEST(TeeVerifiers, OfflineCollateralAndVekDirectory) {
  auto cfg = parse(R"(
[tdx]
collateral_dir = "tdx/go-tdx-guest"
trusted_roots = ["intel_roots/Intel_SGX_Root_CA.pem"]
[sgx]
enabled = false
[snp]
trusted_roots = ["snp/amd_roots/trustee/milan_ask_ark_asvk.pem"]
vek_dir = "snp/go-sev-guest"
)");
  auto verifiers = build_tee_verifiers(cfg.section(), nullptr, kEvidence);
  ASSERT_TRUE(verifiers) << verifiers.error().to_string();
  EXPECT_EQ(verifiers->size(), 2u);
  EXPECT_EQ(find(*verifiers, "sgx"), nullptr);
  auto claims = verify_tdx_quote4(*find(*verifiers, "tdx"));
  ASSERT_TRUE(claims) << claims.error().to_string();
  EXPECT_EQ((*claims)["tcb_status"], "UpToDate");
  EXPECT_EQ((*claims)["tee_root"], "intel");
  Json evidence = {{"attestation_report", base64_encode(load("snp/go-sev-guest/attestation.bin"))}};
  Bytes rd = {1, 2, 3, 4, 5};
  auto snp =
      find(*verifiers, "snp")->verify({evidence, rd, std::nullopt, at("2025-01-01T00:00:00Z")});
  ASSERT_TRUE(snp) << snp.error().to_string();
  // AMD's own ARK, even when listed explicitly
  EXPECT_EQ((*snp)["tee_root"], "amd");
}

TEST(TeeVerifiers, ConfigurationErrors) {
  for (const char* text : {"[tdx]\ncolateral_dir = \"x\"\n", "[snp]\nkds = \"x\"\n",
                           "[tdx]\ntrusted_roots = [\"/nonexistent/root.pem\"]\n",
                           "[sgx]\ncollateral_dir = \"/nonexistent\"\n",
                           "[tdx]\ncollateral_dir = \"a\"\npccs_url = \"http://b\"\n",
                           "[snp]\ntrusted_roots = [\"intel_roots/Intel_SGX_Root_CA.pem\"]\n",
                           "[tdx]\nenabled = \"yes\"\n"}) {
    auto cfg = parse(text);
    auto r = build_tee_verifiers(cfg.section(), nullptr, kEvidence);
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error().code, "bad_config") << text;
  }
}

TEST(TeeVerifiers, RegisteredInTheAttestationService) {
  TempDir dir;
  auto store = *storage::SqliteStore::open(dir.path() / "t.db", crypto::random_bytes(32));
  auto rvps = *rvps::Rvps::open(*store);
  auto as = AttestationService::create({}, *crypto::Key::generate(crypto::KeyType::kEcP256), *store,
                                       *rvps, system_clock());
  ASSERT_TRUE(as) << as.error().to_string();
  auto cfg = parse("[sgx]\nenabled = false\n[snp]\npccs_url = \"x\"\n");
  EXPECT_EQ(register_tee_verifiers(**as, cfg.section(), system_clock()).error().code, "bad_config");
  cfg = parse("[sgx]\nenabled = false\n[tdx]\npccs_url = \"http://127.0.0.1:9\"\n");
  ASSERT_TRUE(register_tee_verifiers(**as, cfg.section(), system_clock()));
  EXPECT_TRUE((*as)->has_verifier("tdx"));
  EXPECT_TRUE((*as)->has_verifier("snp"));
  EXPECT_FALSE((*as)->has_verifier("sgx"));
}

// [snp] crl_dir: AMD's CRL (<product>.crl, issued by the ARK with RSASSA-PSS SHA-384) is checked
// for evidence verified through the configured roots; here the simulated AMD PKI's.
TEST(TeeVerifiers, SnpCrlDirFromConfigurationRevokesTheAsk) {
  namespace sim = evidence::sim;
  const sim::SimPki* pki = &sim::testing::shared_pki();
  TempDir dir;
  ASSERT_TRUE(sim::write_sim_pki(*pki, dir.path() / "sim"));
  std::filesystem::create_directories(dir.path() / "crl");
  auto now = std::chrono::system_clock::now();
  auto write_crl = [&](std::vector<Bytes> revoked) {
    crypto::CrlSpec spec{.this_update = now - std::chrono::hours(1),
                         .next_update = now + std::chrono::hours(24),
                         .revoked_serials = std::move(revoked),
                         .digest = crypto::DigestAlg::kSha384,
                         .rsa_pss = true};
    auto crl = crypto::issue_crl(spec, pki->ark, pki->ark_key);
    ASSERT_TRUE(crl) << crl.error().to_string();
    std::string name = std::string(evidence::snp::product_name(pki->platform.product)) + ".crl";
    ASSERT_TRUE(write_file_atomic(dir.path() / "crl" / name, *crl));
  };
  auto verify = [&]() -> Result<Json> {
    auto cfg = parse(
        "[tdx]\nenabled = false\n[sgx]\nenabled = false\n[snp]\n"
        "trusted_roots = [\"sim/amd/ask_ark.pem\"]\ncrl_dir = \"crl\"\n");
    auto verifiers = build_tee_verifiers(cfg.section(), nullptr, dir.path());
    if (!verifiers) return std::unexpected(verifiers.error());
    Bytes rd(64, 0x5a);
    auto report = sim::make_snp_report(*pki, {}, rd);
    if (!report) return std::unexpected(report.error());
    Json evidence = {
        {"attestation_report", base64_encode(*report)},
        {"cert_chain",
         Json::array({{{"cert_type", "VCEK"}, {"data", base64_encode(pki->vcek.der())}}})}};
    return find(*verifiers, "snp")->verify({evidence, rd, std::nullopt, now});
  };
  write_crl({Bytes{0x7f, 0x01}});  // lists another serial: accepted
  auto accepted = verify();
  ASSERT_TRUE(accepted) << accepted.error().to_string();
  EXPECT_EQ((*accepted)["tee_root"], "simulated");
  write_crl({pki->ask.serial()});  // revokes the ASK that signed this VCEK
  auto revoked = verify();
  ASSERT_FALSE(revoked);
  EXPECT_EQ(revoked.error().code, "ask_revoked") << revoked.error().to_string();
}

}  // namespace
}  // namespace coffer::trustee::as
