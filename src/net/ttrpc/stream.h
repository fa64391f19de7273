// One ttrpc byte stream over a file descriptor: a connected Unix socket or a character device
// (a virtio-serial port, a pty in tests) — anything that is one bidirectional byte stream.
// Reads decode whole frames; writes are whole frames, serialised between threads.
#pragma once

#include <atomic>
#include <mutex>
#include <string_view>
#include <vector>

#include "net/ttrpc/frame.h"

namespace coffer::net::ttrpc {

class FrameStream {
 public:
  // Takes ownership of `fd` (closed by the destructor).
  explicit FrameStream(int fd, std::uint32_t max_message_bytes = kMaxMessageBytes);
  ~FrameStream();
  FrameStream(const FrameStream&) = delete;
  FrameStream& operator=(const FrameStream&) = delete;

  // Blocks until at least one whole frame has arrived (appended to `out`); false when the stream
  // ended (EOF, error, or shutdown()). One reader at a time.
  bool read_frames(std::vector<Frame>& out);
  // Writes one frame; concurrent writers never interleave. False once the stream is shut down
  // or broken.
  bool write_frame(std::uint32_t stream_id, FrameType type, std::string_view payload);
  // Wakes a blocked reader and writers; every later call returns false. Idempotent.
  void shutdown();
  [[nodiscard]] bool ended_cleanly() const { return decoder_.idle(); }

 private:
  bool wait(short events);  // poll fd + wake pipe; false when shut down or the fd failed

  int fd_;
  bool is_socket_;
  int wake_[2] = {-1, -1};
  std::atomic<bool> shut_{false};
  std::mutex write_mu_;
  FrameDecoder decoder_;
};

}  // namespace coffer::net::ttrpc
