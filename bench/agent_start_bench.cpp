// Load generator for a running coffer-agent (bench/agent_start_bench.sh starts one): for N rounds,
// CreateContainer from an image the agent has cached, StartContainer, then ReadOutput until the
// first byte arrives; the time from the CreateContainer call to that byte is one sample. Each
// container is then waited for and removed. Prints p50/p90/p99/max in milliseconds, and the
// split into create (pull-from-cache + policy + measurement + bundle) and start->first byte.
//
// Usage: agent_start_bench SOCKET IMAGE ROUNDS
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "coffer/agent/v1/agent.pb.h"
#include "net/ttrpc/client.h"

namespace {

namespace pb = ::coffer::agent::v1;
using Clock = std::chrono::steady_clock;
constexpr std::string_view kService = "coffer.agent.v1.Agent";

template <class Resp>
Resp call(coffer::net::ttrpc::Client& c, std::string_view method,
          const google::protobuf::Message& req) {
  auto r = c.call(kService, method, req.SerializeAsString(), std::chrono::seconds(60));
  if (!r) {
    std::fprintf(stderr, "%.*s: %s\n", static_cast<int>(method.size()), method.data(),
                 r.error().message.c_str());
    std::exit(1);
  }
  Resp resp;
  if (!resp.ParseFromString(*r)) std::exit(1);
  return resp;
}

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

void report(const char* what, const std::vector<double>& v) {
  std::printf("%-22s p50 %7.2f ms  p90 %7.2f ms  p99 %7.2f ms  max %7.2f ms  (n=%zu)\n", what,
              percentile(v, 0.5), percentile(v, 0.9), percentile(v, 0.99),
              *std::max_element(v.begin(), v.end()), v.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: agent_start_bench SOCKET IMAGE ROUNDS\n");
    return 2;
  }
  const std::string image = argv[2];
  const int rounds = std::atoi(argv[3]);
  auto client = coffer::net::ttrpc::Client::connect_unix(argv[1]);
  if (!client || rounds <= 0) {
    std::fprintf(stderr, "cannot connect to %s\n", argv[1]);
    return 1;
  }
  auto& c = **client;
  pb::CreateSandboxRequest sandbox;
  sandbox.set_sandbox_id("bench");
  call<pb::Empty>(c, "CreateSandbox", sandbox);
  std::vector<double> total;
  std::vector<double> create;
  std::vector<double> start_to_byte;
  for (int i = 0; i < rounds; ++i) {
    const std::string id = "b" + std::to_string(i);
    pb::CreateContainerRequest cr;
    cr.set_container_id(id);
    cr.set_sandbox_id("bench");
    cr.set_image(image);
    const auto t0 = Clock::now();
    call<pb::CreateContainerResponse>(c, "CreateContainer", cr);
    const auto t1 = Clock::now();
    pb::StartContainerRequest st;
    st.set_container_id(id);
    call<pb::Empty>(c, "StartContainer", st);
    pb::ReadOutputRequest rd;
    rd.set_container_id(id);
    rd.set_max_bytes(1);
    auto first = call<pb::ReadOutputResponse>(c, "ReadOutput", rd);
    const auto t2 = Clock::now();
    if (first.data().empty()) {
      std::fprintf(stderr, "container %s ended without output\n", id.c_str());
      return 1;
    }
    total.push_back(ms(t2 - t0));
    create.push_back(ms(t1 - t0));
    start_to_byte.push_back(ms(t2 - t1));
    rd.set_max_bytes(0);
    while (!call<pb::ReadOutputResponse>(c, "ReadOutput", rd).eof()) {
    }
    pb::WaitProcessRequest w;
    w.set_container_id(id);
    call<pb::WaitProcessResponse>(c, "WaitProcess", w);
    pb::RemoveContainerRequest rm;
    rm.set_container_id(id);
    call<pb::Empty>(c, "RemoveContainer", rm);
  }
  pb::RemoveSandboxRequest rs;
  rs.set_sandbox_id("bench");
  call<pb::Empty>(c, "RemoveSandbox", rs);
  report("create->first byte", total);
  report("  create", create);
  report("  start->first byte", start_to_byte);
  return 0;
}
