// coffer's C++ ttrpc client (src/net/ttrpc) against containerd's Go ttrpc server (`ttrpc-go
// server`, apps/test/ttrpc_go_interop/main.go), on one connection: what `coffer agent-ctl` (one
// call per connection) does not exercise. Run by apps/test/ttrpc_go_interop.sh; one line per
// check, exit 1 on a failure.
//
// Usage: ttrpc_interop_client SOCKET
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "coffer/agent/v1/agent.pb.h"
#include "net/ttrpc/client.h"

namespace {

namespace pb = ::coffer::agent::v1;
namespace ttrpc = ::coffer::net::ttrpc;
using namespace std::chrono_literals;
constexpr std::string_view kService = "coffer.agent.v1.Agent";

bool failed = false;

void check(const std::string& name, const std::string& problem) {
  if (problem.empty()) {
    std::printf("ok   %s\n", name.c_str());
  } else {
    failed = true;
    std::printf("FAIL %s: %s\n", name.c_str(), problem.c_str());
  }
}

std::string describe(const ttrpc::CallResult& r) {
  return r ? "OK (" + std::to_string(r->size()) + " bytes)" : r.error().to_string();
}

// "" when `r` is the Go server's NOT_FOUND for container `id`.
std::string not_found(const ttrpc::CallResult& r, const std::string& id) {
  const ttrpc::RpcStatus want{ttrpc::Code::kNotFound,
                              "container_not_found: no container '" + id + "'"};
  if (!r && r.error() == want) return "";
  return "got " + describe(r) + ", want " + want.to_string();
}

std::string health(ttrpc::Client& client) {
  auto r = client.call(kService, "Health", pb::HealthRequest().SerializeAsString(), 10s);
  pb::HealthResponse resp;
  if (!r) return describe(r);
  if (!resp.ParseFromString(*r) || resp.status() != "SERVING") return "not SERVING";
  return "";
}

std::string state_request(const std::string& id) {
  pb::ContainerStateRequest req;
  req.set_container_id(id);
  return req.SerializeAsString();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: ttrpc_interop_client SOCKET\n");
    return 2;
  }
  auto connected = ttrpc::Client::connect_unix(argv[1]);
  if (!connected) {
    std::fprintf(stderr, "%s\n", connected.error().to_string().c_str());
    return 2;
  }
  ttrpc::Client& client = **connected;

  {
    // 16 calls in flight; the Go server answers the later ones first (15*15 ms down to 0).
    constexpr int kCalls = 16;
    std::vector<std::string> problems(kCalls);
    std::vector<std::thread> threads;
    for (int i = 0; i < kCalls; ++i) {
      threads.emplace_back([&, i] {
        const std::string id =
            "slow-" + std::to_string((kCalls - 1 - i) * 15) + "-c" + std::to_string(i);
        problems[static_cast<std::size_t>(i)] =
            not_found(client.call(kService, "ContainerState", state_request(id), 10s), id);
      });
    }
    for (auto& t : threads) t.join();
    std::string all;
    for (int i = 0; i < kCalls; ++i) {
      if (!problems[static_cast<std::size_t>(i)].empty()) {
        all += "call " + std::to_string(i) + ": " + problems[static_cast<std::size_t>(i)] + "; ";
      }
    }
    check("16 calls in flight on one connection, answered out of order, each get their own", all);
  }
  {
    std::string problem;
    for (int i = 0; i < 200 && problem.empty(); ++i) problem = health(client);
    check("200 sequential calls on one connection (stream ids 33 to 431)", problem);
  }
  {
    auto r = client.call(
        kService, "EchoMetadata", "", 10s,
        {{"containerd-namespace-ttrpc", "k8s.io"}, {"x-coffer", "a"}, {"x-coffer", "b"}});
    pb::HealthResponse echoed;  // a StringValue: field 1
    std::string problem;
    if (!r || !echoed.ParseFromString(*r)) {
      problem = describe(r);
    } else if (echoed.status() != "containerd-namespace-ttrpc=k8s.io;x-coffer=a;x-coffer=b") {
      problem = "the Go server saw '" + echoed.status() + "'";
    }
    check("metadata (a repeated key too) reaches the Go server's context", problem);
  }
  {
    // Our deadline passes first (the Go handler's context ends a little later, and its answer
    // is dropped when it comes); the connection goes on.
    pb::ContainerStateRequest req;
    req.set_container_id("c1");
    auto r = client.call(kService, "WaitProcess", req.SerializeAsString(), 300ms);
    std::string problem;
    if (r || r.error().code != ttrpc::Code::kDeadlineExceeded) problem = describe(r);
    for (int i = 0; i < 20 && problem.empty(); ++i) problem = health(client);
    check("a call past its deadline is DEADLINE_EXCEEDED, the connection goes on", problem);
  }
  {
    // a 5 MiB answer from Go: over our limit, skipped without losing the stream
    pb::ReadOutputRequest req;
    req.set_container_id("big");
    auto r = client.call(kService, "ReadOutput", req.SerializeAsString(), 10s);
    std::string problem;
    if (r || r.error().code != ttrpc::Code::kResourceExhausted) problem = describe(r);
    if (problem.empty()) problem = health(client);
    check("a 5 MiB response is RESOURCE_EXHAUSTED, the connection goes on", problem);
  }
  return failed ? 1 : 0;
}
