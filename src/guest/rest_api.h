// The workload-facing REST API inside the enclave, at CoCo's paths (guest-components
// api-server-rest), on 127.0.0.1:8006 of the pod's network namespace:
//
//   GET /cdh/resource/<repo>/<type>/<tag>   -> the KBS resource bytes (application/octet-stream)
//   GET /aa/token?token_type=kbs            -> {"token":"<EAR JWT>"} (CoCo also returns the TEE
//                                              key pair; coffer never hands out the private key)
//   GET /aa/evidence?runtime_data=<text>    -> the evidence JSON binding SHA-384(runtime_data),
//                                              with the AA event log
//
// Only GET (405 otherwise); paths at most kMaxRestTargetBytes (414); no percent-encoding in paths,
// no "." or ".." or empty segments (400): a resource name is resolved exactly as written. Errors
// are {"error":"<code>","message":"..."}.
//
// With `netns` set, the listening socket is created inside that network namespace (a file such as
// /var/run/netns/<pod> or /proc/<pid>/ns/net): a dedicated thread enters it with setns() before
// socket()/bind()/listen() and ends; the socket keeps that namespace for its lifetime, so the API
// is reachable from the pod and not from the namespace the agent runs in (the host's side).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "core/error.h"
#include "guest/aa/agent.h"
#include "guest/cdh/data_hub.h"
#include "net/http.h"
#include "net/http_server.h"

namespace coffer::guest {

inline constexpr std::size_t kMaxRestTargetBytes = 2048;
inline constexpr std::size_t kMaxRuntimeDataBytes = 1024;

struct RestApiOptions {
  std::string address = "127.0.0.1:8006";  // "a.b.c.d:port" or "[v6]:port"; port 0 for tests
  std::filesystem::path netns;             // empty: the agent's own network namespace
  std::size_t worker_threads = 2;
};

// Creates a listening TCP socket on `address` inside the network namespace `netns` (the calling
// thread's namespace is untouched). Errors: "bad_address", "netns_failed", "address_in_use",
// "listen_failed".
Result<int> listen_in_netns(const std::filesystem::path& netns, const std::string& address);

class RestApi {
 public:
  RestApi(AttestationAgent& aa, DataHub& cdh, RestApiOptions options = {});
  ~RestApi();
  RestApi(const RestApi&) = delete;
  RestApi& operator=(const RestApi&) = delete;

  Status start();
  void stop();
  [[nodiscard]] std::uint16_t port() const;

  // One request, as the server answers it (exposed for tests).
  net::Response handle(const net::Request& request);

 private:
  AttestationAgent& aa_;
  DataHub& cdh_;
  RestApiOptions options_;
  std::unique_ptr<net::HttpServer> server_;
};

}  // namespace coffer::guest
