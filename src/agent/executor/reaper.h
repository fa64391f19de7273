// Child processes of the agent: spawning with a pidfd, waiting for exactly one's own children,
// and reaping orphans (the agent is PID 1 in a VM, or a child subreaper in a process enclave).
//
// The problem: a reaper that calls waitpid(-1) steals the exit status of processes that some
// other part of the agent waits for (crun, a container's init). So the reaper here reaps only
// children that nobody registered, and everyone who waits for a child registers it first:
//   - spawn() forks inside a "spawn section" (a shared lock the reaper's scan takes exclusively)
//     and registers the pid before the section ends, so the reaper never sees it unregistered;
//   - processes that become our children by re-parenting (a container's init once `crun create`
//     exits, `crun exec --detach`'s process) are registered by the code that asked for them while
//     it still holds its spawn section, i.e. before the reaper can look at them;
//   - owners wait with waitid(P_PIDFD), never with waitpid(-1), and unregister after reaping.
// Other code in the process that forks and waits for its own children must use spawn() (or a
// SpawnSection + register_child) once install_child_reaper() ran.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "core/error.h"

namespace coffer::agent {

// Held while forking and registering; the reaper's scan waits for all sections to end.
using SpawnSection = std::shared_lock<std::shared_mutex>;
SpawnSection spawn_section();
void register_child(pid_t pid);
void unregister_child(pid_t pid);

// pidfd_open(2); "io_error" on failure.
Result<int> open_pidfd(pid_t pid);

// An owned child: registered until waited for; killed (SIGKILL) and reaped if never waited.
class Child {
 public:
  Child() = default;
  Child(pid_t pid, int pidfd) : pid_(pid), pidfd_(pidfd) {}
  ~Child();
  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] int pidfd() const { return pidfd_; }
  // Blocks until the child exits, reaps it and unregisters it. The raw wait status
  // (WIFEXITED/WEXITSTATUS...).
  Result<int> wait();

 private:
  void reset();
  pid_t pid_ = -1;
  int pidfd_ = -1;
};

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0]: an absolute path
  std::filesystem::path cwd;      // empty: unchanged
  int stdin_fd = -1;              // -1: /dev/null
  int stdout_fd = -1;
  int stderr_fd = -1;
  // In a private mount namespace where /sys/fs/cgroup/unified is unmounted (see crun_executor).
  bool hide_unified_cgroup = false;
};
// fork + execve with the given stdio; the child is registered and has a pidfd. The child's
// other descriptors are closed. "io_error" if fork fails; an exec failure is exit status 127.
// `in_section`: the caller already holds a spawn_section() (shared locks do not nest safely).
Result<Child> spawn(const SpawnOptions& options, bool in_section = false);

// Makes this process a child subreaper (a no-op for PID 1) and starts a thread that reaps every
// child that is not registered, woken by SIGCHLD (a handler that writes to a pipe; SIGCHLD must
// not be set to SIG_IGN elsewhere). Idempotent.
void install_child_reaper();

// For tests: true once the reaper has reaped `pid` (an orphan), false after `timeout`.
bool wait_until_reaped(pid_t pid, std::chrono::milliseconds timeout);

}  // namespace coffer::agent
