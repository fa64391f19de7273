// HttpServer: an HTTP/1.1 server on Boost.Beast/Asio, plain or TLS.
//
//   HttpServerConfig config;
//   config.sockets = {"127.0.0.1:0"};
//   HttpServer server(config, [](const Request& r) { return Response::text(200, "hi"); });
//   if (auto started = server.start(); !started) { ... started.error() ... }
//   auto port = server.bound_ports()[0];
//   ...
//   server.stop();  // also done by the destructor
//
// Model: `worker_threads` threads run one io_context; each connection is served by an
// asynchronous session on its own strand, so requests of one connection are handled in order
// and requests of different connections run concurrently. The handler is called synchronously on
// a worker thread: it must be thread-safe and should not block for long (a slow handler holds a
// worker; size `worker_threads` for handlers that wait on I/O).
//
// Connections are persistent (HTTP/1.1 keep-alive, HTTP/1.0 with "Connection: keep-alive");
// requests on one connection are read one after another (no pipelining in parallel).
//
// Protective limits, each answered and followed by closing the connection:
//   - request body over max_body_bytes -> 413, decided from Content-Length before the body is
//     read (chunked bodies: as soon as the limit is crossed);
//   - header section over max_header_bytes -> 431;
//   - malformed HTTP -> 400;
//   - no complete header within header_timeout of the connection's start (first request) or of
//     the request's first byte (later requests), no complete request within request_timeout of
//     its first byte, or no new request within idle_timeout of the previous response ->
//     connection closed without a response (slowloris protection: a connection that never sends
//     a request holds its slot for header_timeout only);
//   - more than max_connections open connections, or more than max_connections_per_address
//     from one client address (IPv6: one /64) -> new ones are closed on accept, so one client
//     cannot take every slot.
// "Expect: 100-continue" is honoured (100 sent only when the announced body fits the limit).
// A handler that throws produces a 500 with a generic body; the exception is logged.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "net/http.h"

namespace coffer::net {

using Handler = std::function<Response(const Request&)>;

struct TlsServerConfig {
  std::filesystem::path certificate_chain;  // PEM: leaf first, then intermediates
  std::filesystem::path private_key;        // PEM, unencrypted
};

struct HttpServerConfig {
  // Listen addresses "host:port": "127.0.0.1:8080", "0.0.0.0:443", "[::1]:0", "[::]:8080",
  // "localhost:0" (= 127.0.0.1). Port 0 picks a free port; see bound_ports().
  std::vector<std::string> sockets = {"127.0.0.1:8080"};
  // Listening TCP sockets created by the caller (e.g. inside another network namespace, which a
  // socket keeps for its lifetime), served in addition to `sockets` (which may then be empty).
  // The server owns them from start() on and closes them on stop(); on a failed start() the
  // caller still owns them.
  std::vector<int> listen_fds;
  std::size_t worker_threads = 2;
  std::size_t max_body_bytes = 2 * 1024 * 1024;
  std::size_t max_header_bytes = 16 * 1024;
  std::chrono::milliseconds request_timeout{30'000};  // first byte of a request to its end;
                                                      // also bounds writing the response
  std::chrono::milliseconds idle_timeout{60'000};     // between requests on a connection
  std::chrono::milliseconds header_timeout{10'000};   // to a complete header (see above)
  std::size_t max_connections = 1024;
  std::size_t max_connections_per_address = 64;  // 0: no per-address limit
  std::optional<TlsServerConfig> tls;            // absent: plain HTTP
};

// Counters since start(), readable at any time from any thread.
struct HttpServerStats {
  std::uint64_t accepted_connections = 0;  // including rejected ones
  std::uint64_t rejected_connections = 0;  // closed at accept: over a connection limit
  std::uint64_t active_connections = 0;
  std::uint64_t requests = 0;  // requests passed to the handler
};

class HttpServer {
 public:
  HttpServer(HttpServerConfig config, Handler handler);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds every socket, loads the TLS certificate and key, and starts the worker threads.
  // When this returns successfully the server accepts connections. Errors: "bad_address",
  // "address_in_use", "listen_failed", "tls_config", "already_started".
  Status start();

  // Stops accepting, closes idle connections, lets requests in progress finish (their responses
  // are sent with "Connection: close"), then joins the workers. Idempotent; safe to call from
  // any thread except a worker (i.e. not from inside a handler).
  void stop();

  // Actual ports, in the order of config.sockets (meaningful after a successful start()).
  [[nodiscard]] std::vector<std::uint16_t> bound_ports() const;

  [[nodiscard]] HttpServerStats stats() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace coffer::net
