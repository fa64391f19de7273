// A ttrpc client (containerd's ttrpc wire format; framing in frame.h): unary calls over one
// connection, any number in flight from any number of threads.
//
//   auto client = ttrpc::Client::connect_unix("/run/coffer/agent.sock");
//   CallResult r = (*client)->call("coffer.agent.v1.Agent", "Health", request.SerializeAsString(),
//                                  std::chrono::seconds(5));
//
// A call with a timeout sends it as the request's timeout_nano and returns DEADLINE_EXCEEDED when
// no answer came in time (a late answer is dropped). When the connection ends, every pending call
// returns UNAVAILABLE.
#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/error.h"
#include "net/ttrpc/frame.h"

namespace coffer::net::ttrpc {

class FrameStream;

class Client {
 public:
  // Connects to a Unix socket ("ttrpc_unavailable" when nothing listens there).
  static Result<std::unique_ptr<Client>> connect_unix(const std::filesystem::path& path);
  // Uses an open byte stream (a connected socket, a character device); takes ownership of `fd`.
  explicit Client(int fd, std::uint32_t max_message_bytes = kMaxMessageBytes);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // One unary call. timeout 0 (or negative): no deadline. A timeout past the steady clock's
  // range (nanoseconds::max()) is sent as is and waited for without a deadline.
  CallResult call(std::string_view service, std::string_view method, std::string_view request,
                  std::chrono::nanoseconds timeout = std::chrono::nanoseconds::zero(),
                  const std::vector<std::pair<std::string, std::string>>& metadata = {});
  // Ends the connection; pending and later calls return UNAVAILABLE.
  void close();

 private:
  struct Pending {
    std::optional<CallResult> result;
  };
  void read_loop();
  void fail_all(const RpcStatus& status);

  std::unique_ptr<FrameStream> stream_;
  std::uint32_t max_message_bytes_;
  std::mutex mu_;  // guards next_id_, pending_, closed_
  std::condition_variable cv_;
  std::uint32_t next_id_ = 1;
  std::map<std::uint32_t, std::shared_ptr<Pending>> pending_;
  std::optional<RpcStatus> closed_;
  std::thread reader_;
};

}  // namespace coffer::net::ttrpc
