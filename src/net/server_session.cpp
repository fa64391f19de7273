#include "net/server_session.h"

#include <algorithm>
#include <array>
#include <optional>
#include <string_view>
#include <type_traits>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "core/log.h"

namespace coffer::net::detail {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

using PlainStream = tcp::socket;
using TlsStream = beast::ssl_stream<tcp::socket>;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kFirstReadBytes = 8 * 1024;
// After an error response the peer may still be sending (e.g. a body over the limit). Closing
// with unread data makes the kernel send RST, which can destroy our response before the peer
// reads it, so read and discard for a bounded time and amount first ("lingering close").
constexpr std::chrono::seconds kLingerTime{2};
constexpr std::size_t kLingerBytes = 1024 * 1024;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

bool has_crlf(std::string_view s) {
  return s.find_first_of("\r\n", 0, 3) != std::string_view::npos;
}

// Fields the server computes itself: a handler's values would desynchronize the framing.
bool is_framing_field(std::string_view name) {
  return iequals(name, "Content-Length") || iequals(name, "Transfer-Encoding") ||
         iequals(name, "Connection");
}

Response call_handler(const Handler& handler, const Request& request) {
  try {
    return handler(request);
  } catch (const std::exception& e) {
    spdlog::error("http: handler failed on {} {}: {}", request.method, request.path(), e.what());
  } catch (...) {
    spdlog::error("http: handler failed on {} {}: unknown exception", request.method,
                  request.path());
  }
  return Response::text(500, "internal server error\n");
}

template <class Stream>
class Connection final : public Session, public std::enable_shared_from_this<Connection<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

 public:
  Connection(ServerCore& core, tcp::socket socket, std::string address_key) requires(!kTls)
      : core_(core),
        stream_(std::move(socket)),
        address_key_(std::move(address_key)),
        watchdog_(stream_.get_executor()) {}
  Connection(ServerCore& core, asio::ssl::context& tls, tcp::socket socket,
             std::string address_key) requires kTls : core_(core),
                                                      stream_(std::move(socket), tls),
                                                      address_key_(std::move(address_key)),
                                                      watchdog_(stream_.get_executor()) {}

  ~Connection() override {
    core_.remove_session(id_);
    if (!address_key_.empty()) core_.release_address(address_key_);
    core_.active.fetch_sub(1);
  }

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void run() {
    beast::error_code ec;
    const auto peer = socket().remote_endpoint(ec);
    if (!ec) remote_address_ = peer.address().to_string();
    socket().set_option(tcp::no_delay(true), ec);
    id_ = core_.add_session(this->shared_from_this());
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->begin(); });
  }

  void shutdown() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] {
      // A request being handled or written finishes; on_write() then sees `stopping`.
      if (!self->busy_) self->close_now();
    });
  }

 private:
  tcp::socket& socket() { return beast::get_lowest_layer(stream_); }

  // Timeouts: one timer per connection, armed at the earliest deadline seen. Moving the deadline
  // later (every request does) costs nothing; the timer re-arms itself when it fires early.
  void set_deadline(std::chrono::milliseconds timeout) {
    deadline_ = Clock::now() + timeout;
    if (!watchdog_armed_ || deadline_ < armed_at_) arm_watchdog();
  }

  void arm_watchdog() {
    watchdog_armed_ = true;
    armed_at_ = deadline_;
    watchdog_.expires_at(deadline_);  // cancels a previous wait
    watchdog_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (ec == asio::error::operation_aborted || self->closed_) return;
      if (Clock::now() >= self->deadline_) {
        self->close_now();  // pending operations complete with operation_aborted
      } else {
        self->arm_watchdog();
      }
    });
  }

  // Deadline for a complete header (a connection's first one includes the TLS handshake).
  [[nodiscard]] std::chrono::milliseconds header_deadline() const {
    return std::min(core_.config.header_timeout, core_.config.request_timeout);
  }

  void begin() {
    if (core_.stopping) return close_now();
    // A new connection gets header_timeout for its TLS handshake and first header: a client
    // that connects and sends nothing holds its slot only that long, not idle_timeout.
    set_deadline(header_deadline());
    if constexpr (kTls) {
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) return self->close_now();
                                self->wait_request();
                              });
    } else {
      wait_request();
    }
  }

  // Between requests the idle timeout applies; from a request's first byte, the request timeout.
  void wait_request() {
    if (core_.stopping) return close_now();
    if (buffer_.size() > 0) return read_header();
    if (served_ > 0) set_deadline(core_.config.idle_timeout);
    stream_.async_read_some(buffer_.prepare(kFirstReadBytes),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              if (ec) return self->close_now();
                              self->buffer_.commit(n);
                              self->read_header();
                            });
  }

  void read_header() {
    parser_.emplace();
    parser_->body_limit(core_.config.max_body_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(core_.config.max_header_bytes, UINT32_MAX)));
    // The first request keeps the deadline set when the connection began.
    if (served_ > 0) set_deadline(header_deadline());
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec) return self->on_read_error(ec);
                              self->set_deadline(self->core_.config.request_timeout);
                              self->on_header();
                            });
  }

  void on_header() {
    const auto& header = parser_->get();
    // RFC 9110 10.1.1: the client waits for 100 before sending the body. An announced body
    // over the limit has already failed with body_limit, so 100 is only sent for acceptable ones.
    if (!parser_->is_done() && header.version() >= 11 &&
        beast::iequals(header[http::field::expect], "100-continue")) {
      asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                        [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                          if (ec) return self->close_now();
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    if (parser_->is_done()) return handle();
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec) return self->on_read_error(ec);
                       self->handle();
                     });
  }

  void on_read_error(beast::error_code ec) {
    if (ec == http::error::body_limit) return send_error(413, "request body too large\n");
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
      return send_error(431, "request header fields too large\n");
    }
    const bool parse_error =
        ec.category() == http::make_error_code(http::error::bad_target).category();
    // end_of_stream: the peer closed between requests; partial_message: it closed mid-request.
    if (parse_error && ec != http::error::end_of_stream && ec != http::error::partial_message) {
      return send_error(400, "malformed HTTP request\n");
    }
    close_now();  // timeouts, resets, cancellation by stop()
  }

  void handle() {
    busy_ = true;
    auto message = parser_->release();
    parser_.reset();
    Request request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    for (const auto& field : message) {
      request.headers.add(std::string(field.name_string()), std::string(field.value()));
    }
    request.body = std::move(message.body());
    request.remote_address = remote_address_;
    core_.requests.fetch_add(1, std::memory_order_relaxed);
    ++served_;

    Response response = call_handler(core_.handler, request);
    const bool keep_alive = message.keep_alive() && !core_.stopping;
    build_response(std::move(response), message.version(), keep_alive,
                   message.method() == http::verb::head);
    write_response(!keep_alive, false);
  }

  void build_response(Response&& response, unsigned version, bool keep_alive, bool head) {
    int status = response.status;
    if (status < 200 || status > 999) {
      spdlog::error("http: handler returned invalid status {}; sending 500", status);
      response = Response::text(500, "internal server error\n");
      status = 500;
    }
    res_ = {};
    res_.version(version);
    res_.result(static_cast<unsigned>(status));
    for (const auto& [name, value] : response.headers) {
      if (is_framing_field(name)) continue;
      if (name.empty() || has_crlf(name) || has_crlf(value)) {
        spdlog::warn("http: dropping response header with invalid characters");
        continue;
      }
      res_.insert(name, value);
    }
    res_.keep_alive(keep_alive);
    if (head) {
      // RFC 9110 9.3.2: the fields a GET would get, no content.
      res_.content_length(response.body.size());
      return;
    }
    // RFC 9110 15.3.5, 15.4.5: 204 and 304 have no content.
    if (status != 204 && status != 304) res_.body() = std::move(response.body);
    res_.prepare_payload();
  }

  void send_error(int status, std::string_view text) {
    busy_ = true;
    res_ = {};
    res_.version(11);
    res_.result(static_cast<unsigned>(status));
    res_.set(http::field::content_type, "text/plain; charset=utf-8");
    res_.body() = std::string(text);
    res_.keep_alive(false);
    res_.prepare_payload();
    write_response(true, true);
  }

  void write_response(bool close_after, bool drain) {
    set_deadline(core_.config.request_timeout);
    http::async_write(
        stream_, res_,
        [self = this->shared_from_this(), close_after, drain](beast::error_code ec, std::size_t) {
          self->busy_ = false;
          if (ec) return self->close_now();
          if (close_after || self->core_.stopping) return self->close_gracefully(drain);
          self->wait_request();
        });
  }

  void close_gracefully(bool drain) {
    if constexpr (kTls) {
      // Sends close_notify and waits (bounded) for the peer's.
      (void)drain;
      set_deadline(std::min<std::chrono::milliseconds>(core_.config.request_timeout,
                                                       std::chrono::milliseconds(kLingerTime)));
      stream_.async_shutdown(
          [self = this->shared_from_this()](beast::error_code) { self->close_now(); });
    } else {
      beast::error_code ec;
      socket().shutdown(tcp::socket::shutdown_send, ec);
      if (!drain || ec) return close_now();
      set_deadline(kLingerTime);
      drain_some(0);
    }
  }

  void drain_some(std::size_t drained) {
    if (drained > kLingerBytes) return close_now();
    stream_.async_read_some(asio::buffer(discard_), [self = this->shared_from_this(), drained](
                                                        beast::error_code ec, std::size_t n) {
      if (ec) return self->close_now();
      self->drain_some(drained + n);
    });
  }

  void close_now() {
    closed_ = true;
    beast::error_code ec;
    socket().close(ec);
    watchdog_.cancel();
  }

  ServerCore& core_;
  Stream stream_;
  std::uint64_t id_ = 0;
  std::string remote_address_;
  std::string address_key_;   // counted in core_.per_address_ while the connection lives
  std::uint64_t served_ = 0;  // requests handled on this connection
  asio::steady_timer watchdog_;
  Clock::time_point deadline_;
  Clock::time_point armed_at_;
  bool watchdog_armed_ = false;
  bool closed_ = false;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  bool busy_ = false;  // a request is being handled or its response written
  std::array<char, 4096> discard_{};
};

}  // namespace

std::uint64_t ServerCore::add_session(const std::shared_ptr<Session>& session) {
  std::lock_guard lock(mutex_);
  const auto id = ++next_id_;
  sessions_.emplace(id, session);
  return id;
}

void ServerCore::remove_session(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  sessions_.erase(id);
}

void ServerCore::shutdown_sessions() {
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard lock(mutex_);
    live.reserve(sessions_.size());
    for (const auto& [id, weak] : sessions_) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
  }
  for (const auto& s : live) s->shutdown();
}

bool ServerCore::acquire_address(const std::string& key) {
  std::lock_guard lock(address_mutex_);
  auto& n = per_address_[key];
  if (n >= config.max_connections_per_address) {
    if (n == 0) per_address_.erase(key);
    return false;
  }
  ++n;
  return true;
}

void ServerCore::release_address(const std::string& key) {
  std::lock_guard lock(address_mutex_);
  auto it = per_address_.find(key);
  if (it == per_address_.end()) return;
  if (--it->second == 0) per_address_.erase(it);  // the map holds live addresses only
}

std::string address_key(const asio::ip::address& address) {
  if (address.is_v4()) return address.to_string();
  auto v6 = address.to_v6();
  if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_string();
  // One host usually has a whole /64: count the prefix, not each address in it.
  auto bytes = v6.to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return asio::ip::address_v6(bytes).to_string() + "/64";
}

void start_session(ServerCore& core, asio::ssl::context* tls, tcp::socket socket,
                   std::string address_key) {
  if (tls != nullptr) {
    std::make_shared<Connection<TlsStream>>(core, *tls, std::move(socket), std::move(address_key))
        ->run();
  } else {
    std::make_shared<Connection<PlainStream>>(core, std::move(socket), std::move(address_key))
        ->run();
  }
}

}  // namespace coffer::net::detail
