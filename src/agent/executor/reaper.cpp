#include "agent/executor/reaper.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <deque>
#include <fstream>
#include <thread>
#include <unordered_set>

namespace coffer::agent {
namespace {

struct Registry {
  std::shared_mutex spawn_lock;  // shared: spawners; exclusive: the reaper's scan
  std::mutex mu;
  std::condition_variable cv;
  std::unordered_set<pid_t> owned;
  std::deque<pid_t> reaped;  // the last orphans reaped (for tests)
};

Registry& registry() {
  static auto* r = new Registry();  // never destroyed: the reaper thread outlives statics
  return *r;
}

int sigchld_pipe[2] = {-1, -1};

void on_sigchld(int /*signo*/) {
  int saved = errno;
  char c = 0;
  (void)!write(sigchld_pipe[1], &c, 1);  // non-blocking; a full pipe already means "scan"
  errno = saved;
}

std::vector<pid_t> children_of_self() {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream in(task.path() / "children");
    pid_t p = 0;
    while (in >> p) out.push_back(p);
  }
  return out;
}

// One pass: reaps every exited child nobody registered.
void reap_unknown() {
  auto& r = registry();
  std::unique_lock section(r.spawn_lock);  // no spawn between fork and register_child
  for (pid_t p : children_of_self()) {
    {
      std::lock_guard lock(r.mu);
      if (r.owned.contains(p)) continue;
    }
    siginfo_t si{};
    if (waitid(P_PID, static_cast<id_t>(p), &si, WEXITED | WNOHANG) == 0 && si.si_pid == p) {
      std::lock_guard lock(r.mu);
      r.reaped.push_back(p);
      if (r.reaped.size() > 256) r.reaped.pop_front();
      r.cv.notify_all();
    }
  }
}

void reaper_loop() {
  for (;;) {
    reap_unknown();
    pollfd pfd{.fd = sigchld_pipe[0], .events = POLLIN, .revents = 0};
    if (poll(&pfd, 1, -1) < 0 && errno != EINTR) return;
    char buf[64];
    while (read(sigchld_pipe[0], buf, sizeof buf) > 0) {
    }
  }
}

}  // namespace

SpawnSection spawn_section() { return SpawnSection(registry().spawn_lock); }

void register_child(pid_t pid) {
  std::lock_guard lock(registry().mu);
  registry().owned.insert(pid);
}

void unregister_child(pid_t pid) {
  std::lock_guard lock(registry().mu);
  registry().owned.erase(pid);
}

Result<int> open_pidfd(pid_t pid) {
  long fd = syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) {
    return make_error("io_error",
                      "pidfd_open(" + std::to_string(pid) + "): " + std::strerror(errno));
  }
  return static_cast<int>(fd);
}

Child::~Child() { reset(); }

Child::Child(Child&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), pidfd_(std::exchange(other.pidfd_, -1)) {}

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    reset();
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::exchange(other.pidfd_, -1);
  }
  return *this;
}

void Child::reset() {
  if (pidfd_ >= 0) {
    (void)syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0);
    (void)wait();
  }
}

Result<int> Child::wait() {
  if (pidfd_ < 0) return make_error("process_not_found", "the child was already waited for");
  siginfo_t si{};
  int rc = 0;
  do {
    rc = waitid(P_PIDFD, static_cast<id_t>(pidfd_), &si, WEXITED);
  } while (rc < 0 && errno == EINTR);
  int err = errno;
  close(pidfd_);
  pidfd_ = -1;
  unregister_child(pid_);
  if (rc < 0) return make_error("io_error", std::string("waitid: ") + std::strerror(err));
  if (si.si_code == CLD_EXITED) return W_EXITCODE(si.si_status, 0);
  return W_EXITCODE(0, si.si_status) | (si.si_code == CLD_DUMPED ? WCOREFLAG : 0);
}

Result<Child> spawn(const SpawnOptions& options, bool in_section) {
  if (options.argv.empty() || !options.argv[0].starts_with('/')) {
    return make_error("bad_spec", "spawn needs an absolute program path");
  }
  // Everything the child needs is prepared before fork: after fork in a threaded process only
  // async-signal-safe calls are allowed.
  std::vector<char*> argv;
  argv.reserve(options.argv.size() + 1);
  for (const auto& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::string cwd = options.cwd.string();
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0) return make_error("io_error", std::string("/dev/null: ") + std::strerror(errno));
  int fds[3] = {options.stdin_fd < 0 ? devnull : options.stdin_fd,
                options.stdout_fd < 0 ? devnull : options.stdout_fd,
                options.stderr_fd < 0 ? devnull : options.stderr_fd};
  bool hide = options.hide_unified_cgroup;

  SpawnSection section;
  if (!in_section) section = spawn_section();
  pid_t pid = fork();
  if (pid == 0) {
    // Move the three descriptors above 2 first so that dup2 cannot clobber one with another.
    int moved[3];
    for (int i = 0; i < 3; ++i) moved[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
    for (int i = 0; i < 3; ++i) {
      if (moved[i] < 0 || dup2(moved[i], i) < 0) _exit(127);
    }
    syscall(SYS_close_range, 3, ~0U, 0);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    signal(SIGPIPE, SIG_DFL);
    if (hide) {
      if (unshare(CLONE_NEWNS) != 0) _exit(126);
      if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(126);
      if (umount2("/sys/fs/cgroup/unified", MNT_DETACH) != 0) _exit(126);
    }
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(127);
    execve(argv[0], argv.data(), environ);
    _exit(127);
  }
  int fork_errno = errno;
  close(devnull);
  if (pid < 0) return make_error("io_error", std::string("fork: ") + std::strerror(fork_errno));
  register_child(pid);
  auto pidfd = open_pidfd(pid);
  if (!pidfd) {
    // Cannot happen for our own unreaped child; reap it the old way rather than leak it.
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    unregister_child(pid);
    return std::unexpected(pidfd.error());
  }
  return Child(pid, *pidfd);
}

void install_child_reaper() {
  static std::once_flag once;
  std::call_once(once, [] {
    (void)prctl(PR_SET_CHILD_SUBREAPER, 1);
    if (pipe2(sigchld_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return;
    struct sigaction sa {};
    sa.sa_handler = on_sigchld;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, nullptr);
    std::thread(reaper_loop).detach();
  });
}

bool wait_until_reaped(pid_t pid, std::chrono::milliseconds timeout) {
  auto& r = registry();
  std::unique_lock lock(r.mu);
  return r.cv.wait_for(lock, timeout, [&] {
    return std::find(r.reaped.begin(), r.reaped.end(), pid) != r.reaped.end();
  });
}

}  // namespace coffer::agent
