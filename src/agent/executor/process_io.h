// One container process (init or exec) seen from the agent: its pidfd, stdin, and its output
// streams pumped into bounded buffers by one thread per process.
//
// The thread polls the output pipes (only those whose buffer has room: a full buffer stops the
// reading, the pipe fills and the writer in the container blocks), the pidfd (exit) and an
// eventfd (a reader made room, or shutdown). The exit status is collected with
// waitid(P_PIDFD) by this thread only: the process was registered with the reaper before it
// could be reaped by anyone else.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>

#include "agent/executor/executor.h"

namespace coffer::agent {

struct ProcessFds {
  pid_t pid = -1;
  int pidfd = -1;
  int stdin_fd = -1;   // write end, -1 without stdin (with a TTY: the master, not owned here)
  int stdout_fd = -1;  // read end (with a TTY: the master)
  int stderr_fd = -1;  // read end, -1 with a TTY
  bool tty = false;
};

class ProcessIo {
 public:
  // `on_exit` runs on the pump thread right after the process is reaped, before waiters see
  // the status (e.g. to read OOM counters from the cgroup); may adjust the status.
  ProcessIo(ProcessFds fds, std::function<void(ExitStatus&)> on_exit);
  ~ProcessIo();  // stops the thread (does not kill the process: kill() first)
  ProcessIo(const ProcessIo&) = delete;
  ProcessIo& operator=(const ProcessIo&) = delete;

  [[nodiscard]] pid_t pid() const { return fds_.pid; }
  [[nodiscard]] bool tty() const { return fds_.tty; }
  [[nodiscard]] std::optional<ExitStatus> exit_status();
  // Status once exited and both streams reached end of stream; "cancelled" on stop.
  Result<ExitStatus> wait(std::stop_token stop);
  // True once exited (without waiting for end of stream), false after `timeout`.
  bool wait_exited(std::chrono::milliseconds timeout);
  // "bad_state" once the process exited.
  Status kill(int signo);
  Result<Bytes> read(OutputStream stream, std::size_t max_bytes, std::stop_token stop);
  Status write_stdin(ByteView data, const std::stop_token& stop);
  Status close_stdin();
  Status resize(std::uint16_t rows, std::uint16_t cols);
  // Stops pumping (the streams count as ended; a wait() still pending fails with
  // "container_not_found"); for remove().
  void shutdown();

 private:
  struct Buffer {
    std::string data;
    std::size_t offset = 0;
    bool eof = false;
    [[nodiscard]] std::size_t size() const { return data.size() - offset; }
  };
  void run();
  void wake();
  Buffer& buffer(OutputStream s) { return s == OutputStream::kStdout ? out_ : err_; }

  ProcessFds fds_;
  std::function<void(ExitStatus&)> on_exit_;
  int wake_fd_ = -1;
  std::mutex mu_;
  std::condition_variable_any cv_;
  Buffer out_, err_;
  std::optional<ExitStatus> exit_;
  bool stop_ = false;
  std::mutex stdin_mu_;  // serializes writers; separate so a blocked write does not block reads
  bool stdin_closed_ = false;
  std::thread thread_;
};

}  // namespace coffer::agent
