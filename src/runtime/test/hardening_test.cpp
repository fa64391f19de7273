// The enclave's seccomp program and Landlock scopes, installed in a forked child of the test.
#include "runtime/process/hardening.h"

#include <linux/seccomp.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <functional>
#include <string>

namespace coffer::runtime::process {
namespace {

// Runs `body` in a forked child; its exit code (0: all checks passed, else the failed check).
int in_child(const std::function<int()>& body) {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(body());
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

TEST(Seccomp, DeniesTheListAndKeepsTheRest) {
  auto program = build_seccomp_filter();
  ASSERT_TRUE(program) << program.error().to_string();
  ASSERT_FALSE(program->empty());
  const int rc = in_child([&]() -> int {
    sock_fprog prog{static_cast<unsigned short>(program->size()), program->data()};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 1;
    if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) return 2;
    // denied: EPERM
    if (::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != -1 || errno != EPERM) return 3;
    if (::syscall(SYS_bpf, 0, nullptr, 0) != -1 || errno != EPERM) return 4;
    if (::syscall(SYS_perf_event_open, nullptr, 0, -1, -1, 0) != -1 || errno != EPERM) return 5;
    if (::syscall(SYS_userfaultfd, 0) != -1 || errno != EPERM) return 6;
    if (::syscall(SYS_init_module, nullptr, 0, "") != -1 || errno != EPERM) return 7;
    if (::syscall(SYS_io_uring_setup, 1, nullptr) != -1 || errno != EPERM) return 8;
    // as if absent: ENOSYS
    if (::syscall(SYS_keyctl, 0, 0, 0, 0, 0) != -1 || errno != ENOSYS) return 9;
    if (::syscall(SYS_add_key, "user", "k", "v", 1, 0) != -1 || errno != ENOSYS) return 10;
    // allowed: what crun needs
    if (::syscall(SYS_getpid) <= 0) return 11;
    if (::unshare(0) != 0) return 12;
    return 0;
  });
  EXPECT_EQ(rc, 0) << "check " << rc << " failed";
}

TEST(Landlock, ScopesAbstractUnixSockets) {
  if (landlock_abi_version() < 6) {
    GTEST_SKIP() << "the kernel's Landlock ABI is " << landlock_abi_version() << " (scopes need 6)";
  }
  // An abstract socket outside the domain (created before the child restricts itself).
  const int server = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string name = "coffer-landlock-test-" + std::to_string(::getpid());
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  ASSERT_EQ(::bind(server, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(::listen(server, 1), 0);
  const int rc = in_child([&]() -> int {
    const int before = ::socket(AF_UNIX, SOCK_STREAM, 0);
    if (::connect(before, reinterpret_cast<sockaddr*>(&addr), len) != 0) return 1;
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 2;
    if (restrict_landlock_scopes() != 0) return 3;
    const int after = ::socket(AF_UNIX, SOCK_STREAM, 0);
    if (::connect(after, reinterpret_cast<sockaddr*>(&addr), len) == 0 || errno != EPERM) return 4;
    // signals to processes outside the domain: refused
    if (::kill(::getppid(), 0) == 0 || errno != EPERM) return 5;
    // mount and pivot_root stay possible (no filesystem access is handled): crun needs them
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return 6;
    if (::mount("tmpfs", "/tmp", "tmpfs", 0, nullptr) != 0) return 7;
    return 0;
  });
  ::close(server);
  EXPECT_EQ(rc, 0) << "check " << rc << " failed";
}

}  // namespace
}  // namespace coffer::runtime::process
