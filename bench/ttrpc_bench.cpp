// ttrpc round trips on a Unix socket (src/net/ttrpc): one client calling an echo method, with a
// small and a 64 KiB payload, and several threads sharing one connection (calls in flight
// together). p50_us / p99_us are per-call percentiles measured inside the loop.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/test/temp_dir.h"
#include "net/ttrpc/client.h"
#include "net/ttrpc/server.h"

namespace {

using namespace coffer::net::ttrpc;

struct Echo {
  coffer::testing::TempDir dir;
  Server server;
  std::unique_ptr<Client> client;
  Echo() {
    server.add_method("coffer.bench.v1.Echo", "Echo",
                      [](const CallContext&, std::string_view request) -> CallResult {
                        return std::string(request);
                      });
    if (!server.listen_unix(dir.path() / "bench.sock")) std::abort();
    client = std::move(*Client::connect_unix(dir.path() / "bench.sock"));
  }
};

Echo& shared_echo() {
  static Echo echo;
  return echo;
}

void BM_TtrpcRoundTrip(benchmark::State& state) {
  auto& echo = shared_echo();
  const std::string payload(static_cast<std::size_t>(state.range(0)), 'x');
  std::vector<double> ns;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = echo.client->call("coffer.bench.v1.Echo", "Echo", payload);
    ns.push_back(
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count());
    if (!r || r->size() != payload.size()) state.SkipWithError("call failed");
  }
  std::sort(ns.begin(), ns.end());
  if (!ns.empty()) {
    state.counters["p50_us"] = ns[ns.size() / 2] / 1000;
    state.counters["p99_us"] = ns[ns.size() * 99 / 100] / 1000;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0) * 2);
}
BENCHMARK(BM_TtrpcRoundTrip)->Arg(16)->Arg(64 * 1024)->UseRealTime();

// Several threads, one connection: throughput with calls in flight together.
void BM_TtrpcSharedConnection(benchmark::State& state) {
  auto& echo = shared_echo();
  const std::string payload(16, 'x');
  for (auto _ : state) {
    auto r = echo.client->call("coffer.bench.v1.Echo", "Echo", payload);
    if (!r) state.SkipWithError("call failed");
  }
}
BENCHMARK(BM_TtrpcSharedConnection)->Threads(1)->Threads(4)->Threads(16)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
