#include "net/ttrpc/client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "net/ttrpc/stream.h"
#include "net/unix_socket.h"
#include "ttrpc/ttrpc.pb.h"

namespace coffer::net::ttrpc {

Result<std::unique_ptr<Client>> Client::connect_unix(const std::filesystem::path& path) {
  const sockaddr_un addr = COFFER_TRY(unix_address(path));
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return make_error("ttrpc_unavailable", std::string("socket: ") + std::strerror(errno));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    ::close(fd);
    return make_error("ttrpc_unavailable", "cannot connect to " + path.string() + ": " +
                                               std::strerror(err) +
                                               " (is the agent running, and is this its socket?)");
  }
  return std::make_unique<Client>(fd);
}

Client::Client(int fd, std::uint32_t max_message_bytes)
    : stream_(std::make_unique<FrameStream>(fd, max_message_bytes)),
      max_message_bytes_(max_message_bytes) {
  reader_ = std::thread([this] { read_loop(); });
}

Client::~Client() {
  close();
  reader_.join();
}

void Client::close() {
  stream_->shutdown();
  fail_all(RpcStatus{Code::kUnavailable, "the client closed the connection"});
}

void Client::fail_all(const RpcStatus& status) {
  {
    std::lock_guard lock(mu_);
    if (!closed_) closed_ = status;
    for (auto& [id, pending] : pending_) {
      if (!pending->result) pending->result = std::unexpected(status);
    }
    pending_.clear();
  }
  cv_.notify_all();
}

void Client::read_loop() {
  std::vector<Frame> frames;
  while (stream_->read_frames(frames)) {
    for (auto& frame : frames) {
      if (frame.header.type != static_cast<std::uint8_t>(FrameType::kResponse)) continue;
      CallResult result;
      ::ttrpc::Response response;
      if (frame.oversized) {
        result =
            status_error(Code::kResourceExhausted,
                         "response of " + std::to_string(frame.header.length) +
                             " bytes exceeds the limit of " + std::to_string(max_message_bytes_));
      } else if (!response.ParseFromString(frame.payload)) {
        result =
            status_error(Code::kInternal, "the server sent a frame that is not a ttrpc.Response");
      } else if (response.has_status() && response.status().code() != 0) {
        result =
            status_error(static_cast<Code>(response.status().code()), response.status().message());
      } else {
        result = std::move(*response.mutable_payload());
      }
      std::lock_guard lock(mu_);
      // an answer for a call that timed out (or never existed) is dropped
      if (auto it = pending_.find(frame.header.stream_id); it != pending_.end()) {
        it->second->result = std::move(result);
        pending_.erase(it);
      }
    }
    frames.clear();
    cv_.notify_all();
  }
  fail_all(RpcStatus{Code::kUnavailable, "the connection to the ttrpc server ended"});
}

CallResult Client::call(std::string_view service, std::string_view method, std::string_view request,
                        std::chrono::nanoseconds timeout,
                        const std::vector<std::pair<std::string, std::string>>& metadata) {
  ::ttrpc::Request envelope;
  envelope.set_service(std::string(service));
  envelope.set_method(std::string(method));
  envelope.set_payload(std::string(request));
  if (timeout.count() > 0) envelope.set_timeout_nano(timeout.count());
  for (const auto& [key, value] : metadata) {
    auto* kv = envelope.add_metadata();
    kv->set_key(key);
    kv->set_value(value);
  }
  const std::string bytes = envelope.SerializeAsString();
  if (bytes.size() > max_message_bytes_) {
    return status_error(Code::kResourceExhausted, "request of " + std::to_string(bytes.size()) +
                                                      " bytes exceeds the limit of " +
                                                      std::to_string(max_message_bytes_));
  }
  // A timeout past the steady clock's range is waited for without a deadline (it is still sent:
  // the server reads one past its own clock's range as no deadline).
  const auto now = std::chrono::steady_clock::now();
  const bool has_deadline =
      timeout.count() > 0 && timeout <= std::chrono::steady_clock::time_point::max() - now;
  const auto deadline = has_deadline ? now + timeout : std::chrono::steady_clock::time_point::max();
  auto pending = std::make_shared<Pending>();
  std::uint32_t id = 0;
  {
    std::lock_guard lock(mu_);
    if (closed_) return std::unexpected(*closed_);
    id = next_id_;
    next_id_ += 2;  // client-initiated streams are odd
    pending_.emplace(id, pending);
  }
  if (!stream_->write_frame(id, FrameType::kRequest, bytes)) {
    std::lock_guard lock(mu_);
    pending_.erase(id);
    return status_error(Code::kUnavailable, "cannot send to the ttrpc server");
  }
  std::unique_lock lock(mu_);
  auto answered = [&] { return pending->result.has_value(); };
  if (has_deadline) {
    if (!cv_.wait_until(lock, deadline, answered)) {
      pending_.erase(id);
      return status_error(Code::kDeadlineExceeded,
                          std::string(method) + " got no answer within its deadline");
    }
  } else {
    cv_.wait(lock, answered);
  }
  return std::move(*pending->result);
}

}  // namespace coffer::net::ttrpc
