#include "runtime/vm/accel.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

#include "core/bytes.h"
#include "core/file.h"
#include "crypto/digest.h"
#include "runtime/vm/qemu_spawn.h"

namespace coffer::runtime::vm {

namespace {

namespace fs = std::filesystem;

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

std::string resolve(const std::string& program) {
  if (program.find('/') != std::string::npos) return program;
  const char* env = std::getenv("PATH");
  std::string_view dirs = env != nullptr ? env : "/usr/bin:/bin";
  while (!dirs.empty()) {
    const auto colon = dirs.find(':');
    const fs::path candidate = fs::path(dirs.substr(0, colon)) / program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  return program;
}

// "path size mtime" of a file; empty when it cannot be read.
std::string file_identity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return path + " size=" + std::to_string(st.st_size) +
         " mtime=" + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

// What the cached answer is valid for: this QEMU binary and guest kernel (by content: every
// guest image has its own copy) on this host kernel.
std::string cache_key(const AccelOptions& o) {
  const std::string qemu = file_identity(resolve(o.qemu));
  auto kernel = read_text_file(o.kernel, std::size_t{256} << 20);
  if (qemu.empty() || !kernel) return {};
  utsname u{};
  ::uname(&u);
  return "qemu=" + qemu + " kernel=sha256:" + hex_encode(crypto::sha256(as_bytes(*kernel))) +
         " host=" + u.release;
}

}  // namespace

Result<Accel> parse_accel(std::string_view name) {
  if (name == "auto") return Accel::kAuto;
  if (name == "tcg") return Accel::kTcg;
  if (name == "kvm") return Accel::kKvm;
  return make_error("usage", "unknown accelerator '" + std::string(name) + "' (auto, tcg, kvm)");
}

fs::path default_kvm_probe_cache() {
  if (::geteuid() == 0) return "/run/coffer/kvm-probe";
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && *xdg == '/') {
    return fs::path(xdg) / "coffer-kvm-probe";
  }
  return {};
}

Result<bool> probe_kvm(const AccelOptions& options) {
  if (options.kernel.empty()) return make_error("usage", "the KVM probe needs the guest's kernel");
  const fs::path dir =
      options.scratch_dir.empty() ? fs::temp_directory_path() : options.scratch_dir;
  const fs::path console = dir / ("kvm-probe-" + std::to_string(::getpid()) + ".log");
  std::vector<std::string> args = {options.qemu,
                                   "-nodefaults",
                                   "-no-user-config",
                                   "-display",
                                   "none",
                                   "-machine",
                                   "pc,accel=" + options.probe_accelerator,
                                   "-cpu",
                                   "max",
                                   "-m",
                                   "256",
                                   "-kernel",
                                   options.kernel.string(),
                                   "-append",
                                   "console=ttyS0 panic=-1",
                                   "-serial",
                                   "file:" + console.string(),
                                   "-no-reboot"};
  const pid_t pid = COFFER_TRY(spawn_qemu(args, -1));
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  bool exited = false;
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    int r = 0;
    while ((r = ::poll(&p, 1, static_cast<int>(options.probe_timeout.count()))) < 0 &&
           errno == EINTR) {
    }
    exited = r > 0;
    ::close(pidfd);
  }
  if (!exited) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  auto log = read_text_file(console, std::size_t{1} << 20);
  std::error_code ec;
  fs::remove(console, ec);
  return exited && WIFEXITED(status) && WEXITSTATUS(status) == 0 && log &&
         log->contains("Kernel panic");
}

Result<AccelChoice> choose_accel(Accel wanted, const AccelOptions& options) {
  if (wanted == Accel::kTcg) return AccelChoice{"tcg", "TCG (asked for)"};
  const int dev = ::open(options.kvm_device.c_str(), O_RDWR | O_CLOEXEC);
  if (dev < 0) {
    const std::string why = errno_text(options.kvm_device.string());
    if (wanted == Accel::kKvm) return make_error("kvm_unusable", "KVM was asked for: " + why);
    return AccelChoice{"tcg", "TCG (" + why + ")"};
  }
  ::close(dev);
  const std::string key = cache_key(options);
  std::optional<bool> usable;
  bool cached = false;
  if (!options.cache_file.empty() && !key.empty()) {
    if (auto text = read_text_file(options.cache_file, 4096); text) {
      if (*text == key + " kvm=1\n") usable = true;
      if (*text == key + " kvm=0\n") usable = false;
      cached = usable.has_value();
    }
  }
  if (!usable) {
    usable = COFFER_TRY(probe_kvm(options));
    if (!options.cache_file.empty() && !key.empty()) {
      std::error_code ec;
      fs::create_directories(options.cache_file.parent_path(), ec);
      // a cache that cannot be written only costs the next launch another probe
      const std::string line = key + (*usable ? " kvm=1\n" : " kvm=0\n");
      (void)write_file_atomic(options.cache_file, as_bytes(line), 0644);
    }
  }
  const std::string source = cached ? " (cached probe)" : "";
  if (*usable) return AccelChoice{"kvm", "KVM: the guest's kernel ran under it" + source};
  if (wanted == Accel::kKvm) {
    return make_error("kvm_unusable",
                      "KVM was asked for, but the guest's kernel did not run under KVM to its "
                      "probe panic within " +
                          std::to_string(options.probe_timeout.count()) + " ms" + source);
  }
  return AccelChoice{"tcg",
                     "TCG: /dev/kvm opens but the guest's kernel did not run under KVM" + source};
}

}  // namespace coffer::runtime::vm
