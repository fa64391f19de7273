#include <gtest/gtest.h>

#include "core/file.h"
#include "core/test/evidence_files.h"
#include "evidence/sgx/quote.h"
#include "evidence/snp/report.h"
#include "evidence/tdx/quote.h"
#include "verifier/sgx/sgx_verifier.h"
#include "verifier/snp/snp_verifier.h"
#include "verifier/tdx/tdx_verifier.h"

namespace coffer::verifier {
namespace {

const std::string kEvidence = std::string(COFFER_SOURCE_DIR) + "/testdata/evidence/";

TimePoint at(const char* t) { return *parse_rfc3339(t); }
Bytes load(const std::string& rel) { return coffer::testing::evidence_bytes(rel); }

std::shared_ptr<const dcap::DcapVerifier> dcap_with(
    const dcap::DirectoryCollateralSource::Files& f) {
  return std::make_shared<const dcap::DcapVerifier>(
      dcap::DcapVerifier::with_intel_root(std::make_shared<dcap::DirectoryCollateralSource>(f)));
}

std::shared_ptr<const dcap::DcapVerifier> go_tdx_guest_dcap() {
  return dcap_with(
      dcap::DirectoryCollateralSource::go_tdx_guest_layout(kEvidence + "tdx/go-tdx-guest"));
}

TEST(TdxVerifier, TrusteeQuote4ClaimsMatchTrusteeExpectedJson) {
  tdx::TdxVerifier v(go_tdx_guest_dcap());
  EXPECT_EQ(v.tee(), "tdx");
  Bytes raw = load("tdx/trustee/tdx_quote_4.dat");
  Json evidence = {{"quote", base64_encode(raw)}};
  auto q = evidence::tdx::parse_quote(raw);
  ByteView report_data(q->body.report_data);
  Bytes init(48, 0);
  auto claims = v.verify({evidence, report_data, ByteView(init), at("2023-07-01T01:00:00Z")});
  ASSERT_TRUE(claims) << claims.error().to_string();
  auto expected =
      *parse_json(coffer::testing::evidence_text("tdx/trustee/parse_tdx_claims_expected.json"));
  for (const char* key :
       {"quote", "td_attributes", "report_data", "init_data", "platform_instance_id"}) {
    EXPECT_EQ((*claims)[key], expected[key]) << key;
  }
  EXPECT_EQ((*claims)["tcb_status"], "UpToDate");
  EXPECT_EQ((*claims)["advisory_ids"], Json::array());
  EXPECT_EQ((*claims)["collateral_expiration_status"], "0");
  EXPECT_EQ((*claims)["fmspc"], "50806f000000");
  EXPECT_EQ((*claims)["tee_root"], "intel");
  EXPECT_EQ((*claims)["td_attributes"]["debug"], true);
}

TEST(TdxVerifier, BindingMismatchesAndBadEvidence) {
  tdx::TdxVerifier v(go_tdx_guest_dcap());
  Bytes raw = load("tdx/trustee/tdx_quote_4.dat");
  Json evidence = {{"quote", base64_encode(raw)}};
  auto q = evidence::tdx::parse_quote(raw);
  Bytes rd(q->body.report_data.begin(), q->body.report_data.begin() + 48);
  TimePoint now = at("2023-07-01T01:00:00Z");
  // Trustee's report data is 48 bytes plus 16 more non-zero bytes: 48-byte prefix alone fails
  EXPECT_EQ(v.verify({evidence, rd, std::nullopt, now}).error().code, "report_data_mismatch");
  Bytes wrong_init(48, 1);
  EXPECT_EQ(
      v.verify({evidence, ByteView(q->body.report_data), ByteView(wrong_init), now}).error().code,
      "init_data_mismatch");
  Json bad = {{"quote", "!!"}};
  EXPECT_EQ(v.verify({bad, rd, std::nullopt, now}).error().code, "bad_evidence");
  Json no_quote = Json::object();
  EXPECT_EQ(v.verify({no_quote, rd, std::nullopt, now}).error().code, "bad_evidence");
}

TEST(SgxVerifier, DcapQvlQuoteClaims) {
  sgx::SgxVerifier v(dcap_with(dcap::DirectoryCollateralSource::split_layout(
      kEvidence + "sgx/dcap-qvl/sgx_quote_collateral.split")));
  Bytes raw = load("sgx/dcap-qvl/sgx_quote");
  auto q = evidence::sgx::parse_quote(raw);
  Json evidence = {{"quote", base64_encode(raw)}};
  auto claims =
      v.verify({evidence, ByteView(q->body.report_data), std::nullopt, at("2025-07-01T00:00:00Z")});
  ASSERT_TRUE(claims) << claims.error().to_string();
  EXPECT_EQ((*claims)["body"]["mr_enclave"],
            "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb");
  EXPECT_EQ((*claims)["tcb_status"], "ConfigurationAndSWHardeningNeeded");
  EXPECT_EQ((*claims)["advisory_ids"], (Json{"INTEL-SA-00289", "INTEL-SA-00615"}));
  EXPECT_EQ(to_string(*hex_decode((*claims)["report_data"].get<std::string>())).substr(0, 13),
            "Hello, world!");
}

TEST(SgxVerifier, OcclumChainOnlyClaimsMatchTrustee) {
  sgx::SgxVerifier v(
      std::make_shared<const dcap::DcapVerifier>(dcap::DcapVerifier::with_intel_root(nullptr)));
  Bytes raw = load("sgx/trustee/occlum_quote.dat");
  Json evidence = {{"quote", base64_encode(raw)}};
  Bytes rd = to_bytes("test");
  auto claims = v.verify({evidence, rd, std::nullopt, at("2023-06-01T00:00:00Z")});
  ASSERT_TRUE(claims) << claims.error().to_string();
  // Trustee's sgx/claims.rs expectation for this quote
  EXPECT_EQ((*claims)["header"], (Json{{"version", "0300"},
                                       {"att_key_type", "0200"},
                                       {"att_key_data_0", "00000000"},
                                       {"qe_svn", "0800"},
                                       {"pce_svn", "0d00"},
                                       {"vendor_id", "939a7233f79c4ca9940a0db3957f0607"},
                                       {"user_data", "dccde9b31ce8860548173bb4a2a57a1600000000"}}));
  EXPECT_EQ((*claims)["body"]["cpu_svn"], "06060c0cffff00000000000000000000");
  EXPECT_EQ((*claims)["body"]["misc_select"], "01000000");
  EXPECT_EQ((*claims)["body"]["attributes.flags"], "0700000000000000");
  EXPECT_EQ((*claims)["body"]["mr_signer"],
            "83d719e77deaca1470f6baf62a4d774303c899db69020f9c70ee1dfc08c7ce9e");
  EXPECT_EQ((*claims)["platform_instance_id"], "7a3a6941065cd5060bd93d3db2cfc0c8");
  EXPECT_EQ((*claims)["tcb_status"], "Unknown");
  EXPECT_EQ((*claims)["verification_mode"], "chain_only");
}

std::shared_ptr<const snp::SnpChainVerifier> amd_chain() {
  std::map<snp::Product, snp::VendorChain> vendors;
  vendors.emplace(snp::Product::kMilan, *snp::vendor_chain_from_pem(coffer::testing::evidence_text(
                                            "snp/amd_roots/trustee/milan_ask_ark_asvk.pem")));
  return std::make_shared<const snp::SnpChainVerifier>(vendors, nullptr);
}

Json byte_array(const Bytes& b) {
  Json a = Json::array();
  for (auto x : b) a.push_back(x);
  return a;
}

TEST(SnpVerifier, GoSevGuestReportClaims) {
  snp::SnpVerifier v(amd_chain());
  Bytes raw = load("snp/go-sev-guest/attestation.bin");
  Json evidence = {
      {"attestation_report", base64_encode(raw)},
      {"cert_chain", Json::array({{{"cert_type", "VCEK"},
                                   {"data", byte_array(load("snp/go-sev-guest/vcek.testcer"))}}})}};
  Bytes rd = {1, 2, 3, 4, 5};
  auto claims = v.verify({evidence, rd, std::nullopt, at("2025-01-01T00:00:00Z")});
  ASSERT_TRUE(claims) << claims.error().to_string();
  EXPECT_EQ(
      hex_encode(*base64_decode((*claims)["measurement"].get<std::string>())),
      "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2"
      "e4872b01");
  EXPECT_EQ((*claims)["policy_debug_allowed"], "true");
  EXPECT_EQ((*claims)["reported_tcb_bootloader"], "2");
  EXPECT_EQ((*claims)["reported_tcb_tee"], "0");
  EXPECT_EQ((*claims)["reported_tcb_snp"], "5");
  EXPECT_EQ((*claims)["reported_tcb_microcode"], "68");
  EXPECT_EQ((*claims)["vmpl"], 0);
  EXPECT_EQ((*claims)["product"], "Milan");
  Bytes wrong = {1, 2, 3, 4, 6};
  EXPECT_EQ(v.verify({evidence, wrong, std::nullopt, at("2025-01-01T00:00:00Z")}).error().code,
            "report_data_mismatch");
  Bytes host(32, 0xaa);
  EXPECT_EQ(v.verify({evidence, rd, ByteView(host), at("2025-01-01T00:00:00Z")}).error().code,
            "init_data_mismatch");
}

TEST(SnpVerifier, VlekReportAtVmpl1) {
  snp::SnpVerifier v(amd_chain());
  Bytes raw = load("snp/trustee/test-vlek-report.bin");
  auto rep = evidence::snp::parse_report(raw);
  Json evidence = {
      {"attestation_report", base64_encode(raw)},
      {"cert_chain", Json::array({{{"cert_type", "VLEK"},
                                   {"data", base64_encode(load("snp/trustee/test-vlek.der"))}}})}};
  auto claims =
      v.verify({evidence, ByteView(rep->report_data), std::nullopt, at("2025-06-01T00:00:00Z")});
  ASSERT_TRUE(claims) << claims.error().to_string();
  EXPECT_EQ((*claims)["vmpl"], 1);  // a policy requiring VMPL 0 rejects this
  EXPECT_EQ((*claims)["vek_type"], "VLEK");
}

}  // namespace
}  // namespace coffer::verifier
