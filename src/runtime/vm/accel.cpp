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

namespace coffer::runtime::vm {

namespace {

namespace fs = std::filesystem;

constexpr int kProbeExitStatus = (0x31 << 1) | 1;

// A multiboot (v1) kernel with the "a.out kludge" (flags bit 16): the header's address fields
// tell the loader to put the file at 1 MiB and jump to the code that follows the header, in
// 32-bit protected mode. Multiboot Specification 0.6.96, section 3.1.
std::vector<std::uint8_t> probe_kernel() {
  constexpr std::uint32_t kMagic = 0x1BADB002;
  constexpr std::uint32_t kFlags = 1U << 16;
  constexpr std::uint32_t kLoad = 0x100000;
  constexpr std::uint32_t kHeaderSize = 32;
  const std::array<std::uint32_t, 8> header = {
      kMagic,
      kFlags,
      static_cast<std::uint32_t>(0U - (kMagic + kFlags)),
      kLoad,                 // header_addr: the header is the file's first byte
      kLoad,                 // load_addr
      0,                     // load_end_addr: the whole file
      0,                     // bss_end_addr: no bss
      kLoad + kHeaderSize};  // entry_addr
  std::vector<std::uint8_t> out;
  for (const std::uint32_t v : header) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  // mov al, 0x31; out 0xf4, al; hlt; jmp -3 (back to hlt)
  for (const std::uint8_t b : {0xB0, 0x31, 0xE6, 0xF4, 0xF4, 0xEB, 0xFD}) out.push_back(b);
  return out;
}

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

// What the cached answer is valid for: this QEMU binary on this host kernel.
std::string cache_key(const std::string& qemu) {
  std::string path = qemu;
  if (qemu.find('/') == std::string::npos) {
    const char* env = std::getenv("PATH");
    std::string_view dirs = env != nullptr ? env : "/usr/bin:/bin";
    while (!dirs.empty()) {
      const auto colon = dirs.find(':');
      const fs::path candidate = fs::path(dirs.substr(0, colon)) / qemu;
      if (::access(candidate.c_str(), X_OK) == 0) {
        path = candidate.string();
        break;
      }
      if (colon == std::string_view::npos) break;
      dirs.remove_prefix(colon + 1);
    }
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  utsname u{};
  ::uname(&u);
  return "qemu=" + path + " size=" + std::to_string(st.st_size) +
         " mtime=" + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) +
         " kernel=" + u.release;
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
  const fs::path dir =
      options.scratch_dir.empty() ? fs::temp_directory_path() : options.scratch_dir;
  const fs::path kernel = dir / ("kvm-probe-" + std::to_string(::getpid()) + ".bin");
  const auto image = probe_kernel();
  COFFER_TRY(write_file_atomic(kernel, ByteView(image.data(), image.size()), 0600));
  std::vector<std::string> args = {options.qemu,
                                   "-nodefaults",
                                   "-no-user-config",
                                   "-display",
                                   "none",
                                   "-machine",
                                   "pc,accel=" + options.probe_accelerator,
                                   "-m",
                                   "16",
                                   "-kernel",
                                   kernel.string(),
                                   "-device",
                                   "isa-debug-exit,iobase=0xf4,iosize=0x04",
                                   "-no-reboot"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::error_code ec;
    fs::remove(kernel, ec);
    return make_error("launch_failed", errno_text("fork"));
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    const int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
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
  std::error_code ec;
  fs::remove(kernel, ec);
  return exited && WIFEXITED(status) && WEXITSTATUS(status) == kProbeExitStatus;
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
  const std::string key = cache_key(options.qemu);
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
  if (*usable) return AccelChoice{"kvm", "KVM: the probe guest ran" + source};
  if (wanted == Accel::kKvm) {
    return make_error("kvm_unusable",
                      "KVM was asked for, but a guest under KVM did not run to its exit within " +
                          std::to_string(options.probe_timeout.count()) + " ms" + source);
  }
  return AccelChoice{"tcg", "TCG: /dev/kvm opens but a guest under KVM did not run" + source};
}

}  // namespace coffer::runtime::vm
