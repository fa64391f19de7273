// Evidence verification micro-benchmarks: one full DCAP TDX verification with collateral held in
// memory (as a cache would), chain-only verification, quote parsing, and one SEV-SNP report
// verification with the VCEK in hand. Run from the project root (../shared/evidence).
#include <benchmark/benchmark.h>

#include "core/file.h"
#include "evidence/snp/report.h"
#include "evidence/tdx/quote.h"
#include "verifier/dcap/dcap_verifier.h"
#include "verifier/snp/vek_chain.h"

namespace {

using namespace coffer;
namespace dcap = coffer::verifier::dcap;
namespace vsnp = coffer::verifier::snp;

const std::string kEvidence = std::string(COFFER_SOURCE_DIR) + "/../shared/evidence/";

struct TdxFixture {
  Bytes raw = *read_file(kEvidence + "tdx/dcap-qvl/tdx_quote");
  dcap::Collateral collateral =
      *dcap::DirectoryCollateralSource(dcap::DirectoryCollateralSource::split_layout(
                                           kEvidence + "tdx/dcap-qvl/tdx_quote_collateral.split"))
           .fetch({});
  dcap::DcapVerifier verifier = dcap::DcapVerifier::with_intel_root(nullptr);
  TimePoint now = *parse_rfc3339("2025-07-01T00:00:00Z");
};

void BM_TdxParse(benchmark::State& state) {
  TdxFixture f;
  for (auto _ : state) benchmark::DoNotOptimize(evidence::tdx::parse_quote(f.raw));
}
BENCHMARK(BM_TdxParse)->Unit(benchmark::kMicrosecond);

void verify_tdx(benchmark::State& state, bool with_collateral) {
  TdxFixture f;
  for (auto _ : state) {
    auto q = evidence::tdx::parse_quote(f.raw);
    dcap::DcapVerifier::QuoteView view;
    view.signed_region = evidence::tdx::serialize_signed_region(*q);
    view.header = &q->header;
    view.signature = &q->signature_data;
    view.tdx = dcap::TdxTcbInput{q->body.tee_tcb_svn, q->body.mrsigner_seam,
                                 q->body.seam_attributes};
    auto r = f.verifier.verify(view, with_collateral ? &f.collateral : nullptr, f.now);
    if (!r) state.SkipWithError(r.error().to_string().c_str());
    benchmark::DoNotOptimize(r);
  }
}

void BM_TdxVerifyChainOnly(benchmark::State& state) { verify_tdx(state, false); }
BENCHMARK(BM_TdxVerifyChainOnly)->Unit(benchmark::kMicrosecond);

void BM_TdxVerifyFullCachedCollateral(benchmark::State& state) { verify_tdx(state, true); }
BENCHMARK(BM_TdxVerifyFullCachedCollateral)->Unit(benchmark::kMicrosecond);

void BM_SnpVerifyCachedVcek(benchmark::State& state) {
  std::map<evidence::snp::Product, vsnp::VendorChain> vendors;
  vendors.emplace(evidence::snp::Product::kMilan,
                  *vsnp::vendor_chain_from_pem(*read_text_file(
                      kEvidence + "snp/amd_roots/trustee/milan_ask_ark_asvk.pem")));
  vsnp::SnpChainVerifier verifier(vendors, nullptr);
  Bytes raw = *read_file(kEvidence + "snp/go-sev-guest/attestation.bin");
  vsnp::Vek vek{vsnp::VekType::kVcek, *read_file(kEvidence + "snp/go-sev-guest/vcek.testcer")};
  TimePoint now = *parse_rfc3339("2025-01-01T00:00:00Z");
  for (auto _ : state) {
    auto report = evidence::snp::parse_report(raw);
    auto r = verifier.verify(*report, vek, now);
    if (!r) state.SkipWithError(r.error().to_string().c_str());
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_SnpVerifyCachedVcek)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
