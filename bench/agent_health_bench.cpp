// Health round trips against a running coffer-agent with coffer's C++ ttrpc client, the
// counterpart of `ttrpc-go bench` (apps/test/ttrpc_go_interop/main.go, containerd's Go client);
// bench/ttrpc_go_bench.sh runs both against one agent. N sequential calls on one connection, no
// deadline, after 50 warm-up calls; prints p50/p90/p99/max in microseconds.
//
// Usage: agent_health_bench SOCKET N
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/agent/v1/agent.pb.h"
#include "net/ttrpc/client.h"

namespace {

namespace pb = ::coffer::agent::v1;
using Clock = std::chrono::steady_clock;

bool health(coffer::net::ttrpc::Client& c, const std::string& request) {
  auto r = c.call("coffer.agent.v1.Agent", "Health", request);
  pb::HealthResponse resp;
  if (!r || !resp.ParseFromString(*r) || resp.status() != "SERVING") {
    std::fprintf(stderr, "Health failed: %s\n", r ? "bad response" : r.error().to_string().c_str());
    return false;
  }
  return true;
}

// Nearest-rank percentile of sorted samples.
double quantile(const std::vector<double>& sorted, double p) {
  const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

}  // namespace

int main(int argc, char** argv) {
  int n = 0;
  if (argc == 3) {
    const std::string_view arg = argv[2];
    if (std::from_chars(arg.data(), arg.data() + arg.size(), n).ptr != arg.data() + arg.size()) {
      n = 0;
    }
  }
  if (n <= 0) {
    std::fprintf(stderr, "usage: agent_health_bench SOCKET N\n");
    return 2;
  }
  auto client = coffer::net::ttrpc::Client::connect_unix(argv[1]);
  if (!client) {
    std::fprintf(stderr, "%s\n", client.error().to_string().c_str());
    return 1;
  }
  const std::string request = pb::HealthRequest().SerializeAsString();
  for (int i = 0; i < 50; ++i) {
    if (!health(**client, request)) return 1;
  }
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const auto start = Clock::now();
    if (!health(**client, request)) return 1;
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  std::sort(us.begin(), us.end());
  std::printf("c++-client Health x%d: p50 %.0f us, p90 %.0f us, p99 %.0f us, max %.0f us\n", n,
              quantile(us, 0.5), quantile(us, 0.9), quantile(us, 0.99), us.back());
  return 0;
}
