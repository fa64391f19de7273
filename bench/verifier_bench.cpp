// Evidence verification micro-benchmarks. TDX: quote parsing, the three ECDSA verifications of a
// quote's chain alone (a warm verifier repeats only the quote signature's), DCAP alone, and full
// DCAP verification through the TdxVerifier with collateral in memory - warm (the verifier's caches
// hold the verified PCK chain, CRLs, TCB info and QE identity, as in a running attestation service)
// and cold (a new verifier per quote). SNP: report parsing, the P-384 report signature alone, and
// chain verification with a cached VCEK (warm) and cold. p50_us / p99_us are per-call percentiles
// measured inside the loop. Run from the project root (testdata/evidence).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "core/file.h"
#include "core/test/evidence_files.h"
#include "evidence/snp/report.h"
#include "evidence/tdx/quote.h"
#include "verifier/dcap/dcap_verifier.h"
#include "verifier/snp/vek_chain.h"
#include "verifier/tdx/tdx_verifier.h"

namespace {

using namespace coffer;
namespace dcap = coffer::verifier::dcap;
namespace vsnp = coffer::verifier::snp;

const std::string kEvidence = std::string(COFFER_SOURCE_DIR) + "/testdata/evidence/";

// Collateral held in memory, as a caching collateral source returns it.
class MemoryCollateral final : public dcap::CollateralSource {
 public:
  explicit MemoryCollateral(dcap::Collateral c) : c_(std::move(c)) {}
  Result<dcap::Collateral> fetch(const dcap::CollateralRequest&) const override { return c_; }

 private:
  dcap::Collateral c_;
};

struct TdxFixture {
  Bytes raw = coffer::testing::evidence_bytes("tdx/dcap-qvl/tdx_quote");
  std::shared_ptr<const dcap::CollateralSource> collateral = std::make_shared<MemoryCollateral>(
      *dcap::DirectoryCollateralSource(dcap::DirectoryCollateralSource::split_layout(
                                           kEvidence + "tdx/dcap-qvl/tdx_quote_collateral.split"))
           .fetch({}));
  TimePoint now = *parse_rfc3339("2025-07-01T00:00:00Z");
  evidence::tdx::Quote quote = *evidence::tdx::parse_quote(raw);
  Json evidence = {{"quote", base64_encode(raw)}};

  std::unique_ptr<verifier::tdx::TdxVerifier> verifier(bool with_collateral) const {
    return std::make_unique<verifier::tdx::TdxVerifier>(std::make_shared<const dcap::DcapVerifier>(
        dcap::DcapVerifier::with_intel_root(with_collateral ? collateral : nullptr)));
  }
  Result<Json> verify(const verifier::tdx::TdxVerifier& v) const {
    return v.verify({evidence, ByteView(quote.body.report_data), std::nullopt, now});
  }
};

template <typename F>
void timed(benchmark::State& state, F&& body) {
  std::vector<double> ns;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    body();
    auto t1 = std::chrono::steady_clock::now();
    ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
  }
  std::sort(ns.begin(), ns.end());
  state.counters["p50_us"] = ns[ns.size() / 2] / 1000;
  state.counters["p99_us"] = ns[ns.size() * 99 / 100] / 1000;
}

void BM_TdxParse(benchmark::State& state) {
  TdxFixture f;
  timed(state, [&] { benchmark::DoNotOptimize(evidence::tdx::parse_quote(f.raw)); });
}
BENCHMARK(BM_TdxParse)->Unit(benchmark::kMicrosecond);

// The per-quote cryptography alone: PCK leaf signature by the PCK CA key, QE report signature by
// the PCK key, quote signature by the attestation key (keys already parsed).
void BM_TdxSignaturesOnly(benchmark::State& state) {
  TdxFixture f;
  const auto& sig = f.quote.signature_data;
  auto chain = *crypto::Certificate::chain_from_pem(to_string(sig.qe.certification_data));
  auto ca_key = *chain[1].public_key();
  auto pck_key = *chain[0].public_key();
  crypto::EcPoint point{Bytes(sig.attestation_key.begin(), sig.attestation_key.begin() + 32),
                        Bytes(sig.attestation_key.begin() + 32, sig.attestation_key.end())};
  auto att_key = *crypto::Key::ec_from_point(crypto::KeyType::kEcP256, point);
  Bytes qe_report = evidence::sgx::serialize_enclave_report(sig.qe.qe_report);
  Bytes signed_region = evidence::tdx::serialize_signed_region(f.quote);
  crypto::SignatureParams raw{crypto::DigestAlg::kSha256, crypto::SignatureFormat::kRaw};
  timed(state, [&] {
    bool ok = chain[0].verify_signed_by(ca_key).has_value() &&
              pck_key.verify(qe_report, sig.qe.qe_report_signature, raw).has_value() &&
              att_key.verify(signed_region, sig.signature, raw).has_value();
    if (!ok) state.SkipWithError("signature failed");
  });
}
BENCHMARK(BM_TdxSignaturesOnly)->Unit(benchmark::kMicrosecond);

// The one verification a warm verifier still does per quote: the quote signature by the
// attestation key (the floor of BM_TdxVerifyFullCachedCollateral).
void BM_TdxQuoteSignatureOnly(benchmark::State& state) {
  TdxFixture f;
  const auto& sig = f.quote.signature_data;
  crypto::EcPoint point{Bytes(sig.attestation_key.begin(), sig.attestation_key.begin() + 32),
                        Bytes(sig.attestation_key.begin() + 32, sig.attestation_key.end())};
  auto att_key = *crypto::Key::ec_from_point(crypto::KeyType::kEcP256, point);
  Bytes signed_region = evidence::tdx::serialize_signed_region(f.quote);
  crypto::SignatureParams raw{crypto::DigestAlg::kSha256, crypto::SignatureFormat::kRaw};
  timed(state, [&] {
    if (!att_key.verify(signed_region, sig.signature, raw)) {
      state.SkipWithError("signature failed");
    }
  });
}
BENCHMARK(BM_TdxQuoteSignatureOnly)->Unit(benchmark::kMicrosecond);

void tdx_warm(benchmark::State& state, bool with_collateral) {
  TdxFixture f;
  auto v = f.verifier(with_collateral);
  if (auto r = f.verify(*v); !r) state.SkipWithError(r.error().to_string().c_str());
  timed(state, [&] {
    auto r = f.verify(*v);
    if (!r) state.SkipWithError(r.error().to_string().c_str());
    benchmark::DoNotOptimize(r);
  });
}

void BM_TdxVerifyChainOnlyCached(benchmark::State& state) { tdx_warm(state, false); }
BENCHMARK(BM_TdxVerifyChainOnlyCached)->Unit(benchmark::kMicrosecond);

void BM_TdxVerifyFullCachedCollateral(benchmark::State& state) { tdx_warm(state, true); }
BENCHMARK(BM_TdxVerifyFullCachedCollateral)->Unit(benchmark::kMicrosecond);

// DcapVerifier::verify_tdx alone on the parsed quote (no base64, parsing or claims), warm caches.
void BM_TdxDcapOnlyCachedCollateral(benchmark::State& state) {
  TdxFixture f;
  auto dcap = dcap::DcapVerifier::with_intel_root(f.collateral);
  if (auto r = dcap.verify_tdx(f.quote, f.now); !r) {
    state.SkipWithError(r.error().to_string().c_str());
  }
  timed(state, [&] {
    auto r = dcap.verify_tdx(f.quote, f.now);
    if (!r) state.SkipWithError(r.error().to_string().c_str());
    benchmark::DoNotOptimize(r);
  });
}
BENCHMARK(BM_TdxDcapOnlyCachedCollateral)->Unit(benchmark::kMicrosecond);

// Every quote with a fresh verifier: all collateral and chains parsed and verified again.
void BM_TdxVerifyFullColdCache(benchmark::State& state) {
  TdxFixture f;
  timed(state, [&] {
    auto r = f.verify(*f.verifier(true));
    if (!r) state.SkipWithError(r.error().to_string().c_str());
    benchmark::DoNotOptimize(r);
  });
}
BENCHMARK(BM_TdxVerifyFullColdCache)->Unit(benchmark::kMicrosecond);

struct SnpFixture {
  std::map<evidence::snp::Product, vsnp::VendorChain> vendors = [] {
    std::map<evidence::snp::Product, vsnp::VendorChain> m;
    m.emplace(evidence::snp::Product::kMilan,
              *vsnp::vendor_chain_from_pem(
                  coffer::testing::evidence_text("snp/amd_roots/trustee/milan_ask_ark_asvk.pem")));
    return m;
  }();
  Bytes raw = coffer::testing::evidence_bytes("snp/go-sev-guest/attestation.bin");
  vsnp::Vek vek{vsnp::VekType::kVcek,
                coffer::testing::evidence_bytes("snp/go-sev-guest/vcek.testcer")};
  TimePoint now = *parse_rfc3339("2025-01-01T00:00:00Z");
};

void BM_SnpParse(benchmark::State& state) {
  SnpFixture f;
  timed(state, [&] { benchmark::DoNotOptimize(evidence::snp::parse_report(f.raw)); });
}
BENCHMARK(BM_SnpParse)->Unit(benchmark::kMicrosecond);

// The per-report cryptography alone: ECDSA P-384 over bytes 0x000-0x29F.
void BM_SnpSignatureOnly(benchmark::State& state) {
  SnpFixture f;
  auto report = *evidence::snp::parse_report(f.raw);
  auto key = *crypto::Certificate::from_der(f.vek.der)->public_key();
  auto be = [](const evidence::Fixed<72>& le) {
    return Bytes(std::make_reverse_iterator(le.begin() + 48),
                 std::make_reverse_iterator(le.begin()));
  };
  Bytes sig = be(report.signature_r);
  Bytes s = be(report.signature_s);
  sig.insert(sig.end(), s.begin(), s.end());
  Bytes region(f.raw.begin(), f.raw.begin() + evidence::snp::kSignedSize);
  timed(state, [&] {
    if (!key.verify(region, sig, {crypto::DigestAlg::kSha384, crypto::SignatureFormat::kRaw})) {
      state.SkipWithError("signature failed");
    }
  });
}
BENCHMARK(BM_SnpSignatureOnly)->Unit(benchmark::kMicrosecond);

void BM_SnpVerifyCachedVcek(benchmark::State& state) {
  SnpFixture f;
  vsnp::SnpChainVerifier verifier(f.vendors, nullptr);
  timed(state, [&] {
    auto report = evidence::snp::parse_report(f.raw);
    auto r = verifier.verify(*report, f.vek, f.now);
    if (!r) state.SkipWithError(r.error().to_string().c_str());
    benchmark::DoNotOptimize(r);
  });
}
BENCHMARK(BM_SnpVerifyCachedVcek)->Unit(benchmark::kMicrosecond);

void BM_SnpVerifyColdCache(benchmark::State& state) {
  SnpFixture f;
  timed(state, [&] {
    vsnp::SnpChainVerifier verifier(f.vendors, nullptr);
    auto report = evidence::snp::parse_report(f.raw);
    auto r = verifier.verify(*report, f.vek, f.now);
    if (!r) state.SkipWithError(r.error().to_string().c_str());
    benchmark::DoNotOptimize(r);
  });
}
BENCHMARK(BM_SnpVerifyColdCache)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
