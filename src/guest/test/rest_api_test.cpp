// The workload REST API: CoCo's paths over real loopback HTTP against the in-process trustee,
// refusals (methods, traversal, encodings, bounds), and the listening socket created inside a
// network namespace the test makes (root only).
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "guest/rest_api.h"
#include "guest/test/guest_env.h"
#include "jose/jwt.h"

namespace coffer::guest {
namespace {

using testing::GuestEnv;

// One raw HTTP/1.1 exchange on 127.0.0.1:port in the calling thread's network namespace: the
// status code, or -errno when the connection fails. Raw so that the target goes out unnormalized.
int raw_get(std::uint16_t port, const std::string& target, std::string* body = nullptr,
            const std::string& method = "GET") {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    int err = errno;
    ::close(fd);
    return -err;
  }
  std::string req =
      method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  (void)::write(fd, req.data(), req.size());
  std::string answer;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) answer.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  if (answer.size() < 12) return 0;
  if (body) {
    auto end = answer.find("\r\n\r\n");
    *body = end == std::string::npos ? "" : answer.substr(end + 4);
  }
  return std::stoi(answer.substr(9, 3));
}

RestApiOptions loopback() { return {.address = "127.0.0.1:0"}; }

TEST(RestApi, ServesCocoPathsFromTheEnclave) {
  GuestEnv env;
  RestApi api(env.aa(), env.cdh(), loopback());
  ASSERT_TRUE(api.start());
  ASSERT_NE(api.port(), 0);
  std::string body;
  EXPECT_EQ(raw_get(api.port(), "/cdh/resource/default/key/sim", &body), 200);
  EXPECT_EQ(body, "sim secret");

  EXPECT_EQ(raw_get(api.port(), "/aa/token?token_type=kbs", &body), 200);
  auto token = parse_json(body);
  ASSERT_TRUE(token && token->contains("token")) << body;
  EXPECT_FALSE(token->contains("tee_keypair"));  // the private key never leaves the agent
  EXPECT_TRUE(jose::jwt_peek_claims((*token)["token"].get<std::string>()));

  ASSERT_TRUE(env.aa().extend({"coffer.dev/agent", "CreateContainer", "c1"}));
  EXPECT_EQ(raw_get(api.port(), "/aa/evidence?runtime_data=hello%20world", &body), 200);
  auto ev = parse_json(body);
  ASSERT_TRUE(ev && ev->contains("quote")) << body;
  EXPECT_EQ((*ev)["aa_eventlog"], env.aa().event_log_text());

  EXPECT_EQ(raw_get(api.port(), "/cdh/resource/default/key/missing", &body), 404);
  EXPECT_NE(body.find("kbs_not_found"), std::string::npos);
  api.stop();
}

struct Refusal {
  const char* name;
  std::string method;
  std::string target;
  int status;
};

class RestApiRefuses : public ::testing::TestWithParam<Refusal> {};

TEST_P(RestApiRefuses, Request) {
  // No KBS: nothing refused here may reach one.
  testing::SimEnclave enclave;
  AttestationAgent aa(
      std::make_unique<aa::SimAttester>(aa::SimAttester::Kind::kTdx, enclave.socket()),
      GuestConfig{});
  DataHub cdh(aa, GuestConfig{});
  RestApi api(aa, cdh);
  net::Request r{.method = GetParam().method, .target = GetParam().target};
  auto answer = api.handle(r);
  EXPECT_EQ(answer.status, GetParam().status) << answer.body;
}

INSTANTIATE_TEST_SUITE_P(
    Negative, RestApiRefuses,
    ::testing::Values(
        Refusal{"post", "POST", "/cdh/resource/default/key/sim", 405},
        Refusal{"put", "PUT", "/aa/token?token_type=kbs", 405},
        Refusal{"dotdot", "GET", "/cdh/resource/default/../sim", 400},
        Refusal{"dotdot_tag", "GET", "/cdh/resource/default/key/..", 400},
        Refusal{"dot", "GET", "/cdh/resource/./key/sim", 400},
        Refusal{"encoded_dotdot", "GET", "/cdh/resource/default/%2e%2e/sim", 400},
        Refusal{"encoded_dotdot_upper", "GET", "/cdh/resource/default/%2E%2E/sim", 400},
        Refusal{"encoded_slash", "GET", "/cdh/resource/default%2Fkey/sim/x", 400},
        Refusal{"empty_segment", "GET", "/cdh/resource/default//sim", 400},
        Refusal{"trailing_slash", "GET", "/cdh/resource/default/key/sim/", 400},
        Refusal{"double_leading", "GET", "//cdh/resource/default/key/sim", 400},
        Refusal{"too_long", "GET", "/cdh/resource/default/key/" + std::string(3000, 'a'), 414},
        Refusal{"four_segments", "GET", "/cdh/resource/a/b/c/d", 404},
        Refusal{"two_segments", "GET", "/cdh/resource/a/b", 404},
        Refusal{"unknown", "GET", "/kbs/v0/resource/a/b/c", 404},
        Refusal{"bad_segment_chars", "GET", "/cdh/resource/default/key/s~im", 400},
        Refusal{"no_token_type", "GET", "/aa/token", 400},
        Refusal{"other_token_type", "GET", "/aa/token?token_type=coco_as", 400},
        Refusal{"repeated_param", "GET", "/aa/token?token_type=kbs&token_type=kbs", 400},
        Refusal{"bad_escape", "GET", "/aa/evidence?runtime_data=%zz", 400},
        Refusal{"no_runtime_data", "GET", "/aa/evidence", 400},
        Refusal{"runtime_data_too_long", "GET",
                "/aa/evidence?runtime_data=" + std::string(kMaxRuntimeDataBytes + 1, 'a'), 400},
        Refusal{"no_kbs", "GET", "/cdh/resource/default/key/sim", 503}),
    [](const ::testing::TestParamInfo<Refusal>& p) { return std::string(p.param.name); });

TEST(RestApi, EvidenceWithoutKbs) {
  testing::SimEnclave enclave;
  AttestationAgent aa(
      std::make_unique<aa::SimAttester>(aa::SimAttester::Kind::kTdx, enclave.socket()),
      GuestConfig{});
  DataHub cdh(aa, GuestConfig{});
  RestApi api(aa, cdh);
  auto answer = api.handle({.method = "GET", .target = "/aa/evidence?runtime_data=abc"});
  EXPECT_EQ(answer.status, 200) << answer.body;
}

TEST(RestApi, TraversalOverTheWire) {
  testing::SimEnclave enclave;
  AttestationAgent aa(
      std::make_unique<aa::SimAttester>(aa::SimAttester::Kind::kTdx, enclave.socket()),
      GuestConfig{});
  DataHub cdh(aa, GuestConfig{});
  RestApi api(aa, cdh, loopback());
  ASSERT_TRUE(api.start());
  EXPECT_EQ(raw_get(api.port(), "/cdh/resource/default/%2e%2e/x"), 400);
  EXPECT_EQ(raw_get(api.port(), "/cdh/resource/default/../x/y"), 400);
  EXPECT_EQ(raw_get(api.port(), "/cdh/resource/default/key/sim", nullptr, "DELETE"), 405);
}

// A fresh network namespace with its loopback up, held by an fd (the creating thread ends).
class NetNs {
 public:
  NetNs() {
    std::thread([this] {
      if (::unshare(CLONE_NEWNET) != 0) return;
      int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      ifreq ifr{};
      std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
      if (::ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
        ::ioctl(s, SIOCSIFFLAGS, &ifr);
      }
      ::close(s);
      fd_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    }).join();
  }
  ~NetNs() {
    if (fd_ >= 0) ::close(fd_);
  }
  [[nodiscard]] bool ok() const { return fd_ >= 0; }
  [[nodiscard]] std::filesystem::path path() const {
    return "/proc/self/fd/" + std::to_string(fd_);
  }
  // Runs `f` on a thread inside the namespace.
  template <typename F>
  void run_inside(F&& f) const {
    std::thread([&] {
      ASSERT_EQ(::setns(fd_, CLONE_NEWNET), 0) << std::strerror(errno);
      f();
    }).join();
  }

 private:
  int fd_ = -1;
};

TEST(RestApi, ListensInsideTheGivenNetworkNamespaceOnly) {
  if (::geteuid() != 0) GTEST_SKIP() << "creating a network namespace needs root";
  NetNs ns;
  ASSERT_TRUE(ns.ok()) << "unshare(CLONE_NEWNET) failed: " << std::strerror(errno);
  GuestEnv env;
  RestApi api(env.aa(), env.cdh(), {.address = "127.0.0.1:0", .netns = ns.path()});
  auto started = api.start();
  ASSERT_TRUE(started) << started.error().to_string();
  const std::uint16_t port = api.port();
  ASSERT_NE(port, 0);
  // From the pod's namespace: served, and the KBS (reached from the agent's namespace) answers.
  int status = 0;
  std::string body;
  ns.run_inside([&] { status = raw_get(port, "/cdh/resource/default/key/sim", &body); });
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body, "sim secret");
  // From the agent's (host-side) namespace: nothing listens there.
  EXPECT_EQ(raw_get(port, "/cdh/resource/default/key/sim"), -ECONNREFUSED);
  api.stop();
}

TEST(RestApi, BadNamespaceOrAddress) {
  testing::SimEnclave enclave;
  AttestationAgent aa(
      std::make_unique<aa::SimAttester>(aa::SimAttester::Kind::kTdx, enclave.socket()),
      GuestConfig{});
  DataHub cdh(aa, GuestConfig{});
  RestApi missing(aa, cdh, {.address = "127.0.0.1:0", .netns = "/nonexistent/netns"});
  EXPECT_EQ(missing.start().error().code, "netns_failed");
  RestApi not_ns(aa, cdh, {.address = "127.0.0.1:0", .netns = "/dev/null"});
  EXPECT_EQ(not_ns.start().error().code, "netns_failed");
  EXPECT_EQ(listen_in_netns("/proc/self/ns/net", "localhost:80").error().code, "bad_address");
  EXPECT_EQ(listen_in_netns("/proc/self/ns/net", "127.0.0.1:99999").error().code, "bad_address");
}

}  // namespace
}  // namespace coffer::guest
