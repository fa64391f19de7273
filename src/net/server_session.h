// Internal to net: the per-connection sessions of HttpServer and the state they share with it.
// Not part of the module's interface.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
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

  // Open connections per client address (IPv6: per /64), for max_connections_per_address.
  // acquire_address() is false when the address is at its limit; every successful acquire is
  // paired with one release_address().
  bool acquire_address(const std::string& key);
  void release_address(const std::string& key);

  // Registry of live sessions, touched once per connection (not per request).
  std::uint64_t add_session(const std::shared_ptr<Session>& session);
  void remove_session(std::uint64_t id);
  void shutdown_sessions();

 private:
  std::mutex mutex_;
  std::uint64_t next_id_ = 0;
  std::unordered_map<std::uint64_t, std::weak_ptr<Session>> sessions_;
  std::mutex address_mutex_;
  std::unordered_map<std::string, std::size_t> per_address_;
};

// The key counted by max_connections_per_address: the IPv4 address, or the IPv6 /64.
std::string address_key(const boost::asio::ip::address& address);

// Takes ownership of an accepted socket (whose executor is a strand) and serves it until the
// connection ends. `tls` null: plain HTTP. `address_key` was acquired for this connection (empty:
// none) and is released when the connection ends.
void start_session(ServerCore& core, boost::asio::ssl::context* tls,
                   boost::asio::ip::tcp::socket socket, std::string address_key);

}  // namespace coffer::net::detail
