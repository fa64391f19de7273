// A ttrpc server (containerd's ttrpc wire format; framing in frame.h): unary methods registered by
// service and method name, served on a Unix socket or on an already-open byte stream such as a
// virtio-serial character device (one stream, no accept).
//
//   ttrpc::Server server;
//   server.add_method("coffer.agent.v1.Agent", "Health",
//                     [](const ttrpc::CallContext& ctx, std::string_view request) -> CallResult {
//                       return response.SerializeAsString();
//                     });
//   server.listen_unix("/run/coffer/agent.sock");  // or: server.serve_fd(open("/dev/vport0p1"))
//
// Model: each connection has a reader thread; every request runs on its own thread, so many calls
// are in flight on one connection and their responses go back in completion order. Limits: at
// most max_in_flight calls per connection (more are answered RESOURCE_EXHAUSTED at once), frames
// over max_message_bytes skipped and answered RESOURCE_EXHAUSTED, at most max_connections.
// Protocol errors in a request (not a ttrpc.Request, an even stream id, an id already in flight)
// are answered INVALID_ARGUMENT; unknown methods UNIMPLEMENTED.
//
// Deadlines: a request's timeout_nano sets the call's deadline (0: none; past the clock's range:
// none; negative: already passed, answered DEADLINE_EXCEEDED without running the method). When it
// passes the server answers DEADLINE_EXCEEDED and requests stop on the call's stop_token;
// whatever the handler returns later is dropped. When the client goes away, every call of that
// connection is asked to stop.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/error.h"
#include "net/ttrpc/frame.h"
#include "net/ttrpc/tracked_threads.h"

namespace coffer::net::ttrpc {

struct CallContext {
  std::string service;
  std::string method;
  std::vector<std::pair<std::string, std::string>> metadata;
  std::optional<std::chrono::steady_clock::time_point> deadline;
  std::stop_token stop;  // requested at the deadline, or when the connection ends
};

// A method: the request message's bytes in, the response message's bytes or a status out.
// Called on its own thread; must be thread-safe.
using Method = std::function<CallResult(const CallContext&, std::string_view request)>;

struct ServerConfig {
  std::size_t max_connections = 16;
  std::size_t max_in_flight = 64;  // per connection
  std::uint32_t max_message_bytes = kMaxMessageBytes;
};

class Server {
 public:
  explicit Server(ServerConfig config = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Registers a method; call before serving.
  void add_method(std::string_view service, std::string_view method, Method handler);

  // Binds `path` (mode 0600; a stale socket file is replaced, any other file is refused) and
  // serves every accepted connection on its own threads, until stop().
  coffer::Status listen_unix(const std::filesystem::path& path);
  // Serves one open byte stream on the calling thread until it ends or stop(); takes ownership
  // of `fd`. For a character device, the caller reopens it to serve the next host connection.
  void serve_fd(int fd);
  // Stops accepting, ends every connection, and waits for their calls to return.
  void stop();

 private:
  class Connection;
  void accept_loop();

  ServerConfig config_;
  std::map<std::string, Method, std::less<>> methods_;  // "service/method"
  std::mutex mu_;                                       // guards the members below
  bool stopping_ = false;
  std::vector<std::weak_ptr<Connection>> connections_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::thread acceptor_;
  TrackedThreads connection_threads_;  // one per accepted connection
};

}  // namespace coffer::net::ttrpc
