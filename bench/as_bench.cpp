// One attestation-service evaluation: verify evidence + attestation policy + sign the EAR token.
// Sample TEE (protocol overhead only) and a real Intel TDX quote with offline collateral.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <vector>

#include "core/file.h"
#include "core/test/evidence_files.h"
#include "crypto/digest.h"
#include "crypto/random.h"
#include "evidence/tdx/quote.h"
#include "trustee/as/attestation_service.h"
#include "trustee/rvps/rvps.h"
#include "trustee/storage/sqlite_store.h"
#include "verifier/dcap/collateral_source.h"
#include "verifier/dcap/dcap_verifier.h"
#include "verifier/sample/sample_verifier.h"
#include "verifier/tdx/tdx_verifier.h"

namespace {

using namespace coffer;

const std::string kEvidence = std::string(COFFER_SOURCE_DIR) + "/testdata/evidence/";

struct World {
  std::filesystem::path dir;
  std::unique_ptr<trustee::storage::SqliteStore> store;
  std::unique_ptr<trustee::rvps::Rvps> rvps;
  std::unique_ptr<trustee::as::AttestationService> as;
  World(TimePoint now) {
    char tmpl[] = "/tmp/as-bench-XXXXXX";
    dir = ::mkdtemp(tmpl);
    store = std::move(*trustee::storage::SqliteStore::open(dir / "db", crypto::random_bytes(32)));
    rvps = std::move(*trustee::rvps::Rvps::open(*store));
    auto key = *crypto::Key::generate(crypto::KeyType::kEcP256);
    as = std::move(*trustee::as::AttestationService::create({}, key, *store, *rvps,
                                                            std::make_shared<ManualClock>(now)));
  }
  ~World() { std::filesystem::remove_all(dir); }
};

void report(benchmark::State& state, std::vector<double>& us) {
  std::sort(us.begin(), us.end());
  if (us.empty()) return;
  state.counters["p50_us"] = us[us.size() / 2];
  state.counters["p99_us"] = us[us.size() * 99 / 100];
}

void BM_AsSample(benchmark::State& state) {
  World w(std::chrono::system_clock::now());
  w.as->register_verifier(std::make_unique<verifier::sample::SampleVerifier>());
  (void)w.rvps->set("sample.svn", Json::array({"1"}));
  Bytes rd = crypto::random_bytes(48);
  Json evidence = {{"svn", "1"}, {"report_data", base64_encode(rd)}};
  Json runtime = {{"nonce", "n"}, {"tee-pubkey", Json::object()}};
  std::vector<double> us;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = w.as->attest({"sample", evidence, rd, std::nullopt, runtime, Json::object(), ""});
    us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    if (!r || r->status != "affirming") state.SkipWithError("attestation failed");
    benchmark::DoNotOptimize(r);
  }
  report(state, us);
}
BENCHMARK(BM_AsSample);

void BM_AsTdxOfflineCollateral(benchmark::State& state) {
  auto now = *parse_rfc3339("2025-07-01T00:00:00Z");
  World w(now);
  auto source = verifier::dcap::DirectoryCollateralSource::open(
      kEvidence + "tdx/dcap-qvl/tdx_quote_collateral.split");
  if (!source) {
    state.SkipWithError("collateral missing");
    return;
  }
  auto dcap =
      std::make_shared<verifier::dcap::DcapVerifier>(verifier::dcap::DcapVerifier::with_intel_root(
          std::make_shared<verifier::dcap::DirectoryCollateralSource>(std::move(*source))));
  w.as->register_verifier(std::make_unique<verifier::tdx::TdxVerifier>(dcap));
  auto raw = coffer::testing::evidence_bytes("tdx/dcap-qvl/tdx_quote");
  auto quote = *evidence::tdx::parse_quote(raw);
  Bytes rd(quote.body.report_data.begin(), quote.body.report_data.end());
  (void)w.rvps->set("tdx.mr_td", Json::array({hex_encode(quote.body.mr_td)}));
  Json evidence = {{"quote", base64_encode(raw)}};
  Json runtime = {{"nonce", "n"}, {"tee-pubkey", Json::object()}};
  std::vector<double> us;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = w.as->attest({"tdx", evidence, rd, std::nullopt, runtime, Json::object(), ""});
    us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    if (!r) state.SkipWithError(r.error().to_string().c_str());
    benchmark::DoNotOptimize(r);
  }
  report(state, us);
}
BENCHMARK(BM_AsTdxOfflineCollateral);

}  // namespace

BENCHMARK_MAIN();
