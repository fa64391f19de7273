#include "agent/executor/process_io.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "agent/executor/reaper.h"

namespace coffer::agent {
namespace {

void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

}  // namespace

ProcessIo::ProcessIo(ProcessFds fds, std::function<void(ExitStatus&)> on_exit)
    : fds_(fds), on_exit_(std::move(on_exit)) {
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  for (int fd : {fds_.stdin_fd, fds_.stdout_fd, fds_.stderr_fd}) {
    if (fd >= 0) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  if (fds_.stderr_fd < 0) err_.eof = true;
  if (fds_.stdout_fd < 0) out_.eof = true;
  if (fds_.stdin_fd < 0) stdin_closed_ = true;
  thread_ = std::thread([this] { run(); });
}

ProcessIo::~ProcessIo() {
  shutdown();
  thread_.join();
  if (!exit_) {
    // Shut down before it exited: the owner killed it; reap so that no zombie is left.
    siginfo_t si{};
    (void)waitid(P_PIDFD, static_cast<id_t>(fds_.pidfd), &si, WEXITED);
    unregister_child(fds_.pid);
  }
  close_fd(fds_.pidfd);
  if (!fds_.tty) close_fd(fds_.stdin_fd);
  close_fd(fds_.stdout_fd);
  close_fd(fds_.stderr_fd);
  close_fd(wake_fd_);
}

void ProcessIo::wake() {
  std::uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

void ProcessIo::shutdown() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    out_.eof = err_.eof = true;
  }
  cv_.notify_all();
  wake();
}

void ProcessIo::run() {
  constexpr std::size_t kChunk = 64 * 1024;
  std::string chunk(kChunk, '\0');
  for (;;) {
    pollfd pfds[4];
    OutputStream which[4] = {};
    nfds_t n = 0;
    pfds[n++] = {.fd = wake_fd_, .events = POLLIN, .revents = 0};
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
      for (OutputStream s : {OutputStream::kStdout, OutputStream::kStderr}) {
        const Buffer& b = buffer(s);
        int fd = s == OutputStream::kStdout ? fds_.stdout_fd : fds_.stderr_fd;
        if (!b.eof && fd >= 0 && b.size() < kOutputBufferBytes) {
          which[n] = s;
          pfds[n++] = {.fd = fd, .events = POLLIN, .revents = 0};
        }
      }
      if (!exit_) {
        which[n] = OutputStream::kStdout;
        pfds[n++] = {.fd = fds_.pidfd, .events = POLLIN, .revents = 0};
      }
      if (exit_ && out_.eof && err_.eof) return;
    }
    if (poll(pfds, n, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (pfds[0].revents != 0) {
      std::uint64_t v = 0;
      (void)!::read(wake_fd_, &v, sizeof v);
    }
    for (nfds_t i = 1; i < n; ++i) {
      if (pfds[i].revents == 0) continue;
      if (pfds[i].fd == fds_.pidfd) {
        siginfo_t si{};
        if (waitid(P_PIDFD, static_cast<id_t>(fds_.pidfd), &si, WEXITED | WNOHANG) != 0 ||
            si.si_pid == 0) {
          continue;
        }
        ExitStatus st;
        if (si.si_code == CLD_EXITED) {
          st.exit_code = si.si_status;
        } else {
          st.signal = si.si_status;
          st.exit_code = 128 + si.si_status;
        }
        // The pidfd stays open (kill() may use it; it then fails with ESRCH).
        unregister_child(fds_.pid);
        if (on_exit_) on_exit_(st);
        {
          std::lock_guard lock(mu_);
          exit_ = st;
        }
        cv_.notify_all();
        continue;
      }
      Buffer& b = buffer(which[i]);
      std::size_t room = 0;
      {
        std::lock_guard lock(mu_);
        room = std::min(kChunk, kOutputBufferBytes - std::min(kOutputBufferBytes, b.size()));
      }
      if (room == 0) continue;
      ssize_t got = ::read(pfds[i].fd, chunk.data(), room);
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      {
        std::lock_guard lock(mu_);
        if (got > 0) {
          if (b.offset > kOutputBufferBytes) {
            b.data.erase(0, b.offset);
            b.offset = 0;
          }
          b.data.append(chunk.data(), static_cast<std::size_t>(got));
        } else {
          // 0: every writer closed the pipe; EIO: the TTY's slave side is gone.
          b.eof = true;
        }
      }
      cv_.notify_all();
    }
  }
}

std::optional<ExitStatus> ProcessIo::exit_status() {
  std::lock_guard lock(mu_);
  return exit_;
}

Result<ExitStatus> ProcessIo::wait(std::stop_token stop) {
  std::unique_lock lock(mu_);
  bool done =
      cv_.wait(lock, std::move(stop), [&] { return (exit_ && out_.eof && err_.eof) || stop_; });
  if (!done) return make_error("cancelled", "wait was cancelled");
  if (!exit_) return make_error("container_not_found", "the container was removed");
  return *exit_;
}

bool ProcessIo::wait_exited(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return exit_.has_value(); });
}

Status ProcessIo::kill(int signo) {
  {
    std::lock_guard lock(mu_);
    if (exit_) return make_error("bad_state", "the process has exited");
  }
  if (syscall(SYS_pidfd_send_signal, fds_.pidfd, signo, nullptr, 0) != 0) {
    if (errno == ESRCH || errno == EBADF) return make_error("bad_state", "the process has exited");
    return make_error("bad_spec", "signal " + std::to_string(signo) + ": " + std::strerror(errno));
  }
  return ok();
}

Result<Bytes> ProcessIo::read(OutputStream stream, std::size_t max_bytes, std::stop_token stop) {
  if (max_bytes == 0) max_bytes = kOutputBufferBytes;
  std::unique_lock lock(mu_);
  Buffer& b = buffer(stream);
  bool ready = cv_.wait(lock, std::move(stop), [&] { return b.size() > 0 || b.eof; });
  if (!ready) return make_error("cancelled", "read was cancelled");
  bool was_full = b.size() >= kOutputBufferBytes;
  std::size_t n = std::min(max_bytes, b.size());
  Bytes out(b.data.begin() + static_cast<std::ptrdiff_t>(b.offset),
            b.data.begin() + static_cast<std::ptrdiff_t>(b.offset + n));
  b.offset += n;
  if (b.offset == b.data.size()) {
    b.data.clear();
    b.offset = 0;
  }
  lock.unlock();
  if (was_full && n > 0) wake();
  return out;
}

Status ProcessIo::write_stdin(ByteView data, const std::stop_token& stop) {
  std::lock_guard guard(stdin_mu_);
  if (stdin_closed_) return make_error("bad_state", "the process has no open stdin");
  int cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (cancel_fd < 0) return make_error("io_error", std::string("eventfd: ") + std::strerror(errno));
  std::stop_callback on_stop(stop, [cancel_fd] {
    std::uint64_t one = 1;
    (void)!::write(cancel_fd, &one, sizeof one);
  });
  Status result = ok();
  std::size_t done = 0;
  while (done < data.size()) {
    pollfd pfds[2] = {{.fd = fds_.stdin_fd, .events = POLLOUT, .revents = 0},
                      {.fd = cancel_fd, .events = POLLIN, .revents = 0}};
    if (poll(pfds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      result = make_error("io_error", std::string("poll: ") + std::strerror(errno));
      break;
    }
    if (pfds[1].revents != 0) {
      result = make_error("cancelled",
                          "stdin write was cancelled after " + std::to_string(done) + " bytes");
      break;
    }
    if (pfds[0].revents & (POLLERR | POLLHUP)) {
      result = make_error("bad_state", "stdin is closed on the process side (it exited?)");
      break;
    }
    ssize_t n = ::write(fds_.stdin_fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      result = errno == EPIPE
                   ? make_error("bad_state", "stdin is closed on the process side (it exited?)")
                   : make_error("io_error", std::string("stdin: ") + std::strerror(errno));
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  close(cancel_fd);
  return result;
}

Status ProcessIo::close_stdin() {
  std::lock_guard guard(stdin_mu_);
  if (stdin_closed_) return make_error("bad_state", "the process has no open stdin");
  stdin_closed_ = true;
  if (fds_.tty) {
    // The master stays open for the output; end of input on a terminal is the VEOF character.
    char eot = 4;
    (void)!::write(fds_.stdin_fd, &eot, 1);
    return ok();
  }
  close_fd(fds_.stdin_fd);
  return ok();
}

Status ProcessIo::resize(std::uint16_t rows, std::uint16_t cols) {
  if (!fds_.tty) return make_error("bad_state", "the process has no TTY");
  winsize ws{.ws_row = rows, .ws_col = cols, .ws_xpixel = 0, .ws_ypixel = 0};
  if (ioctl(fds_.stdout_fd, TIOCSWINSZ, &ws) != 0) {
    return make_error("io_error", std::string("TIOCSWINSZ: ") + std::strerror(errno));
  }
  return ok();
}

}  // namespace coffer::agent
