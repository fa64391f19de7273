#include "net/ttrpc/stream.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>

namespace coffer::net::ttrpc {

FrameStream::FrameStream(int fd, std::uint32_t max_message_bytes)
    : fd_(fd), is_socket_(false), decoder_(max_message_bytes) {
  struct stat st {};
  is_socket_ = ::fstat(fd_, &st) == 0 && S_ISSOCK(st.st_mode);
  // non-blocking: poll() decides when to read or write, so shutdown() can always interrupt
  const int flags = ::fcntl(fd_, F_GETFL);
  if (flags >= 0) (void)::fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
    // without a wake pipe shutdown() cannot interrupt poll(): treat the stream as broken
    wake_[0] = wake_[1] = -1;
    shut_ = true;
  }
}

FrameStream::~FrameStream() {
  shutdown();
  ::close(fd_);
  if (wake_[0] >= 0) ::close(wake_[0]);
  if (wake_[1] >= 0) ::close(wake_[1]);
}

void FrameStream::shutdown() {
  if (shut_.exchange(true)) return;
  if (wake_[1] >= 0) {
    const char byte = 1;
    (void)::write(wake_[1], &byte, 1);
  }
  // a socket peer sees EOF now rather than when the owner destroys the stream
  if (is_socket_) ::shutdown(fd_, SHUT_RDWR);
}

bool FrameStream::wait(short events) {
  while (!shut_) {
    std::array<pollfd, 2> fds{pollfd{fd_, events, 0}, pollfd{wake_[0], POLLIN, 0}};
    const int n = ::poll(fds.data(), fds.size(), -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (fds[1].revents & POLLIN) != 0) return false;
    // POLLHUP with data still readable is reported together with POLLIN: read drains it first
    if ((fds[0].revents & (events | POLLHUP | POLLERR)) != 0) return true;
  }
  return false;
}

bool FrameStream::read_frames(std::vector<Frame>& out) {
  std::array<std::uint8_t, 64 * 1024> buffer{};
  const std::size_t before = out.size();
  while (out.size() == before) {
    if (!wait(POLLIN)) return false;
    const ssize_t n = ::read(fd_, buffer.data(), buffer.size());
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return false;  // EOF (peer closed) or error (EIO from a hung-up pty)
    decoder_.feed(ByteView(buffer.data(), static_cast<std::size_t>(n)), out);
  }
  return true;
}

bool FrameStream::write_frame(std::uint32_t stream_id, FrameType type, std::string_view payload) {
  const std::string frame = encode_frame(stream_id, type, payload);
  std::lock_guard lock(write_mu_);
  std::string_view rest = frame;
  while (!rest.empty()) {
    if (!wait(POLLOUT)) return false;
    const ssize_t n = is_socket_ ? ::send(fd_, rest.data(), rest.size(), MSG_NOSIGNAL)
                                 : ::write(fd_, rest.data(), rest.size());
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return false;
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace coffer::net::ttrpc
