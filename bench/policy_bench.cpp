// Rego policy evaluation: a Trustee-style attestation policy (src/policy/test/policies/
// attestation.rego, ~120 lines) against ~5 KB of TDX claims, compiled once.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "policy/policy.h"

namespace {

using coffer::Json;
namespace policy = coffer::policy;

std::string read_policy(const std::string& name) {
  std::ifstream in(std::filesystem::path(COFFER_SOURCE_DIR) / "src/policy/test/policies" / name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const Json& reference_values() {
  static const Json rv = Json::parse(R"({
    "rtmr_1": ["aa11", "aa12"], "rtmr_2": ["bb22"], "mr_seam": ["5eam"], "tcb_svn": ["0a0b"],
    "mr_td": ["7d7d"], "xfam": ["e718060000000000"]})");
  return rv;
}

policy::CompileOptions options() {
  policy::CompileOptions opts;
  opts.builtins["query_reference_value"] = {
      1, [](std::span<const Json> args) -> coffer::Result<Json> {
        auto it = reference_values().find(args[0].get<std::string>());
        return it == reference_values().end() ? Json::array() : *it;
      }};
  return opts;
}

// TDX claims as an attestation service produces them, padded with a realistic event log.
Json tdx_claims() {
  Json body = {{"rtmr_0", std::string(96, 'a')},
               {"rtmr_1", "aa11"},
               {"rtmr_2", "bb22"},
               {"rtmr_3", std::string(96, '0')},
               {"mr_seam", "5eam"},
               {"tcb_svn", "0a0b"},
               {"mr_td", "7d7d"},
               {"xfam", "e718060000000000"},
               {"td_attributes", "0000000000000000"},
               {"mr_config_id", std::string(96, '0')},
               {"mr_owner", std::string(96, '0')},
               {"mr_owner_config", std::string(96, '0')},
               {"report_data", std::string(128, 'f')},
               {"mr_signer_seam", std::string(96, '0')}};
  Json events = Json::array();
  for (int i = 0; i < 24; ++i) {
    events.push_back({{"index", i % 4},
                      {"event_type", "EV_EFI_BOOT_SERVICES_APPLICATION"},
                      {"digest", std::string(96, static_cast<char>('a' + i % 6))},
                      {"event", "efi-app-" + std::to_string(i)}});
  }
  return {
      {"tdx",
       {{"quote",
         {{"header",
           {{"version", 4},
            {"tee_type", "81000000"},
            {"vendor_id", "939a7233f79c4ca9940a0db3957f0607"}}},
          {"body", body}}},
        {"ccel", {{"events", events}}}}},
      {"init_data", std::string(64, 'c')},
      {"runtime_data", {{"nonce", std::string(43, 'n')}, {"tee-pubkey", std::string(88, 'k')}}}};
}

void BM_AttestationTrustClaims(benchmark::State& state) {
  auto p = policy::compile({{"attestation.rego", read_policy("attestation.rego")}}, options());
  if (!p) {
    state.SkipWithError(p.error().to_string().c_str());
    return;
  }
  Json claims = tdx_claims();
  std::vector<double> ns;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = (*p)->evaluate("data.policy.trust_claims", claims);
    auto t1 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(r);
    ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
  }
  std::sort(ns.begin(), ns.end());
  state.counters["claims_bytes"] = static_cast<double>(claims.dump().size());
  state.counters["p50_us"] = ns[ns.size() / 2] / 1000;
  state.counters["p99_us"] = ns[ns.size() * 99 / 100] / 1000;
}
BENCHMARK(BM_AttestationTrustClaims);

void BM_AttestationExplainDenied(benchmark::State& state) {
  auto p = policy::compile({{"attestation.rego", read_policy("attestation.rego")}}, options());
  Json claims = tdx_claims();
  claims["tdx"]["quote"]["body"]["mr_td"] = "unknown";
  for (auto _ : state) {
    auto r = (*p)->evaluate("data.policy.hardware", claims, Json::object(), true);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_AttestationExplainDenied);

void BM_ResourcePolicyAffirming(benchmark::State& state) {
  auto p = policy::compile({{"resource_affirming.rego", read_policy("resource_affirming.rego")}});
  Json ear = {{"submods", {{"cpu0", {{"ear.status", "affirming"}}}}}};
  for (auto _ : state) {
    auto r = (*p)->evaluate("data.policy.allow", ear);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_ResourcePolicyAffirming);

void BM_CompileAttestationPolicy(benchmark::State& state) {
  std::string src = read_policy("attestation.rego");
  for (auto _ : state) {
    auto p = policy::compile({{"attestation.rego", src}}, options());
    benchmark::DoNotOptimize(p);
  }
}
BENCHMARK(BM_CompileAttestationPolicy);

}  // namespace

BENCHMARK_MAIN();
