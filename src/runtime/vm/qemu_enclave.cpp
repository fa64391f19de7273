#include "runtime/vm/qemu_enclave.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/bytes.h"
#include "core/file.h"
#include "evidence/sim/measure.h"
#include "net/ttrpc/client.h"

namespace coffer::runtime::vm {

namespace {

namespace fs = std::filesystem;

// HealthResponse{status: "SERVING"} (proto/coffer/agent/v1/agent.proto): field 1, length 7.
constexpr std::string_view kServing{"\x0a\x07SERVING", 9};
constexpr std::size_t kMaxCmdline = 4096;

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

void report(const LaunchObserver& observer, std::string step, std::string detail) {
  if (observer) observer(LaunchEvent{std::move(step), std::move(detail)});
}

// The last lines of a log, printable, for error messages.
std::string log_tail(const fs::path& log, std::size_t max_bytes = 1500) {
  auto text = read_text_file(log, std::size_t{64} << 20);
  if (!text || text->empty()) return "(empty)";
  std::string_view t(*text);
  if (t.size() > max_bytes) {
    t.remove_prefix(t.size() - max_bytes);
    if (const auto nl = t.find('\n'); nl != std::string_view::npos) t.remove_prefix(nl + 1);
  }
  return printable_excerpt(t, max_bytes);
}

std::string cmdline_value(std::string_view cmdline, std::string_view key) {
  std::size_t pos = 0;
  while (pos < cmdline.size()) {
    auto end = cmdline.find(' ', pos);
    if (end == std::string_view::npos) end = cmdline.size();
    const auto w = cmdline.substr(pos, end - pos);
    if (w.size() > key.size() && w.starts_with(key) && w[key.size()] == '=') {
      return std::string(w.substr(key.size() + 1));
    }
    pos = end + 1;
  }
  return {};
}

class VmEnclave final : public Enclave {
 public:
  VmEnclave() = default;
  ~VmEnclave() override {
    (void)stop(std::chrono::seconds(3));
    if (pidfd_ >= 0) ::close(pidfd_);
  }
  VmEnclave(const VmEnclave&) = delete;
  VmEnclave& operator=(const VmEnclave&) = delete;

  [[nodiscard]] fs::path agent_socket() const override { return agent_socket_; }
  [[nodiscard]] std::string measurements_json() const override { return measurements_; }
  [[nodiscard]] pid_t pid() const override { return pid_; }

  // QEMU's exit status (0 when the guest powered off).
  Result<int> wait() override {
    {
      std::lock_guard lock(mu_);
      if (status_) return *status_;
      if (pidfd_ < 0) return make_error("not_running", "the enclave was not started");
    }
    pollfd pfd{pidfd_, POLLIN, 0};
    while (::poll(&pfd, 1, -1) < 0 && errno == EINTR) {
    }
    std::lock_guard lock(mu_);
    return reap(true);
  }

  // SIGTERM to QEMU (it exits at once; the guest's RAM goes with it), SIGKILL after `grace`.
  Status stop(std::chrono::milliseconds grace) override {
    std::lock_guard lock(mu_);
    if (pidfd_ >= 0 && !status_) {
      (void)::syscall(SYS_pidfd_send_signal, pidfd_, SIGTERM, nullptr, 0);
      pollfd pfd{pidfd_, POLLIN, 0};
      const int ms = static_cast<int>(std::max<std::int64_t>(0, grace.count()));
      while (::poll(&pfd, 1, ms) < 0 && errno == EINTR) {
      }
      if (!reap(false)) {
        (void)::syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0);
        (void)reap(true);
      }
    }
    teardown();
    return ok();
  }

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
      return make_error("io_error", errno_text("waiting for QEMU"));
    }
    if (info.si_pid == 0) return make_error("running", "QEMU is running");
    status_ = info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
    return *status_;
  }

  void teardown() {
    if (torn_down_) return;
    torn_down_ = true;
    std::error_code ec;
    for (const auto& f : created_files_) fs::remove(f, ec);
    if (created_run_dir_) fs::remove(run_dir_, ec);
  }

  pid_t pid_ = -1;
  int pidfd_ = -1;
  fs::path run_dir_, agent_socket_, console_log_;
  std::vector<fs::path> created_files_;
  bool created_run_dir_ = false;
  std::string measurements_;

 private:
  std::mutex mu_;
  std::optional<int> status_;
  bool torn_down_ = false;
};

std::vector<std::string> qemu_args(const VmOptions& o, const fs::path& image,
                                   const std::string& cmdline, const fs::path& console_log,
                                   const fs::path& agent_socket) {
  const std::string mem = std::to_string(o.memory_mib) + "M";
  return {o.qemu,
          "-nodefaults",
          "-no-user-config",
          "-display",
          "none",
          "-machine",
          "pc,accel=tcg,memory-backend=mem",
          "-cpu",
          "max",
          "-smp",
          std::to_string(o.vcpus),
          "-m",
          mem,
          "-object",
          "memory-backend-memfd,id=mem,size=" + mem,
          "-kernel",
          (image / "vmlinuz").string(),
          "-initrd",
          (image / "initrd").string(),
          "-append",
          cmdline,
          "-serial",
          "file:" + console_log.string(),
          "-no-reboot",
          "-device",
          "virtio-serial-pci,id=vser0",
          "-chardev",
          "socket,id=agent,path=" + agent_socket.string() + ",server=on,wait=off",
          "-device",
          "virtserialport,bus=vser0.0,chardev=agent,name=coffer.agent",
          "-netdev",
          "user,id=net0",
          "-device",
          "virtio-net-pci,netdev=net0"};
}

Status wait_ready(VmEnclave& e, const VmOptions& o) {
  const auto deadline = std::chrono::steady_clock::now() + o.ready_timeout;
  std::string last = "no answer";
  auto delay = std::chrono::milliseconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto status = e.reap(false); status) {
      return make_error("vm_exited", "the VM stopped (QEMU status " + std::to_string(*status) +
                                         ") before the agent answered Health; console log " +
                                         e.console_log_.string() + ":\n" +
                                         log_tail(e.console_log_));
    }
    if (auto client = net::ttrpc::Client::connect_unix(e.agent_socket_); client) {
      // The port is one byte stream for the guest's whole life: a request QEMU took is answered
      // whenever the agent opens the port, even after this connection is gone. So one request,
      // on one connection, waited for until the deadline (QEMU exiting ends it early).
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      auto r = (*client)->call("coffer.agent.v1.Agent", "Health", "",
                               std::max(left, std::chrono::milliseconds(1)));
      if (r && *r == kServing) return ok();
      last = r ? "Health answered without SERVING" : r.error().message;
      // The connection ended before the deadline: QEMU is going (its exit is reported above).
      pollfd pfd{e.pidfd_, POLLIN, 0};
      while (::poll(&pfd, 1, 1000) < 0 && errno == EINTR) {
      }
      continue;
    }
    // Readiness polling of a VM: nothing to wait on but its socket.
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(100));
  }
  return make_error("agent_not_ready", "the guest's agent did not answer Health within " +
                                           std::to_string(o.ready_timeout.count()) + " ms (" +
                                           last + "); console log " + e.console_log_.string() +
                                           ":\n" + log_tail(e.console_log_));
}

}  // namespace

Result<std::unique_ptr<Enclave>> launch_vm_enclave(const EnclaveSpec& spec,
                                                   const VmOptions& options,
                                                   const LaunchObserver& observer) {
  if (spec.run_dir.empty()) return make_error("usage", "the VM enclave needs a run directory");
  if (spec.app) return make_error("usage", "the VM enclave has no app role");
  if (options.memory_mib < 64 || options.vcpus < 1) {
    return make_error("usage", "the VM needs at least 64 MiB and one vCPU");
  }
  if (spec.init_data) {
    return make_error("not_supported", "init-data for the VM enclave is not built yet");
  }
  // 1. the guest image
  const fs::path& image = spec.enclave_image;
  report(observer, "check_image", image.string());
  for (const char* f : {"vmlinuz", "initrd", "cmdline"}) {
    std::error_code ec;
    if (!fs::is_regular_file(image / f, ec)) {
      return make_error("bad_guest_image", (image / f).string() + " is missing");
    }
  }
  auto cmdline = read_text_file(image / "cmdline", kMaxCmdline);
  if (!cmdline) return std::unexpected(cmdline.error());
  const std::string guest_tee = cmdline_value(*cmdline, "coffer.tee");
  if (guest_tee != spec.tee) {
    return make_error("bad_guest_image", "the guest image runs the agent with coffer.tee=" +
                                             (guest_tee.empty() ? "(none)" : guest_tee) + ", not " +
                                             spec.tee);
  }
  if (spec.tee != "sample") {
    return make_error("not_supported", "the VM enclave's quote service channel for " + spec.tee +
                                           " is not built yet (docs/vm-enclave.md)");
  }
  // 2. what the VM will report
  report(observer, "measure", "kernel, initrd, command line");
  evidence::sim::EnclaveComponents c;
  c.kind = evidence::sim::EnclaveKind::kVm;
  c.kernel = image / "vmlinuz";
  c.initrd = image / "initrd";
  c.cmdline = *cmdline;
  auto measured = COFFER_TRY(evidence::sim::measure_enclave(c));

  auto e = std::make_unique<VmEnclave>();
  e->measurements_ = measured.reference_values().dump();
  std::error_code ec;
  e->run_dir_ = spec.run_dir;
  if (!fs::exists(spec.run_dir, ec)) {
    fs::create_directories(spec.run_dir, ec);
    if (ec)
      return make_error("io_error", "creating " + spec.run_dir.string() + ": " + ec.message());
    e->created_run_dir_ = true;
  }
  fs::permissions(spec.run_dir, fs::perms::owner_all, ec);
  e->agent_socket_ = spec.run_dir / "agent.sock";
  if (e->agent_socket_.string().size() >= 108) {
    return make_error("usage", "the run directory's path is too long for a Unix socket");
  }
  e->console_log_ =
      spec.agent_log_file.empty() ? spec.run_dir / "console.log" : spec.agent_log_file;
  const fs::path qemu_log = spec.run_dir / "qemu.log";
  fs::remove(e->agent_socket_, ec);
  e->created_files_ = {e->agent_socket_, qemu_log};
  if (spec.agent_log_file.empty()) e->created_files_.push_back(e->console_log_);

  // 3. QEMU, a child that dies with this thread
  report(observer, "start_vm", options.qemu);
  const auto args = qemu_args(options, image, *cmdline, e->console_log_, e->agent_socket_);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const int log_fd = ::open(qemu_log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (log_fd < 0) return make_error("io_error", errno_text("creating " + qemu_log.string()));
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    return make_error("launch_failed", errno_text("fork"));
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    const int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(log_fd);
  e->pid_ = pid;
  e->pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (e->pidfd_ < 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return make_error("launch_failed", errno_text("pidfd_open"));
  }
  // 4. the agent through the port
  if (auto ready = wait_ready(*e, options); !ready) {
    // The console log stays (the error points at it); QEMU, the socket and its log go.
    std::erase(e->created_files_, e->console_log_);
    e->created_run_dir_ = false;
    (void)e->stop(std::chrono::milliseconds(0));
    auto err = ready.error();
    if (err.code == "vm_exited") {
      if (auto q = read_text_file(qemu_log, 1 << 20); q && !q->empty()) {
        err.message += "\nQEMU: " + printable_excerpt(*q, 1024);
      }
    }
    return std::unexpected(err);
  }
  report(observer, "agent_ready", "Health: SERVING on " + e->agent_socket_.string());
  return std::unique_ptr<Enclave>(std::move(e));
}

}  // namespace coffer::runtime::vm
