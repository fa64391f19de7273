#include "runtime/process/hardening.h"

#include <seccomp.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>

namespace coffer::runtime::process {

namespace {

constexpr long kLandlockCreateRuleset = 444;  // __NR_landlock_create_ruleset (all archs)
constexpr long kLandlockRestrictSelf = 446;   // __NR_landlock_restrict_self
constexpr unsigned kLandlockCreateRulesetVersion = 1U << 0;

// include/uapi/linux/landlock.h, ABI 6 (newer than the system headers here).
struct LandlockRulesetAttr {
  std::uint64_t handled_access_fs;
  std::uint64_t handled_access_net;
  std::uint64_t scoped;
};
constexpr std::uint64_t kScopeAbstractUnixSocket = 1U << 0;
constexpr std::uint64_t kScopeSignal = 1U << 1;

}  // namespace

const std::vector<std::string>& seccomp_denied_syscalls() {
  static const std::vector<std::string> kDenied = {
      // Other processes' memory and execution: the agent holds the TEE's keys.
      "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
      // The kernel itself: new code, a new kernel, kernel objects shared with the host.
      "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "bpf",
      "perf_event_open", "userfaultfd", "iopl", "ioperm", "syslog", "acct", "swapon", "swapoff",
      "reboot", "quotactl", "lookup_dcookie",
      // Host file handles (the classic container escape) and clocks.
      "open_by_handle_at", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
      // Kernel facilities the agent and crun never use that widen the attack surface.
      "fanotify_init", "io_uring_setup", "io_uring_enter", "io_uring_register"};
  return kDenied;
}

const std::vector<std::string>& seccomp_unavailable_syscalls() {
  // The kernel keyrings are shared with the host. crun joins a session keyring per container
  // and goes on without one when the kernel has none (ENOSYS), not when it is refused.
  static const std::vector<std::string> kUnavailable = {"keyctl", "add_key", "request_key"};
  return kUnavailable;
}

Result<std::vector<sock_filter>> build_seccomp_filter() {
  std::unique_ptr<void, decltype(&seccomp_release)> ctx(seccomp_init(SCMP_ACT_ALLOW),
                                                        &seccomp_release);
  if (!ctx) return make_error("launch_failed", "seccomp_init failed");
  for (const auto& [names, err] : {std::pair{&seccomp_denied_syscalls(), EPERM},
                                   std::pair{&seccomp_unavailable_syscalls(), ENOSYS}}) {
    for (const auto& name : *names) {
      const int nr = seccomp_syscall_resolve_name(name.c_str());
      if (nr == __NR_SCMP_ERROR) continue;  // not a syscall on this architecture
      if (int rc =
              seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(static_cast<std::uint32_t>(err)), nr, 0);
          rc != 0) {
        return make_error("launch_failed", "seccomp rule for " + name + ": " + std::strerror(-rc));
      }
    }
  }
  // Exported as BPF here so that the enclave's first process (single-threaded, after clone)
  // installs it without allocating. The default bad-architecture action (kill) stays.
  const int fd = ::memfd_create("coffer-seccomp", MFD_CLOEXEC);
  if (fd < 0) return make_error("launch_failed", std::string("memfd: ") + std::strerror(errno));
  std::vector<sock_filter> program;
  if (int rc = seccomp_export_bpf(ctx.get(), fd); rc != 0) {
    ::close(fd);
    return make_error("launch_failed", std::string("seccomp export: ") + std::strerror(-rc));
  }
  const off_t size = ::lseek(fd, 0, SEEK_END);
  if (size <= 0 || size % static_cast<off_t>(sizeof(sock_filter)) != 0) {
    ::close(fd);
    return make_error("launch_failed", "seccomp export produced no program");
  }
  program.resize(static_cast<std::size_t>(size) / sizeof(sock_filter));
  const ssize_t n = ::pread(fd, program.data(), static_cast<std::size_t>(size), 0);
  ::close(fd);
  if (n != size) return make_error("launch_failed", "reading the seccomp program back failed");
  return program;
}

int restrict_landlock_scopes() noexcept {
  // No filesystem access is handled: a domain that handles any forbids mount(2) and
  // pivot_root(2), which crun needs (docs/process-enclave.md §3).
  const LandlockRulesetAttr attr{0, 0, kScopeAbstractUnixSocket | kScopeSignal};
  const long fd = ::syscall(kLandlockCreateRuleset, &attr, sizeof attr, 0U);
  if (fd < 0) return errno;
  const long rc = ::syscall(kLandlockRestrictSelf, fd, 0U);
  const int err = rc == 0 ? 0 : errno;
  ::close(static_cast<int>(fd));
  return err;
}

int landlock_abi_version() {
  const long v = ::syscall(kLandlockCreateRuleset, nullptr, 0, kLandlockCreateRulesetVersion);
  return v < 0 ? 0 : static_cast<int>(v);
}

}  // namespace coffer::runtime::process
