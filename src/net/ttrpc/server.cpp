#include "net/ttrpc/server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <type_traits>

#include "core/log.h"
#include "net/ttrpc/stream.h"
#include "net/ttrpc/tracked_threads.h"
#include "net/unix_socket.h"
#include "ttrpc/ttrpc.pb.h"

namespace coffer::net::ttrpc {
namespace {

using Clock = std::chrono::steady_clock;

std::string method_key(std::string_view service, std::string_view method) {
  std::string key(service);
  key += '/';
  key += method;
  return key;
}

std::string encode_response(const CallResult& result) {
  ::ttrpc::Response response;
  auto* status = response.mutable_status();
  if (result) {
    status->set_code(static_cast<std::int32_t>(Code::kOk));
    response.set_payload(*result);
  } else {
    status->set_code(static_cast<std::int32_t>(result.error().code));
    status->set_message(result.error().message);
  }
  return response.SerializeAsString();
}

// A request's timeout_nano as containerd's Go server reads it: 0 is no deadline, a negative value
// a deadline already passed (Go clients send one when their context expired just before the
// send; handle() answers those at once). A timeout past the clock's range (Go clients send 2^63-1
// for a far deadline) is no deadline rather than an overflow.
std::optional<Clock::time_point> deadline_of(std::int64_t timeout_nano, Clock::time_point now) {
  static_assert(std::is_same_v<Clock::duration, std::chrono::nanoseconds>);
  if (timeout_nano == 0) return std::nullopt;
  if (timeout_nano < 0) return now;
  if (std::chrono::nanoseconds(timeout_nano) > Clock::time_point::max() - now) return std::nullopt;
  return now + std::chrono::nanoseconds(timeout_nano);
}

}  // namespace

// One connection: its stream, its calls in flight, and a watchdog enforcing their deadlines.
class Server::Connection {
 public:
  Connection(int fd, const ServerConfig& config,
             const std::map<std::string, Method, std::less<>>& methods)
      : stream_(fd, config.max_message_bytes), config_(config), methods_(methods) {}

  void run() {
    std::thread watchdog([this] { watch_deadlines(); });
    std::vector<Frame> frames;
    while (stream_.read_frames(frames)) {
      for (auto& frame : frames) handle(std::move(frame));
      frames.clear();
      workers_.join_finished();
    }
    if (!stream_.ended_cleanly()) spdlog::debug("ttrpc: connection ended inside a frame");
    // the client is gone (or the server stops): every call still running is asked to stop
    stream_.shutdown();
    {
      std::lock_guard lock(mu_);
      ending_ = true;
      for (auto& [id, call] : calls_) call->stop.request_stop();
    }
    cv_.notify_all();
    watchdog.join();
    workers_.join_all();
  }

  void shutdown() { stream_.shutdown(); }

 private:
  struct Call {
    std::stop_source stop;
    std::optional<Clock::time_point> deadline;
    std::atomic<bool> answered{false};
  };
  void answer(std::uint32_t id, const CallResult& result) {
    (void)stream_.write_frame(id, FrameType::kResponse, encode_response(result));
  }

  void handle(Frame frame) {
    const std::uint32_t id = frame.header.stream_id;
    if (frame.header.type != static_cast<std::uint8_t>(FrameType::kRequest)) {
      // responses and stream data are not for a unary server: skip them
      spdlog::debug("ttrpc: ignoring a frame of type {} on stream {}", frame.header.type, id);
      return;
    }
    if (frame.oversized) {
      answer(id, status_error(Code::kResourceExhausted,
                              "message of " + std::to_string(frame.header.length) +
                                  " bytes exceeds the limit of " +
                                  std::to_string(config_.max_message_bytes)));
      return;
    }
    if (id % 2 == 0) {
      answer(id, status_error(Code::kInvalidArgument, "stream ids of client requests are odd"));
      return;
    }
    ::ttrpc::Request request;
    if (!request.ParseFromString(frame.payload)) {
      answer(id, status_error(Code::kInvalidArgument, "the frame is not a ttrpc.Request"));
      return;
    }
    auto method = methods_.find(method_key(request.service(), request.method()));
    if (method == methods_.end()) {
      answer(id, status_error(Code::kUnimplemented,
                              "no method " + printable_excerpt(request.service(), 128) + "/" +
                                  printable_excerpt(request.method(), 128)));
      return;
    }
    if (request.timeout_nano() < 0) {
      // the client's deadline passed before the request left it: it has given up, nothing runs
      answer(id, status_error(Code::kDeadlineExceeded, "the call's deadline passed"));
      return;
    }
    auto call = std::make_shared<Call>();
    call->deadline = deadline_of(request.timeout_nano(), Clock::now());
    {
      std::lock_guard lock(mu_);
      if (calls_.contains(id)) {
        answer(id, status_error(Code::kInvalidArgument,
                                "stream id " + std::to_string(id) + " is already in flight"));
        return;
      }
      if (calls_.size() >= config_.max_in_flight) {
        answer(id, status_error(Code::kResourceExhausted,
                                "more than " + std::to_string(config_.max_in_flight) +
                                    " calls in flight on this connection"));
        return;
      }
      calls_.emplace(id, call);
    }
    cv_.notify_all();  // a new deadline for the watchdog

    auto ctx = std::make_shared<CallContext>();
    ctx->service = request.service();
    ctx->method = request.method();
    for (const auto& kv : request.metadata()) ctx->metadata.emplace_back(kv.key(), kv.value());
    ctx->deadline = call->deadline;
    ctx->stop = call->stop.get_token();
    workers_.start([this, id, call, ctx, handler = &method->second,
                    payload = std::move(*request.mutable_payload())] {
      CallResult result = (*handler)(*ctx, payload);
      const bool first = !call->answered.exchange(true);
      // The id is free before the answer leaves: a peer may reuse it as soon as it reads it.
      {
        std::lock_guard lock(mu_);
        calls_.erase(id);
      }
      if (first) answer(id, result);
    });
  }

  // Answers DEADLINE_EXCEEDED for every call whose deadline passed and asks it to stop.
  void watch_deadlines() {
    std::unique_lock lock(mu_);
    while (!ending_) {
      std::optional<Clock::time_point> next;
      std::vector<std::uint32_t> expired;
      const auto now = Clock::now();
      for (auto& [id, call] : calls_) {
        if (!call->deadline || call->answered) continue;
        if (*call->deadline <= now) {
          call->stop.request_stop();
          if (!call->answered.exchange(true)) expired.push_back(id);
        } else if (!next || *call->deadline < *next) {
          next = call->deadline;
        }
      }
      if (!expired.empty()) {
        // a slow reader on the other end must not hold the lock that new requests need
        lock.unlock();
        for (auto id : expired) {
          answer(id, status_error(Code::kDeadlineExceeded, "the call's deadline passed"));
        }
        lock.lock();
        continue;
      }
      if (next) {
        cv_.wait_until(lock, *next);
      } else {
        cv_.wait(lock);
      }
    }
  }

  FrameStream stream_;
  const ServerConfig config_;
  const std::map<std::string, Method, std::less<>>& methods_;
  std::mutex mu_;  // guards calls_, ending_
  std::condition_variable cv_;
  std::map<std::uint32_t, std::shared_ptr<Call>> calls_;
  bool ending_ = false;
  TrackedThreads workers_;  // one per call
};

Server::Server(ServerConfig config) : config_(config) {}

Server::~Server() { stop(); }

void Server::add_method(std::string_view service, std::string_view method, Method handler) {
  methods_.insert_or_assign(method_key(service, method), std::move(handler));
}

coffer::Status Server::listen_unix(const std::filesystem::path& path) {
  const sockaddr_un addr = COFFER_TRY(unix_address(path));
  const std::string p = path.string();
  struct stat st {};
  if (::lstat(p.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return make_error("socket_path_in_use", p + " exists and is not a socket; not replacing it");
    }
    ::unlink(p.c_str());
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error("socket_failed", std::string("socket: ") + std::strerror(errno));
  // the socket file is created 0600: only the owner (the runtime that launched us) may connect
  const mode_t old_mask = ::umask(0177);
  const int bound = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  ::umask(old_mask);
  if (bound != 0 || ::listen(fd, 16) != 0) {
    const int err = errno;
    ::close(fd);
    return make_error("listen_failed", "cannot listen on " + p + ": " + std::strerror(err));
  }
  if (::pipe2(wake_, O_CLOEXEC) != 0) {
    ::close(fd);
    return make_error("listen_failed", std::string("pipe: ") + std::strerror(errno));
  }
  listen_fd_ = fd;
  acceptor_ = std::thread([this] { accept_loop(); });
  return ok();
}

void Server::accept_loop() {
  while (true) {
    std::array<pollfd, 2> fds{pollfd{listen_fd_, POLLIN, 0}, pollfd{wake_[0], POLLIN, 0}};
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if ((fds[1].revents & POLLIN) != 0) return;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    connection_threads_.join_finished();
    std::lock_guard lock(mu_);
    std::erase_if(connections_, [](const auto& c) { return c.expired(); });
    if (stopping_ || connection_threads_.size() >= config_.max_connections) {
      spdlog::warn("ttrpc: refusing a connection ({} open)", connection_threads_.size());
      ::close(fd);
      continue;
    }
    auto conn = std::make_shared<Connection>(fd, config_, methods_);
    connections_.push_back(conn);
    connection_threads_.start([conn] { conn->run(); });
  }
}

void Server::serve_fd(int fd) {
  auto conn = std::make_shared<Connection>(fd, config_, methods_);
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;  // conn's destructor closes fd
    connections_.push_back(conn);
  }
  conn->run();
}

void Server::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && listen_fd_ < 0) return;
    stopping_ = true;
    for (auto& weak : connections_) {
      if (auto conn = weak.lock()) conn->shutdown();
    }
  }
  if (acceptor_.joinable()) {
    const char byte = 1;
    (void)::write(wake_[1], &byte, 1);
    acceptor_.join();
  }
  connection_threads_.join_all();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
  for (int& fd : wake_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
}

}  // namespace coffer::net::ttrpc
