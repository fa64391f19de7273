// Internal to net: the per-connection sessions of HttpServer and the state they share with it.
// Not part of the module's interface.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "net/http_server.h"

namespace coffer::net::detail {

// A live connection as the server sees it, for stop().
class Session {
 public:
  virtual ~Session() = default;
  // Asks the session to end: idle or half-read connections close now, a request being handled
  // finishes and its response goes out with "Connection: close". Thread-safe.
  virtual void shutdown() = 0;
};

// What sessions share with their server. Outlives every session (the server joins its workers
// and destroys the io_context, and with it every session, before destroying this).
struct ServerCore {
  ServerCore(HttpServerConfig c, Handler h) : config(std::move(c)), handler(std::move(h)) {}

  const HttpServerConfig config;
  const Handler handler;
  std::atomic<bool> stopping{false};
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> rejected{0};
  std::atomic<std::uint64_t> active{0};
  std::atomic<std::uint64_t> requests{0};

  // Registry of live sessions, touched once per connection (not per request).
  std::uint64_t add_session(const std::shared_ptr<Session>& session);
  void remove_session(std::uint64_t id);
  void shutdown_sessions();

 private:
  std::mutex mutex_;
  std::uint64_t next_id_ = 0;
  std::unordered_map<std::uint64_t, std::weak_ptr<Session>> sessions_;
};

// Takes ownership of an accepted socket (whose executor is a strand) and serves it until the
// connection ends. `tls` null: plain HTTP.
void start_session(ServerCore& core, boost::asio::ssl::context* tls,
                   boost::asio::ip::tcp::socket socket);

}  // namespace coffer::net::detail
