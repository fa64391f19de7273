#include "net/http_server.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <charconv>
#include <mutex>
#include <optional>
#include <thread>

#include <openssl/ssl.h>

#include <fmt/ranges.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "core/log.h"
#include "net/server_session.h"

namespace coffer::net {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// "host:port" or "[v6]:port" -> endpoint. Only literal addresses and "localhost": a listen
// address that needs DNS is a configuration smell.
Result<tcp::endpoint> parse_endpoint(std::string_view text) {
  std::string_view host;
  std::string_view port_text;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return make_error("bad_address",
                        "listen address '" + std::string(text) + "' is not \"[ipv6]:port\"");
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos ||
        text.substr(0, colon).find(':') != std::string_view::npos) {
      return make_error("bad_address", "listen address '" + std::string(text) +
                                           "' is not \"host:port\" (write IPv6 as \"[::1]:port\")");
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  std::uint16_t port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc{} || end != port_text.data() + port_text.size()) {
    return make_error("bad_address", "listen address '" + std::string(text) + "' has a bad port");
  }
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code aec;
  const auto address = asio::ip::make_address(std::string(host), aec);
  if (aec) {
    return make_error("bad_address", "listen address '" + std::string(text) +
                                         "': host must be an IP address or localhost");
  }
  return tcp::endpoint(address, port);
}

Result<std::unique_ptr<asio::ssl::context>> make_tls_context(const TlsServerConfig& tls) {
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  boost::system::error_code ec;
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use,
                   ec);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION);
  ctx->use_certificate_chain_file(tls.certificate_chain.string(), ec);
  if (ec) {
    return make_error("tls_config", "cannot load the certificate chain " +
                                        tls.certificate_chain.string() + ": " + ec.message());
  }
  ctx->use_private_key_file(tls.private_key.string(), asio::ssl::context::pem, ec);
  if (ec) {
    return make_error("tls_config", "cannot load the private key " + tls.private_key.string() +
                                        ": " + ec.message());
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    return make_error("tls_config", "the private key " + tls.private_key.string() +
                                        " does not match the certificate");
  }
  return ctx;
}

// One listening socket and its accept loop. Runs on its own strand.
class Listener {
 public:
  Listener(asio::io_context& ioc, detail::ServerCore& core, asio::ssl::context* tls)
      : ioc_(ioc), core_(core), tls_(tls), acceptor_(asio::make_strand(ioc)), retry_(ioc) {}

  Status bind(const tcp::endpoint& endpoint, std::string_view text) {
    boost::system::error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec && endpoint.address().is_v6()) acceptor_.set_option(asio::ip::v6_only(true), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec == asio::error::address_in_use) {
      return make_error("address_in_use", std::string(text) + " is already in use");
    }
    if (ec)
      return make_error("listen_failed",
                        "cannot listen on " + std::string(text) + ": " + ec.message());
    const auto local = acceptor_.local_endpoint(ec);
    port_ = local.port();
    bound_ = (local.address().is_v6() ? "[" + local.address().to_string() + "]"
                                      : local.address().to_string()) +
             ":" + std::to_string(port_);
    return ok();
  }

  Status adopt(int fd) {
    boost::system::error_code ec;
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
        (addr.ss_family != AF_INET && addr.ss_family != AF_INET6))
      return make_error("listen_failed",
                        "listen fd " + std::to_string(fd) + " is not a TCP socket");
    acceptor_.assign(addr.ss_family == AF_INET ? tcp::v4() : tcp::v6(), fd, ec);
    if (ec) return make_error("listen_failed", "cannot adopt listen fd: " + ec.message());
    const auto local = acceptor_.local_endpoint(ec);
    if (ec) return make_error("listen_failed", "cannot adopt listen fd: " + ec.message());
    port_ = local.port();
    bound_ = (local.address().is_v6() ? "[" + local.address().to_string() + "]"
                                      : local.address().to_string()) +
             ":" + std::to_string(port_);
    return ok();
  }

  void accept() {
    acceptor_.async_accept(asio::make_strand(ioc_),
                           [this](boost::system::error_code ec, tcp::socket socket) {
                             on_accept(ec, std::move(socket));
                           });
  }

  // Gives the native socket back without closing it.
  void release() {
    boost::system::error_code ec;
    if (acceptor_.is_open()) (void)acceptor_.release(ec);
  }

  void close() {
    asio::post(acceptor_.get_executor(), [this] {
      boost::system::error_code ec;
      acceptor_.close(ec);
      retry_.cancel();
    });
  }

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] const std::string& bound() const { return bound_; }

 private:
  void on_accept(boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // E.g. EMFILE: retry after a pause rather than spinning.
      spdlog::warn("http: accept failed: {}", ec.message());
      retry_.expires_after(std::chrono::milliseconds(50));
      retry_.async_wait([this](boost::system::error_code wec) {
        if (!wec) accept();
      });
      return;
    }
    core_.accepted.fetch_add(1, std::memory_order_relaxed);
    if (core_.stopping) {
      socket.close(ec);
    } else if (core_.active.fetch_add(1) >= core_.config.max_connections) {
      core_.active.fetch_sub(1);
      core_.rejected.fetch_add(1, std::memory_order_relaxed);
      socket.close(ec);
    } else {
      std::string key;
      const auto peer = socket.remote_endpoint(ec);
      if (!ec && core_.config.max_connections_per_address > 0)
        key = detail::address_key(peer.address());
      if (!ec && (key.empty() || core_.acquire_address(key))) {
        detail::start_session(core_, tls_, std::move(socket), std::move(key));
      } else {
        // Over the per-address limit (or the peer is already gone).
        core_.active.fetch_sub(1);
        core_.rejected.fetch_add(1, std::memory_order_relaxed);
        socket.close(ec);
      }
    }
    accept();
  }

  asio::io_context& ioc_;
  detail::ServerCore& core_;
  asio::ssl::context* tls_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_;
  std::uint16_t port_ = 0;
  std::string bound_;
};

}  // namespace

class HttpServer::Impl {
 public:
  Impl(HttpServerConfig config, Handler handler)
      : core_(std::move(config), std::move(handler)),
        ioc_(static_cast<int>(std::max<std::size_t>(1, core_.config.worker_threads))) {}

  Status start() {
    std::lock_guard lock(state_mutex_);
    if (state_ != State::kNew)
      return make_error("already_started", "the server was started before");
    if (core_.config.sockets.empty() && core_.config.listen_fds.empty())
      return make_error("bad_address", "no listen socket configured");
    if (core_.config.tls) tls_ = COFFER_TRY(make_tls_context(*core_.config.tls));
    std::vector<std::unique_ptr<Listener>> listeners;
    for (const auto& text : core_.config.sockets) {
      const auto endpoint = COFFER_TRY(parse_endpoint(text));
      auto listener = std::make_unique<Listener>(ioc_, core_, tls_.get());
      COFFER_TRY_STATUS(listener->bind(endpoint, text));
      listeners.push_back(std::move(listener));
    }
    for (std::size_t i = 0; i < core_.config.listen_fds.size(); ++i) {
      auto listener = std::make_unique<Listener>(ioc_, core_, tls_.get());
      if (auto adopted = listener->adopt(core_.config.listen_fds[i]); !adopted) {
        // The fds adopted so far belong to their listeners now; give them back to the caller.
        for (std::size_t j = 0; j < i; ++j) listeners[listeners.size() - i + j]->release();
        return adopted;
      }
      listeners.push_back(std::move(listener));
    }
    listeners_ = std::move(listeners);
    for (auto& listener : listeners_) listener->accept();
    const std::size_t n = std::max<std::size_t>(1, core_.config.worker_threads);
    for (std::size_t i = 0; i < n; ++i) threads_.emplace_back([this] { run_worker(); });
    state_ = State::kRunning;
    std::vector<std::string> bound;
    for (const auto& listener : listeners_) bound.push_back(listener->bound());
    spdlog::info("http: listening on {} ({})", fmt::join(bound, ", "), tls_ ? "TLS" : "plain HTTP");
    return ok();
  }

  void stop() {
    std::lock_guard lock(state_mutex_);
    if (state_ != State::kRunning) {
      state_ = State::kStopped;
      return;
    }
    state_ = State::kStopped;
    core_.stopping = true;
    for (auto& listener : listeners_) listener->close();
    core_.shutdown_sessions();
    // The io_context runs out of work once listeners and sessions are gone; every pending
    // operation is bounded by a timeout.
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  [[nodiscard]] std::vector<std::uint16_t> bound_ports() const {
    std::vector<std::uint16_t> ports;
    for (const auto& listener : listeners_) ports.push_back(listener->port());
    return ports;
  }

  [[nodiscard]] HttpServerStats stats() const {
    return {core_.accepted.load(), core_.rejected.load(), core_.active.load(),
            core_.requests.load()};
  }

 private:
  enum class State { kNew, kRunning, kStopped };

  void run_worker() {
    for (;;) {
      try {
        ioc_.run();
        return;
      } catch (const std::exception& e) {
        spdlog::error("http: worker caught an exception: {}", e.what());
      }
    }
  }

  // Declaration order is destruction order in reverse: sessions (owned by handlers queued in
  // ioc_) refer to core_ and tls_, so those are declared first.
  detail::ServerCore core_;
  std::unique_ptr<asio::ssl::context> tls_;
  asio::io_context ioc_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<std::thread> threads_;
  std::mutex state_mutex_;
  State state_ = State::kNew;
};

HttpServer::HttpServer(HttpServerConfig config, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(handler))) {}

HttpServer::~HttpServer() { stop(); }

Status HttpServer::start() { return impl_->start(); }
void HttpServer::stop() { impl_->stop(); }
std::vector<std::uint16_t> HttpServer::bound_ports() const { return impl_->bound_ports(); }
HttpServerStats HttpServer::stats() const { return impl_->stats(); }

}  // namespace coffer::net
