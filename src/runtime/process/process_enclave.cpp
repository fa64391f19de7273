#include "runtime/process/process_enclave.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/fd.h"
#include "core/file.h"
#include "evidence/sim/measure.h"
#include "evidence/sim/quote_service.h"
#include "evidence/sim/sim_pki.h"
#include "net/ttrpc/client.h"
#include "runtime/process/enclave_image.h"
#include "runtime/process/hardening.h"

namespace coffer::runtime::process {

namespace {

namespace fs = std::filesystem;
namespace sim = evidence::sim;

// Inside the enclave.
constexpr const char* kAgentSocketDir = "/run/coffer-agent";
constexpr const char* kAgentSocket = "/run/coffer-agent/agent.sock";
constexpr const char* kQuoteDir = "/run/coffer-quote";
constexpr const char* kQuoteSocket = "/run/coffer-quote/quote.sock";
constexpr const char* kStateDir = "/var/lib/coffer-agent";
constexpr const char* kStorageDir = "/run/coffer-storage";
constexpr int kStatusFd = 3;  // the app enclave's boot reports "started" / "error ..." here
constexpr std::size_t kMaxStatusLine = 4096;
constexpr const char* kInitDataPath = "/etc/coffer/init-data.toml";
constexpr const char* kHostname = "coffer-enclave";
constexpr std::chrono::seconds kReadyTimeout{30};
constexpr rlim_t kNofile = 65536;

// The steps of the enclave's first process, named in errors.
enum Step : std::uint8_t {
  kStepSync,
  kStepPrivateMounts,
  kStepRootTmpfs,
  kStepDirs,
  kStepProc,
  kStepDev,
  kStepSys,
  kStepTmpfs,
  kStepAgentDir,
  kStepStorage,
  kStepReadOnly,
  kStepPivot,
  kStepHostname,
  kStepLoopback,
  kStepRlimits,
  kStepStdio,
  kStepNoNewPrivs,
  kStepLandlock,
  kStepSeccomp,
  kStepExec,
};
constexpr std::array<const char*, 20> kStepNames = {"synchronising with the launcher",
                                                    "making mounts private",
                                                    "mounting the enclave root",
                                                    "creating directories",
                                                    "mounting /proc",
                                                    "setting up /dev",
                                                    "setting up /sys",
                                                    "mounting tmpfs",
                                                    "binding the agent socket directory",
                                                    "binding the storage directory",
                                                    "making the root read-only",
                                                    "pivot_root",
                                                    "setting the hostname",
                                                    "bringing loopback up",
                                                    "setting rlimits",
                                                    "setting up stdio",
                                                    "PR_SET_NO_NEW_PRIVS",
                                                    "Landlock",
                                                    "seccomp",
                                                    "executing the enclave's entry"};

struct ChildMessage {
  char kind;  // 'A' root mounted, 'B' pivoted, 'E' error
  std::uint8_t step;
  int err;
};

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

// Everything the first process needs, prepared before clone (it must not allocate).
struct ChildPlan {
  int to_child = -1;        // read end
  int from_child = -1;      // write end (close-on-exec: EOF means the exec succeeded)
  int to_child_other = -1;  // the launcher's ends, closed first thing in the child
  int from_child_other = -1;
  int log_fd = -1;
  bool new_netns = false;
  std::string root;               // the mount point on the host, becomes "/"
  std::vector<std::string> dirs;  // under root, created in order
  std::string proc, dev, dev_pts, dev_shm, dev_ptmx, dev_fd, dev_stdin, dev_stdout, dev_stderr, sys,
      sys_fs_cgroup, tmp, run, state, agent_dir_inside, agent_dir_host, quote_dir;
  std::vector<std::pair<std::string, std::string>> dev_binds;  // host node, file under root
  bool bind_agent_dir = true;  // the app role binds the agent enclave's directory, if given
  std::string storage_host;    // empty: no storage
  std::string storage_inside;  // under root
  int stdin_fd = -1;           // app role: the workload's stdio (-1: /dev/null, the log)
  int stdout_fd = -1;
  int stderr_fd = -1;
  int status_fd = -1;  // app role: the status pipe's write end, becomes fd 3
  std::string agent;
  std::vector<std::string> argv_storage;
  std::vector<char*> argv;
  std::vector<char*> envp;
  std::string env_path = "PATH=/usr/bin:/bin";
  sock_fprog seccomp{};
  bool landlock = false;
};

[[noreturn]] void child_fail(const ChildPlan& p, Step step) {
  const ChildMessage m{'E', step, errno};
  (void)!::write(p.from_child, &m, sizeof m);
  ::_exit(127);
}

bool child_wait_for(const ChildPlan& p, char expected) {
  char c = 0;
  for (;;) {
    const ssize_t n = ::read(p.to_child, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    return n == 1 && c == expected;
  }
}

void child_send(const ChildPlan& p, char kind) {
  const ChildMessage m{kind, 0, 0};
  (void)!::write(p.from_child, &m, sizeof m);
}

int tmpfs(const std::string& at, unsigned long flags, const char* data) {
  return ::mount("tmpfs", at.c_str(), "tmpfs", flags, data);
}

// The enclave's first process: runs in the new namespaces, only syscalls until execve.
[[noreturn]] void child_main(const ChildPlan& p) {
  ::close(p.to_child_other);
  ::close(p.from_child_other);
  // Dies with the launcher; if the launcher died before this line, the read below sees EOF.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) child_fail(p, kStepSync);
  if (!child_wait_for(p, 'M')) ::_exit(126);

  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    child_fail(p, kStepPrivateMounts);
  }
  // Its source names the run directory: the enclave's mounts can be found (tests, operators).
  if (::mount(p.root.c_str(), p.root.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0) {
    child_fail(p, kStepRootTmpfs);
  }
  child_send(p, 'A');
  // The launcher installs and checks the image in the new root.
  if (!child_wait_for(p, 'I')) ::_exit(126);

  for (const auto& d : p.dirs) {
    if (::mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) child_fail(p, kStepDirs);
  }
  if (::mount("proc", p.proc.c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    child_fail(p, kStepProc);
  }
  // /dev: the host's harmless character devices bound onto empty files, a private devpts.
  if (tmpfs(p.dev, MS_NOSUID | MS_NOEXEC, "mode=0755") != 0) child_fail(p, kStepDev);
  for (const auto& [host, file] : p.dev_binds) {
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) child_fail(p, kStepDev);
    ::close(fd);
    if (::mount(host.c_str(), file.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      child_fail(p, kStepDev);
    }
  }
  if (::mkdir(p.dev_pts.c_str(), 0755) != 0 || ::mkdir(p.dev_shm.c_str(), 01777) != 0) {
    child_fail(p, kStepDev);
  }
  if (::mount("devpts", p.dev_pts.c_str(), "devpts", MS_NOSUID | MS_NOEXEC,
              "newinstance,ptmxmode=0666,mode=0620") != 0) {
    child_fail(p, kStepDev);
  }
  if (tmpfs(p.dev_shm, MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777") != 0) {
    child_fail(p, kStepDev);
  }
  if (::symlink("pts/ptmx", p.dev_ptmx.c_str()) != 0 ||
      ::symlink("/proc/self/fd", p.dev_fd.c_str()) != 0 ||
      ::symlink("/proc/self/fd/0", p.dev_stdin.c_str()) != 0 ||
      ::symlink("/proc/self/fd/1", p.dev_stdout.c_str()) != 0 ||
      ::symlink("/proc/self/fd/2", p.dev_stderr.c_str()) != 0) {
    child_fail(p, kStepDev);
  }
  // /sys: crun statfs()es /sys/fs/cgroup to pick its cgroup mode; an empty read-only tmpfs
  // says "no cgroup controllers here" (the agent's executor then runs crun without cgroups).
  if (tmpfs(p.sys, MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755") != 0 ||
      ::mkdir((p.sys + "/fs").c_str(), 0755) != 0 || ::mkdir(p.sys_fs_cgroup.c_str(), 0755) != 0 ||
      ::mount(nullptr, p.sys.c_str(), nullptr,
              MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    child_fail(p, kStepSys);
  }
  if (tmpfs(p.tmp, MS_NOSUID | MS_NODEV, "mode=1777") != 0 ||
      tmpfs(p.run, MS_NOSUID | MS_NODEV, "mode=0755") != 0 ||
      tmpfs(p.state, MS_NOSUID, "mode=0700") != 0) {
    child_fail(p, kStepTmpfs);
  }
  if (::mkdir(p.agent_dir_inside.c_str(), 0700) != 0 || ::mkdir(p.quote_dir.c_str(), 0700) != 0 ||
      (p.bind_agent_dir && ::mount(p.agent_dir_host.c_str(), p.agent_dir_inside.c_str(), nullptr,
                                   MS_BIND, nullptr) != 0)) {
    child_fail(p, kStepAgentDir);
  }
  if (!p.storage_host.empty() && (::mkdir(p.storage_inside.c_str(), 0700) != 0 ||
                                  ::mount(p.storage_host.c_str(), p.storage_inside.c_str(), nullptr,
                                          MS_BIND | MS_NOSUID | MS_NODEV, nullptr) != 0)) {
    child_fail(p, kStepStorage);
  }
  if (::mount(nullptr, p.root.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID,
              nullptr) != 0) {
    child_fail(p, kStepReadOnly);
  }
  // pivot_root(".", "."): the old root ends up stacked on the new one and is detached, so no
  // host mount remains in this mount namespace.
  if (::chdir(p.root.c_str()) != 0 || ::syscall(SYS_pivot_root, ".", ".") != 0 ||
      ::umount2(".", MNT_DETACH) != 0 || ::chdir("/") != 0) {
    child_fail(p, kStepPivot);
  }
  child_send(p, 'B');
  // The launcher starts the quote service on a socket in the new root.
  if (!child_wait_for(p, 'G')) ::_exit(126);

  if (::sethostname(kHostname, std::strlen(kHostname)) != 0) child_fail(p, kStepHostname);
  if (p.new_netns) {
    const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::memcpy(ifr.ifr_name, "lo", 3);
    if (s < 0 || ::ioctl(s, SIOCGIFFLAGS, &ifr) != 0) child_fail(p, kStepLoopback);
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) child_fail(p, kStepLoopback);
    ::close(s);
  }
  const rlimit core{0, 0};
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) != 0) child_fail(p, kStepRlimits);
  nofile.rlim_cur = nofile.rlim_max = std::min<rlim_t>(kNofile, nofile.rlim_max);
  if (::setrlimit(RLIMIT_CORE, &core) != 0 || ::setrlimit(RLIMIT_NOFILE, &nofile) != 0) {
    child_fail(p, kStepRlimits);
  }
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  // The app role's status pipe, moved above every fd the stdio dup2s below might touch.
  const int status_fd = p.status_fd < 0 ? -1 : ::fcntl(p.status_fd, F_DUPFD_CLOEXEC, 10);
  if (null_fd < 0 || (p.status_fd >= 0 && status_fd < 0) ||
      ::dup2(p.stdin_fd >= 0 ? p.stdin_fd : null_fd, 0) < 0 ||
      ::dup2(p.stdout_fd >= 0 ? p.stdout_fd : p.log_fd, 1) < 0 ||
      ::dup2(p.stderr_fd >= 0 ? p.stderr_fd : p.log_fd, 2) < 0) {
    child_fail(p, kStepStdio);
  }
  // Nothing of the launcher's crosses the exec but stdio (and the app role's status fd, 3).
  if (::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0) child_fail(p, kStepStdio);
  if (status_fd >= 0 && ::dup2(status_fd, kStatusFd) < 0) child_fail(p, kStepStdio);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) child_fail(p, kStepNoNewPrivs);
  if (p.landlock) {
    if (const int err = restrict_landlock_scopes(); err != 0) {
      errno = err;
      child_fail(p, kStepLandlock);
    }
  }
  if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &p.seccomp) != 0) child_fail(p, kStepSeccomp);
  ::execve(p.agent.c_str(), p.argv.data(), p.envp.data());
  child_fail(p, kStepExec);
}

class Pipe {
 public:
  Pipe() {
    if (::pipe2(fds_.data(), O_CLOEXEC) != 0) fds_ = {-1, -1};
  }
  ~Pipe() {
    close_read();
    close_write();
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  [[nodiscard]] bool ok() const { return fds_[0] >= 0; }
  [[nodiscard]] int read_fd() const { return fds_[0]; }
  [[nodiscard]] int write_fd() const { return fds_[1]; }
  void close_read() {
    if (fds_[0] >= 0) ::close(std::exchange(fds_[0], -1));
  }
  void close_write() {
    if (fds_[1] >= 0) ::close(std::exchange(fds_[1], -1));
  }

 private:
  std::array<int, 2> fds_{-1, -1};
};

bool write_text(const fs::path& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

// HealthResponse{status: "SERVING"} (proto/coffer/agent/v1/agent.proto): field 1, length 7.
constexpr std::string_view kServing{"\x0a\x07SERVING", 9};

class ProcessEnclave final : public Enclave {
 public:
  ProcessEnclave() = default;
  ~ProcessEnclave() override {
    (void)stop(std::chrono::seconds(3));
    if (pidfd_ >= 0) ::close(pidfd_);
  }
  ProcessEnclave(const ProcessEnclave&) = delete;
  ProcessEnclave& operator=(const ProcessEnclave&) = delete;

  [[nodiscard]] fs::path agent_socket() const override { return agent_socket_; }
  [[nodiscard]] std::string measurements_json() const override { return measurements_; }
  [[nodiscard]] pid_t pid() const override { return pid_; }

  Result<int> wait() override {
    {
      std::lock_guard lock(mu_);
      if (status_) return *status_;
      if (pidfd_ < 0) return make_error("not_running", "the enclave was not started");
    }
    // Without the lock: stop() may run meanwhile. The pidfd stays open until destruction.
    pollfd pfd{pidfd_, POLLIN, 0};
    while (::poll(&pfd, 1, -1) < 0 && errno == EINTR) {
    }
    std::lock_guard lock(mu_);
    return reap(true);
  }

  Status stop(std::chrono::milliseconds grace) override {
    std::lock_guard lock(mu_);
    if (pidfd_ >= 0 && !status_) {
      // Before the agent runs, the first process has no SIGTERM handler (PID 1 ignores it).
      if (agent_started_) {
        (void)::syscall(SYS_pidfd_send_signal, pidfd_, SIGTERM, nullptr, 0);
        pollfd pfd{pidfd_, POLLIN, 0};
        const int ms = static_cast<int>(std::max<std::int64_t>(0, grace.count()));
        while (::poll(&pfd, 1, ms) < 0 && errno == EINTR) {
        }
      }
      if (!reap(false)) {
        (void)::syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0);
        (void)reap(true);
      }
    }
    teardown();
    return ok();
  }

  // Set up by the launch.
  pid_t pid_ = -1;
  int pidfd_ = -1;
  std::unique_ptr<sim::QuoteService> quote_service_;
  fs::path run_dir_, agent_socket_, agent_dir_, root_mount_;
  bool created_run_dir_ = false;
  bool agent_started_ = false;
  std::string measurements_;

 private:
  // The exit status, once known. `block`: wait for the exit (else only look).
  Result<int> reap(bool block) {
    if (status_) return *status_;
    if (pidfd_ < 0) return make_error("not_running", "the enclave was not started");
    siginfo_t info{};
    for (;;) {
      const int rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_), &info,
                              WEXITED | (block ? 0 : WNOHANG));
      if (rc == 0) break;
      if (errno == EINTR) continue;
      return make_error("io_error", errno_text("waiting for the enclave"));
    }
    if (info.si_pid == 0) return make_error("running", "the enclave is running");
    // Init of the PID namespace: when it is reaped, every process of the enclave is gone.
    status_ = info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
    return *status_;
  }

  void teardown() {
    if (torn_down_) return;
    torn_down_ = true;
    if (quote_service_) quote_service_->stop();
    quote_service_.reset();
    // The enclave's mounts lived in its mount namespace and went with its last process; what
    // is left on the host are the (empty) mount point and the agent socket directory.
    std::error_code ec;
    fs::remove(agent_socket_, ec);
    fs::remove(agent_dir_, ec);
    fs::remove(root_mount_, ec);
    if (created_run_dir_) fs::remove(run_dir_, ec);
  }

  std::mutex mu_;
  std::optional<int> status_;
  bool torn_down_ = false;
};

void report(const LaunchObserver& observer, std::string step, std::string detail) {
  if (observer) observer(LaunchEvent{std::move(step), std::move(detail)});
}

Status check_spec(const EnclaveSpec& spec) {
  if (spec.tee != "sim-tdx" && spec.tee != "sim-snp" && spec.tee != "sim-sgx") {
    return make_error("usage",
                      "the process enclave runs the simulated TEE only (sim-tdx, sim-snp or "
                      "sim-sgx), not \"" +
                          spec.tee + "\"");
  }
  if (spec.enclave_image.empty() || spec.sim_dir.empty() || spec.run_dir.empty()) {
    return make_error("usage",
                      "the enclave image, the simulation PKI and a run directory are "
                      "required");
  }
  if (!spec.run_dir.is_absolute()) return make_error("usage", "the run directory must be absolute");
  // The host connects to RUN_DIR/agent/agent.sock by path (sun_path holds 107 bytes).
  if ((spec.run_dir / "agent/agent.sock").string().size() > 107) {
    return make_error("usage", "the run directory's path is too long for the agent socket (" +
                                   spec.run_dir.string() + ")");
  }
  return ok();
}

// The first process's error, or EOF (nullopt) when it exec'd / died without one.
Result<std::optional<ChildMessage>> read_child(int fd) {
  ChildMessage m{};
  for (;;) {
    const ssize_t n = ::read(fd, &m, sizeof m);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) return std::optional<ChildMessage>();
    if (n != static_cast<ssize_t>(sizeof m)) {
      return make_error("launch_failed", "the enclave's first process sent a short message");
    }
    return std::optional<ChildMessage>(m);
  }
}

Status expect_child(int fd, char kind) {
  auto m = COFFER_TRY(read_child(fd));
  if (!m) return make_error("launch_failed", "the enclave's first process exited during setup");
  if (m->kind == 'E') {
    const char* step = m->step < kStepNames.size() ? kStepNames[m->step] : "setup";
    return make_error("launch_failed",
                      std::string("the enclave failed ") + step + ": " + std::strerror(m->err));
  }
  if (m->kind != kind) return make_error("launch_failed", "out-of-order enclave setup message");
  return ok();
}

Status send_child(int fd, char c) {
  if (::write(fd, &c, 1) != 1)
    return make_error("launch_failed", errno_text("signalling the enclave"));
  return ok();
}

// The agent's own account of why it stopped: the last "coffer-agent: ..." line of its log (it
// prints the failed step and the error there before exiting), bounded and printable.
std::string agent_exit_reason(const EnclaveSpec& spec) {
  if (spec.agent_log_file.empty()) return "see its log";
  auto text = read_text_file(spec.agent_log_file, 4 * 1024 * 1024);
  if (!text) return "see its log";
  std::string_view rest(*text);
  std::string_view reason;
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    const auto line = rest.substr(0, nl);
    if (line.starts_with("coffer-agent: ")) reason = line;
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  }
  if (reason.empty()) return "see its log, " + spec.agent_log_file.string();
  return printable_excerpt(reason, 1024);
}

Status wait_ready(ProcessEnclave& enclave, const EnclaveSpec& spec) {
  const auto deadline = std::chrono::steady_clock::now() + kReadyTimeout;
  std::string last = "no answer";
  auto delay = std::chrono::milliseconds(2);
  while (std::chrono::steady_clock::now() < deadline) {
    siginfo_t info{};
    if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(enclave.pidfd_), &info,
                 WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid != 0) {
      return make_error("agent_exited",
                        "coffer-agent exited (status " + std::to_string(info.si_status) +
                            ") before it answered Health: " + agent_exit_reason(spec));
    }
    if (auto client = net::ttrpc::Client::connect_unix(enclave.agent_socket_); client) {
      auto r = (*client)->call("coffer.agent.v1.Agent", "Health", "", std::chrono::seconds(5));
      if (r && *r == kServing) return ok();
      last = r ? "Health answered without SERVING" : r.error().message;
    }
    // Readiness polling of another process: nothing to wait on but its socket (a refused connect
    // costs microseconds; a longer pause would be added to every cold start).
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(5));
  }
  return make_error("agent_not_ready", "coffer-agent did not answer Health within " +
                                           std::to_string(kReadyTimeout.count()) + " s: " + last);
}

// The app role: the boot step's one status line, "started" or "error <code> <message>".
Status wait_app_started(ProcessEnclave& enclave, int fd) {
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + kReadyTimeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return make_error("app_enclave_failed", "the app enclave did not start within " +
                                                  std::to_string(kReadyTimeout.count()) + " s");
    }
    pollfd pfd{fd, POLLIN, 0};
    const int rc = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return make_error("app_enclave_failed", errno_text("reading the status pipe"));
    if (rc == 0) continue;
    char buf[256];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error("app_enclave_failed", errno_text("reading the status pipe"));
    if (n == 0) break;
    line.append(buf, static_cast<std::size_t>(n));
    if (line.find('\n') != std::string::npos || line.size() > kMaxStatusLine) break;
  }
  const auto nl = line.find('\n');
  if (nl == std::string::npos) {
    if (line.size() > kMaxStatusLine) {
      return make_error("app_enclave_failed", "the app enclave's status line is too long");
    }
    auto status = enclave.wait();
    return make_error("app_enclave_failed",
                      "the app enclave exited (status " +
                          (status ? std::to_string(*status) : status.error().message) +
                          ") without reporting its start" +
                          (line.empty() ? "" : ": " + printable_excerpt(line, 256)));
  }
  line.resize(nl);
  if (line == "started") return ok();
  if (line.starts_with("error ")) {
    return make_error("app_enclave_failed",
                      "the app enclave's boot failed: " + printable_excerpt(line.substr(6), 1024));
  }
  return make_error("app_enclave_failed",
                    "unexpected status line from the app enclave: " + printable_excerpt(line, 256));
}

}  // namespace

Result<std::unique_ptr<Enclave>> launch_process_enclave(const EnclaveSpec& spec,
                                                        const LaunchObserver& observer) {
  COFFER_TRY_STATUS(check_spec(spec));

  // 1. the image, checked before any process exists: each file read and hashed once into sealed
  // memory, from which it is installed below
  auto staged = COFFER_TRY(stage_enclave_image(spec.enclave_image));
  const EnclaveManifest& checked = staged.manifest;
  report(observer, "check_image",
         std::to_string(checked.entries.size()) + " files match " +
             (spec.enclave_image / "manifest").string());
  auto pki = COFFER_TRY(sim::load_sim_pki(spec.sim_dir));
  auto filter = COFFER_TRY(build_seccomp_filter());

  auto enclave = std::make_unique<ProcessEnclave>();
  std::error_code ec;
  if (!fs::exists(spec.run_dir, ec)) {
    fs::create_directories(spec.run_dir, ec);
    if (ec)
      return make_error("io_error", "creating " + spec.run_dir.string() + ": " + ec.message());
    enclave->created_run_dir_ = true;
  }
  fs::permissions(spec.run_dir, fs::perms::owner_all, ec);
  enclave->run_dir_ = spec.run_dir;
  enclave->agent_dir_ = spec.run_dir / "agent";
  enclave->root_mount_ = spec.run_dir / "root";
  const bool app = spec.app.has_value();
  // The app role has no agent socket: its entry is the boot step (docs/two-enclave.md).
  if (!app) enclave->agent_socket_ = enclave->agent_dir_ / "agent.sock";
  std::vector<fs::path> own_dirs{enclave->root_mount_};
  if (!app) own_dirs.push_back(enclave->agent_dir_);
  if (!spec.storage_dir.empty()) {
    if (!spec.storage_dir.is_absolute()) {
      return make_error("usage", "the storage directory must be absolute");
    }
    if (!fs::exists(spec.storage_dir, ec)) {
      if (::mkdir(spec.storage_dir.c_str(), 0700) != 0 && errno != EEXIST) {
        return make_error("io_error", errno_text("creating " + spec.storage_dir.string()));
      }
    }
    if (!fs::is_directory(spec.storage_dir, ec)) {
      return make_error("usage", spec.storage_dir.string() + " is not a directory");
    }
  }
  if (app && !spec.app->agent_dir.empty() && !fs::is_directory(spec.app->agent_dir, ec)) {
    return make_error("usage", "the agent enclave's directory " + spec.app->agent_dir.string() +
                                   " is not a directory");
  }
  for (const auto& d : own_dirs) {
    if (::mkdir(d.c_str(), 0700) != 0) {
      return make_error("io_error", errno_text("creating " + d.string() +
                                               " (is another enclave using this run directory?)"));
    }
  }

  int log_fd = -1;
  if (!spec.agent_log_file.empty()) {
    log_fd = ::open(spec.agent_log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) return make_error("io_error", errno_text("opening the agent log"));
  } else {
    log_fd = ::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
  }
  const Fd log_closer(log_fd);

  // 2. the plan of the first process
  Pipe to_child;
  Pipe from_child;
  Pipe status;  // app role: the boot's status line
  if (!to_child.ok() || !from_child.ok() || !status.ok()) {
    return make_error("launch_failed", errno_text("pipe"));
  }
  ChildPlan plan;
  plan.to_child = to_child.read_fd();
  plan.from_child = from_child.write_fd();
  plan.to_child_other = to_child.write_fd();
  plan.from_child_other = from_child.read_fd();
  plan.log_fd = log_fd;
  plan.new_netns = !spec.host_network;
  plan.root = enclave->root_mount_.string();
  const std::string& r = plan.root;
  plan.proc = r + "/proc";
  plan.dev = r + "/dev";
  plan.sys = r + "/sys";
  plan.tmp = r + "/tmp";
  plan.run = r + "/run";
  plan.state = r + kStateDir;
  plan.dirs = {plan.proc, plan.dev,   plan.sys,       plan.tmp,
               plan.run,  r + "/var", r + "/var/lib", plan.state};
  plan.dev_pts = plan.dev + "/pts";
  plan.dev_shm = plan.dev + "/shm";
  plan.dev_ptmx = plan.dev + "/ptmx";
  plan.dev_fd = plan.dev + "/fd";
  plan.dev_stdin = plan.dev + "/stdin";
  plan.dev_stdout = plan.dev + "/stdout";
  plan.dev_stderr = plan.dev + "/stderr";
  for (const char* n : {"null", "zero", "full", "random", "urandom", "tty"}) {
    plan.dev_binds.emplace_back(std::string("/dev/") + n, plan.dev + "/" + n);
  }
  plan.sys_fs_cgroup = plan.sys + "/fs/cgroup";
  plan.agent_dir_inside = r + kAgentSocketDir;
  plan.agent_dir_host = enclave->agent_dir_.string();
  if (app) {
    plan.agent_dir_host = spec.app->agent_dir.string();
    plan.bind_agent_dir = !spec.app->agent_dir.empty();
    plan.dev_binds.emplace_back("/dev/fuse", plan.dev + "/fuse");
    plan.stdin_fd = spec.app->stdin_fd;
    plan.stdout_fd = spec.app->stdout_fd;
    plan.stderr_fd = spec.app->stderr_fd;
    plan.status_fd = status.write_fd();
  }
  if (!spec.storage_dir.empty()) {
    plan.storage_host = spec.storage_dir.string();
    plan.storage_inside = r + kStorageDir;
  }
  plan.quote_dir = r + kQuoteDir;
  plan.agent = checked.agent;
  plan.argv_storage = {plan.agent, "--socket",        kAgentSocket,        "--tee",
                       spec.tee,   "--quote-service", kQuoteSocket,        "--state-dir",
                       kStateDir,  "--log-level",     spec.agent_log_level};
  if (spec.init_data) {
    plan.argv_storage.emplace_back("--init-data");
    plan.argv_storage.emplace_back(kInitDataPath);
  }
  if (!spec.storage_dir.empty()) {
    plan.argv_storage.emplace_back("--storage-dir");
    plan.argv_storage.emplace_back(kStorageDir);
  }
  if (app) {
    plan.argv_storage = {
        plan.agent,    "--quote-service",        kQuoteSocket, "--storage", kStorageDir,
        "--status-fd", std::to_string(kStatusFd)};
    plan.argv_storage.insert(plan.argv_storage.end(), spec.app->args.begin(), spec.app->args.end());
  }
  for (auto& a : plan.argv_storage) plan.argv.push_back(a.data());
  plan.argv.push_back(nullptr);
  plan.envp = {plan.env_path.data(), nullptr};
  plan.seccomp.len = static_cast<unsigned short>(filter.size());
  plan.seccomp.filter = filter.data();
  const int landlock_abi = landlock_abi_version();
  plan.landlock = landlock_abi >= 6;

  // 3. the first process, in its namespaces (fork-like clone3: it runs child_main on a copy of
  // this stack, single-threaded)
  int pidfd = -1;
  clone_args args{};
  args.flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS |
               CLONE_PIDFD | (spec.host_network ? 0 : CLONE_NEWNET);
  args.pidfd = reinterpret_cast<std::uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  const long pid = ::syscall(SYS_clone3, &args, sizeof args);
  if (pid < 0) {
    fs::remove(enclave->agent_dir_, ec);
    fs::remove(enclave->root_mount_, ec);
    if (enclave->created_run_dir_) fs::remove(enclave->run_dir_, ec);
    return make_error("launch_failed", errno_text("clone3 with new namespaces"));
  }
  if (pid == 0) child_main(plan);
  enclave->pid_ = static_cast<pid_t>(pid);
  enclave->pidfd_ = pidfd;
  to_child.close_read();
  from_child.close_write();
  status.close_write();
  // From here on, a failure tears the enclave down (the destructor kills and reaps).

  // 4. user namespace: root inside is the launcher's user outside
  const fs::path proc = "/proc/" + std::to_string(pid);
  {
    const uid_t uid = ::geteuid();
    const gid_t gid = ::getegid();
    bool mapped = false;
    if (uid == 0) {
      // Root to root, and the next 65535 ids for the containers' users (image files keep
      // their owners).
      mapped = write_text(proc / "uid_map", "0 0 65536\n") &&
               write_text(proc / "gid_map", "0 0 65536\n");
    } else {
      mapped = write_text(proc / "setgroups", "deny") &&
               write_text(proc / "uid_map", "0 " + std::to_string(uid) + " 1\n") &&
               write_text(proc / "gid_map", "0 " + std::to_string(gid) + " 1\n");
    }
    if (!mapped) return make_error("launch_failed", errno_text("writing the user namespace map"));
  }
  COFFER_TRY_STATUS(send_child(to_child.write_fd(), 'M'));
  COFFER_TRY_STATUS(expect_child(from_child.read_fd(), 'A'));

  // 5. the image copied into the enclave's root (a tmpfs only its mount namespace sees) from the
  // sealed, checked memory, and measured
  const fs::path root_seen = proc / "root" / enclave->root_mount_.relative_path();
  auto installed = COFFER_TRY(install_staged_image(staged, root_seen));
  if (spec.init_data) {
    COFFER_TRY_STATUS(write_file_atomic(root_seen / fs::path(kInitDataPath).relative_path(),
                                        as_bytes(*spec.init_data), 0444));
  }
  sim::EnclaveComponents components;
  components.kind = sim::EnclaveKind::kProcess;
  components.agent = root_seen / installed.agent.substr(1);
  components.agent_sha384 = staged.agent_sha384;
  staged.memfds.clear();  // installed: the sealed copies are not needed any more
  components.rootfs_manifest = root_seen / fs::path(kInstalledManifestPath).relative_path();
  components.init_data = spec.init_data;
  auto measurements = COFFER_TRY(sim::measure_enclave(components));
  Json reference_values = measurements.reference_values();
  // sim-sgx: the image must carry a valid signature over what was just measured (the copy);
  // it gives MRSIGNER, ISVPRODID and ISVSVN.
  std::optional<sim::SgxIdentity> sgx_identity;
  if (spec.tee == "sim-sgx") {
    sgx_identity = COFFER_TRY(read_enclave_signature(spec.enclave_image, measurements.mr_enclave));
    reference_values.update(sim::sgx_reference_values(*sgx_identity));
  }
  enclave->measurements_ = reference_values.dump();
  report(observer, "measure",
         "the enclave root holds " + std::to_string(installed.entries.size()) + " checked files; " +
             (sgx_identity ? "mr_enclave " + reference_values.value("sgx.mr_enclave", std::string())
                           : "mr_td " + reference_values.value("tdx.mr_td", std::string())));
  COFFER_TRY_STATUS(send_child(to_child.write_fd(), 'I'));
  COFFER_TRY_STATUS(expect_child(from_child.read_fd(), 'B'));

  // 6. the enclave's own quote service: it knows the enclave from here, not from requests
  sim::QuoteServiceConfig qconfig;
  qconfig.socket_path = proc / "root" / fs::path(kQuoteSocket).relative_path();
  qconfig.sgx = sgx_identity;
  enclave->quote_service_ =
      std::make_unique<sim::QuoteService>(std::move(pki), std::move(measurements), qconfig);
  COFFER_TRY_STATUS(enclave->quote_service_->start());
  report(observer, "quote_service",
         std::string("serving the enclave at ") + kQuoteSocket + " (inside the enclave only)");

  // 7. the agent
  COFFER_TRY_STATUS(send_child(to_child.write_fd(), 'G'));
  if (auto m = COFFER_TRY(read_child(from_child.read_fd())); m) {
    const char* step = m->step < kStepNames.size() ? kStepNames[m->step] : "setup";
    return make_error("launch_failed",
                      std::string("the enclave failed ") + step + ": " + std::strerror(m->err));
  }
  enclave->agent_started_ = true;
  if (app) {
    report(observer, "start_app", "coffer-app-enclave pid " + std::to_string(pid));
    COFFER_TRY_STATUS(wait_app_started(*enclave, status.read_fd()));
    report(observer, "app_started", "the workload runs");
    return std::unique_ptr<Enclave>(std::move(enclave));
  }
  report(observer, "start_agent",
         "coffer-agent pid " + std::to_string(pid) + " (" + spec.tee + ", " +
             (spec.host_network ? "host network" : "own network namespace") + ", Landlock " +
             (plan.landlock ? "scoped" : "unavailable") + ")");
  COFFER_TRY_STATUS(wait_ready(*enclave, spec));
  report(observer, "agent_ready", "Health: SERVING on " + enclave->agent_socket_.string());
  return std::unique_ptr<Enclave>(std::move(enclave));
}

}  // namespace coffer::runtime::process
