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
  // no collateral configured: TDX and SGX evidence is refused, naming the missing settings
  auto claims = verify_tdx_quote4(*find(*verifiers, "tdx"));
  ASSERT_FALSE(claims);
  EXPECT_EQ(claims.error().code, "collateral_source_missing");
  EXPECT_EQ(claims.error().message,
            "[attestation_service.verifier.tdx] sets neither collateral_dir nor pccs_url: without "
            "collateral (CRLs, QE identity, TCB info) tdx evidence is refused; set one of them, or "
            "allow_chain_only = true to verify the PCK chain only");
  auto sgx = find(*verifiers, "sgx")
                 ->verify({Json{{"quote", base64_encode(load("sgx/dcap-qvl/sgx_quote"))}},
                           Bytes(64), std::nullopt, at("2023-07-01T01:00:00Z")});
  ASSERT_FALSE(sgx);
  EXPECT_EQ(sgx.error().code, "collateral_source_missing");
  EXPECT_NE(sgx.error().message.find("[attestation_service.verifier.sgx] sets neither "
                                     "collateral_dir nor pccs_url"),
            std::string::npos);
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
  // no crl_dir, no kds_url: AMD's CRL was not checked, and the configuration does not waive it
  EXPECT_EQ((*snp)["crl_checked"], false);
  EXPECT_EQ((*snp)["unchecked_revocation_allowed"], false);
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
  for (const char* text :
       {"[tdx]\ncolateral_dir = \"x\"\n", "[snp]\nkds = \"x\"\n",
        "[tdx]\ntrusted_roots = [\"/nonexistent/root.pem\"]\n",
        "[sgx]\ncollateral_dir = \"/nonexistent\"\n",
        "[tdx]\ncollateral_dir = \"a\"\npccs_url = \"http://b\"\n",
        "[snp]\ntrusted_roots = [\"intel_roots/Intel_SGX_Root_CA.pem\"]\n",
        "[tdx]\nenabled = \"yes\"\n",
        "[tdx]\ncollateral_dir = \"tdx/go-tdx-guest\"\nallow_chain_only = true\n",
        "[sgx]\nallow_chain_only = \"yes\"\n", "[snp]\nallow_unchecked_revocation = 1\n"}) {
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

// The real TDX quote through the attestation service and the shipped default policy, with the
// reference values taken from the quote itself and the clock pinned inside the collateral's
// validity.
class DcapThroughDefaultPolicy : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = *storage::SqliteStore::open(dir_.path() / "t.db", crypto::random_bytes(32));
    rvps_ = *rvps::Rvps::open(*store_);
    auto as = AttestationService::create({}, *crypto::Key::generate(crypto::KeyType::kEcP256),
                                         *store_, *rvps_, clock_);
    ASSERT_TRUE(as) << as.error().to_string();
    as_ = std::move(*as);
    auto q = *evidence::tdx::parse_quote(raw_);
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(
          rvps_->set("tdx.rtmr_" + std::to_string(i), Json::array({hex_encode(q.body.rtmr[i])})));
    }
    ASSERT_TRUE(rvps_->set("tdx.mr_td", Json::array({hex_encode(q.body.mr_td)})));
    report_data_ = Bytes(q.body.report_data.begin(), q.body.report_data.end());
  }
  Result<AttestOutcome> attest(const std::string& verifier_toml) {
    auto cfg = parse(verifier_toml);
    COFFER_TRY_STATUS(register_tee_verifiers(*as_, cfg.section(), clock_, kEvidence));
    Json evidence = {{"quote", base64_encode(raw_)}};
    return as_->attest({.tee = "tdx",
                        .evidence = evidence,
                        .expected_report_data = report_data_,
                        .init_data_digest = std::nullopt,
                        .runtime_data_claims = Json::object(),
                        .init_data_claims = Json::object(),
                        .policy_id = ""});
  }
  static const Json& tdx_claims(const AttestOutcome& o) {
    return o.claims["submods"]["cpu0"]["ear.veraison.annotated-evidence"]["tdx"];
  }

  TempDir dir_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>(at("2025-07-01T00:00:00Z"));
  Bytes raw_ = load("tdx/dcap-qvl/tdx_quote");
  Bytes report_data_;
  std::unique_ptr<storage::SqliteStore> store_;
  std::unique_ptr<rvps::Rvps> rvps_;
  std::unique_ptr<AttestationService> as_;
};

TEST_F(DcapThroughDefaultPolicy, FullCollateralIsAffirmed) {
  auto out = attest(
      "[sgx]\nenabled = false\n[tdx]\ncollateral_dir = "
      "\"tdx/dcap-qvl/tdx_quote_collateral.split\"\n");
  ASSERT_TRUE(out) << out.error().to_string();
  EXPECT_EQ(tdx_claims(*out)["verification_mode"], "full");
  EXPECT_EQ(tdx_claims(*out)["crls_checked"], true);
  EXPECT_EQ(tdx_claims(*out)["tcb_status"], "UpToDate");
  EXPECT_EQ(out->status, "affirming") << out->claims["submods"]["cpu0"].dump();
}

TEST_F(DcapThroughDefaultPolicy, ChainOnlyMustBeAllowedAndIsNotAffirmed) {
  auto refused = attest("[sgx]\nenabled = false\n");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, "collateral_source_missing");
  auto out = attest("[sgx]\nenabled = false\n[tdx]\nallow_chain_only = true\n");
  ASSERT_TRUE(out) << out.error().to_string();
  EXPECT_EQ(tdx_claims(*out)["verification_mode"], "chain_only");
  EXPECT_EQ(tdx_claims(*out)["crls_checked"], false);
  EXPECT_EQ(out->status, "contraindicated");
  EXPECT_EQ(out->claims["submods"]["cpu0"]["ear.trustworthiness-vector"]["hardware"], 97);
}

// Real SNP evidence (go-sev-guest, Milan, AMD's roots) through the default policy: without a
// checked CRL its hardware is not affirmed, unless allow_unchecked_revocation says so.
TEST(SnpThroughDefaultPolicy, UncheckedRevocationIsAffirmedOnlyWhenConfigured) {
  auto hardware = [](const std::string& snp_toml) -> Result<Json> {
    TempDir dir;
    auto store = *storage::SqliteStore::open(dir.path() / "t.db", crypto::random_bytes(32));
    auto rvps = *rvps::Rvps::open(*store);
    auto clock = std::make_shared<ManualClock>(at("2025-01-01T00:00:00Z"));
    auto as = COFFER_TRY(AttestationService::create(
        {}, *crypto::Key::generate(crypto::KeyType::kEcP256), *store, *rvps, clock));
    auto cfg = parse("[tdx]\nenabled = false\n[sgx]\nenabled = false\n[snp]\n" + snp_toml);
    COFFER_TRY_STATUS(register_tee_verifiers(*as, cfg.section(), clock, kEvidence));
    Json evidence = {
        {"attestation_report", base64_encode(load("snp/go-sev-guest/attestation.bin"))},
        {"cert_chain",
         Json::array({{{"cert_type", "VCEK"},
                       {"data", base64_encode(load("snp/go-sev-guest/vcek.testcer"))}}})}};
    Bytes rd = {1, 2, 3, 4, 5};
    auto out = COFFER_TRY(as->attest({.tee = "snp",
                                      .evidence = evidence,
                                      .expected_report_data = rd,
                                      .init_data_digest = std::nullopt,
                                      .runtime_data_claims = Json::object(),
                                      .init_data_claims = Json::object(),
                                      .policy_id = ""}));
    const Json& cpu0 = out.claims["submods"]["cpu0"];
    return Json{{"hardware", cpu0["ear.trustworthiness-vector"]["hardware"]},
                {"crl_checked", cpu0["ear.veraison.annotated-evidence"]["snp"]["crl_checked"]}};
  };
  auto unchecked = hardware("");
  ASSERT_TRUE(unchecked) << unchecked.error().to_string();
  EXPECT_EQ(*unchecked, Json({{"hardware", 97}, {"crl_checked", false}}));
  auto waived = hardware("allow_unchecked_revocation = true\n");
  ASSERT_TRUE(waived) << waived.error().to_string();
  EXPECT_EQ(*waived, Json({{"hardware", 2}, {"crl_checked", false}}));
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
  EXPECT_EQ((*accepted)["crl_checked"], true);
  write_crl({pki->ask.serial()});  // revokes the ASK that signed this VCEK
  auto revoked = verify();
  ASSERT_FALSE(revoked);
  EXPECT_EQ(revoked.error().code, "ask_revoked") << revoked.error().to_string();
}

}  // namespace
}  // namespace coffer::trustee::as
