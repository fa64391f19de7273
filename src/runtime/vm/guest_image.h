// The VM enclave's guest image (docs/vm-enclave.md): a kernel (Debian's cloud kernel, unpacked by
// scripts/install-deps into /var/cache/coffer/guest-kernel/<version>/), an initramfs and a kernel
// command line. The three are what the simulated TEE measures for a VM (evidence/sim/measure.h:
// kernel, initrd, cmdline), so they must be reproducible: the same inputs give byte-identical
// files.
//
// OUT/vmlinuz   the kernel, copied unchanged
// OUT/initrd    cpio "newc" (uncompressed), entries sorted by path, owner 0:0, mtime 0, inode
//               numbers in entry order, modes normalised (0755 directories and executables,
//               0644 other files); it holds
//                 /init                          coffer-guest-init (PID 1)
//                 /usr/bin/coffer-agent, /usr/bin/crun, /bin/busybox, their shared libraries
//                   and the dynamic loader at the host's paths
//                 /lib/modules/<version>/kernel/...ko   the modules the guest loads
//                 /etc/coffer/modules            their paths in load (dependency) order
//                 /dev /proc /sys /run /tmp /mnt (empty directories)
// OUT/cmdline   the kernel command line (no trailing newline)
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"

namespace coffer::runtime::vm {

inline constexpr std::string_view kDefaultKernelCache = "/var/cache/coffer/guest-kernel/current";
inline constexpr std::string_view kGuestInitPath = "/init";
inline constexpr std::string_view kGuestAgentPath = "/usr/bin/coffer-agent";
inline constexpr std::string_view kGuestModuleList = "/etc/coffer/modules";
// The kernel command line by default: serial console (the launcher's log), no reboot loop on a
// panic (the VM powers off and the launcher reports the log).
inline constexpr std::string_view kDefaultCmdline = "console=ttyS0 panic=-1 loglevel=4";

// The modules the guest needs (names as the kernel knows them, '_' not '-'); their dependencies
// come in too. virtio_pci: the PCI transport; virtio_console: the virtio-serial ports (agent API,
// quote service); virtio_net: the network.
std::vector<std::string> default_guest_modules();

struct GuestImageOptions {
  // An unpacked kernel package: boot/vmlinuz-<version> and lib/modules/<version>/.
  std::filesystem::path kernel_package = std::string(kDefaultKernelCache);
  std::filesystem::path init;   // coffer-guest-init
  std::filesystem::path agent;  // coffer-agent
  std::filesystem::path crun = "/usr/bin/crun";
  std::filesystem::path busybox = "/bin/busybox";  // busybox-static
  std::vector<std::string> modules = default_guest_modules();
  std::string cmdline = std::string(kDefaultCmdline);
  // The agent and the init without their debug sections (objcopy --strip-debug, as
  // `coffer enclave build` does): a smaller initramfs boots faster. false: as they are.
  bool strip_debug = true;
};

struct GuestImage {
  std::filesystem::path kernel, initrd, cmdline_file;
  std::string cmdline;
  std::string kernel_version;
  std::vector<std::string> modules;  // module paths inside the image, in load order
};

// The kernel version of an unpacked package: the one boot/vmlinuz-<version>
// ("bad_kernel_package" if none or several).
Result<std::string> kernel_version(const std::filesystem::path& kernel_package);

// The module files (relative to lib/modules/<version>/) to load for `wanted`, dependencies
// first, each once, read from the modules' own .modinfo ("depends="). Modules built into the
// kernel (modules.builtin) are skipped. Errors: "module_not_found", "bad_module" (not an ELF
// object with a .modinfo section), "module_dependency_cycle".
Result<std::vector<std::string>> module_load_order(const std::filesystem::path& modules_dir,
                                                   const std::vector<std::string>& wanted);

// Writes OUT/vmlinuz, OUT/initrd and OUT/cmdline. OUT must not exist or be empty
// ("already_exists"). Errors: "not_found", "bad_kernel_package", the module errors,
// "ldd_failed", "io_error", "usage" (a command line with a newline or NUL).
Result<GuestImage> build_guest_image(const GuestImageOptions& options,
                                     const std::filesystem::path& out_dir);

}  // namespace coffer::runtime::vm
