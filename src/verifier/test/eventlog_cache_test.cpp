// The CC event log in the TDX verifier's claims, and the verified-object caches of the DCAP and
// SNP verifiers (hits must not weaken any per-call check).
#include <gtest/gtest.h>

#include <thread>

#include "core/file.h"
#include "core/test/evidence_files.h"
#include "evidence/tdx/ccel.h"
#include "evidence/tdx/quote.h"
#include "verifier/dcap/claims.h"
#include "verifier/snp/vek_chain.h"
#include "verifier/tdx/eventlog_claims.h"
#include "verifier/tdx/tdx_verifier.h"

namespace coffer::verifier {
namespace {

const std::string kEvidence = std::string(COFFER_SOURCE_DIR) + "/testdata/evidence/";

TimePoint at(const char* t) { return *parse_rfc3339(t); }
Bytes load(const std::string& rel) { return coffer::testing::evidence_bytes(rel); }

std::shared_ptr<const dcap::DcapVerifier> go_tdx_guest_dcap(dcap::DcapOptions options = {}) {
  return std::make_shared<const dcap::DcapVerifier>(dcap::DcapVerifier::with_intel_root(
      std::make_shared<dcap::DirectoryCollateralSource>(
          dcap::DirectoryCollateralSource::go_tdx_guest_layout(kEvidence + "tdx/go-tdx-guest")),
      options));
}

struct Quote4 {
  Bytes raw = load("tdx/trustee/tdx_quote_4.dat");
  Bytes ccel = load("tdx/trustee/CCEL_data");
  evidence::tdx::Quote quote = *evidence::tdx::parse_quote(raw);
  Bytes init = Bytes(48, 0);
};

// Trustee decodes tdx_quote_4.dat with CCEL_data without replaying the log (the two come from
// different TDs): the claims the verifier builds from them equal Trustee's field for field.
TEST(TdxEventLog, ClaimsEqualTrusteeExpectedJsonFieldForField) {
  Quote4 q;
  auto dcap = go_tdx_guest_dcap();
  auto result = dcap->verify_tdx(q.quote, at("2023-07-01T01:00:00Z"));
  ASSERT_TRUE(result) << result.error().to_string();
  Json claims = tdx::tdx_quote_claims(q.quote);
  claims["uefi_event_logs"] = tdx::event_log_claims(*evidence::tdx::parse_event_log(q.ccel));
  dcap::add_dcap_claims(*result, claims);
  auto expected =
      *parse_json(coffer::testing::evidence_text("tdx/trustee/parse_tdx_claims_expected.json"));
  for (const auto& [key, value] : expected.items()) {
    EXPECT_EQ(claims[key], value) << key;
  }
  ASSERT_EQ(claims["uefi_event_logs"].size(), 5u);
}

TEST(TdxEventLog, LogOfAnotherTdIsRejected) {
  Quote4 q;
  tdx::TdxVerifier v(go_tdx_guest_dcap());
  Json evidence = {{"quote", base64_encode(q.raw)}, {"cc_eventlog", base64_encode(q.ccel)}};
  auto r = v.verify(
      {evidence, ByteView(q.quote.body.report_data), ByteView(q.init), at("2023-07-01T01:00:00Z")});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "eventlog_rtmr_mismatch");
}

TEST(TdxEventLog, AbsentOrEmptyLogMeansNoEventClaims) {
  Quote4 q;
  tdx::TdxVerifier v(go_tdx_guest_dcap());
  Json evidence = {{"quote", base64_encode(q.raw)}, {"cc_eventlog", ""}};
  auto claims = v.verify(
      {evidence, ByteView(q.quote.body.report_data), ByteView(q.init), at("2023-07-01T01:00:00Z")});
  ASSERT_TRUE(claims) << claims.error().to_string();
  EXPECT_FALSE(claims->contains("uefi_event_logs"));
}

TEST(DcapCache, HitsKeepTimeAndRevocationChecks) {
  Quote4 q;
  auto dcap = go_tdx_guest_dcap();
  ASSERT_TRUE(dcap->verify_tdx(q.quote, at("2023-07-01T01:00:00Z")));
  auto sizes = dcap->cache_sizes();
  EXPECT_EQ(sizes.issuer_chains, 1u);
  EXPECT_EQ(sizes.pck_leaves, 1u);
  EXPECT_EQ(sizes.crls, 2u);
  EXPECT_EQ(sizes.tcb_infos, 1u);
  EXPECT_EQ(sizes.qe_identities, 1u);
  // everything cached, yet an expired PCK / TCB info is still rejected
  auto late = dcap->verify_tdx(q.quote, at("2053-07-01T00:00:00Z"));
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, "pck_expired");
  auto tcb_late = dcap->verify_tdx(q.quote, at("2023-09-01T00:00:00Z"));
  ASSERT_FALSE(tcb_late);
  EXPECT_NE(tcb_late.error().code.find("expired"), std::string::npos) << tcb_late.error().code;
  // and a quote with a flipped signed byte still fails after its chain was cached
  Bytes flipped = q.raw;
  flipped[0x100] ^= 1;
  auto fq = evidence::tdx::parse_quote(flipped);
  ASSERT_TRUE(fq);
  auto bad = dcap->verify_tdx(*fq, at("2023-07-01T01:00:00Z"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, "quote_signature_invalid");
  EXPECT_EQ(dcap->cache_sizes().pck_leaves, 1u);
}

TEST(DcapCache, ExpiredCollateralAllowedIsFlaggedEveryCall) {
  Quote4 q;
  dcap::DcapOptions options;
  options.allow_expired_collateral = true;
  auto dcap = go_tdx_guest_dcap(options);
  auto first = dcap->verify_tdx(q.quote, at("2023-07-01T01:00:00Z"));
  ASSERT_TRUE(first);
  EXPECT_FALSE(first->collateral_expired);
  auto later = dcap->verify_tdx(q.quote, at("2023-09-01T00:00:00Z"));
  ASSERT_TRUE(later) << later.error().to_string();
  EXPECT_TRUE(later->collateral_expired);
}

TEST(DcapCache, BoundedAndConcurrent) {
  Quote4 q;
  dcap::DcapOptions options;
  options.cache_capacity = 1;
  auto dcap = go_tdx_guest_dcap(options);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        if (dcap->verify_tdx(q.quote, at("2023-07-01T01:00:00Z"))) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 20);
  EXPECT_LE(dcap->cache_sizes().crls, 1u);
}

TEST(SnpCache, CachedVcekStillChecksTimeTcbAndSignature) {
  std::map<evidence::snp::Product, snp::VendorChain> vendors;
  vendors.emplace(evidence::snp::Product::kMilan,
                  *snp::vendor_chain_from_pem(coffer::testing::evidence_text(
                      "snp/amd_roots/trustee/milan_ask_ark_asvk.pem")));
  snp::SnpChainVerifier verifier(vendors, nullptr);
  Bytes raw = load("snp/go-sev-guest/attestation.bin");
  snp::Vek vek{snp::VekType::kVcek, load("snp/go-sev-guest/vcek.testcer")};
  auto report = *evidence::snp::parse_report(raw);
  TimePoint now = at("2025-01-01T00:00:00Z");
  ASSERT_TRUE(verifier.verify(report, vek, now));
  EXPECT_EQ(verifier.cached_veks(), 1u);
  auto late = verifier.verify(report, vek, at("2090-01-01T00:00:00Z"));
  ASSERT_FALSE(late);
  EXPECT_NE(late.error().code.find("expired"), std::string::npos) << late.error().code;
  auto tampered = report;
  tampered.report_data[0] ^= 1;
  auto bad = verifier.verify(tampered, vek, now);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, "report_signature_invalid");
  auto other_tcb = report;
  other_tcb.reported_tcb ^= 1;
  auto tcb = verifier.verify(other_tcb, vek, now);
  ASSERT_FALSE(tcb);
  EXPECT_EQ(tcb.error().code, "vek_tcb_mismatch");
  EXPECT_EQ(verifier.cached_veks(), 1u);
}

}  // namespace
}  // namespace coffer::verifier
