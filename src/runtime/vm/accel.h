// Which QEMU accelerator the VM enclave uses (docs/vm-enclave.md, "Accelerator"). KVM only when
// a probe shows that it actually runs the guest's kernel: on some hosts /dev/kvm opens and even
// runs simple 32-bit code, yet every Linux guest hangs after its real-mode setup (this machine:
// a 39-byte multiboot kernel ran under KVM in ~2 s, Debian's cloud kernel printed one line in
// 25 s). So "the device opens" or "a toy guest ran" is not evidence enough.
//
// The probe: qemu-system-x86_64 under KVM boots the guest image's own kernel with no initramfs
// and `panic=-1`: a kernel that runs gets as far as mounting a root file system, panics, and
// (with -no-reboot) QEMU exits; the console must show "Kernel panic". Under TCG this takes
// ~2.5 s, under a working KVM well under one; no exit within the timeout means no KVM. The
// answer is cached in a small file keyed by the QEMU binary (path, size, mtime), the kernel's
// SHA-256 and the host kernel's release, so only the first VM after a host boot pays for it.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include "core/error.h"

namespace coffer::runtime::vm {

enum class Accel { kAuto, kTcg, kKvm };

// "auto", "tcg", "kvm"; anything else is "usage".
Result<Accel> parse_accel(std::string_view name);

struct AccelChoice {
  std::string accel;   // "tcg" or "kvm": QEMU's -machine accel=
  std::string reason;  // one line for the launcher's progress output
};

struct AccelOptions {
  std::string qemu = "qemu-system-x86_64";
  std::filesystem::path kvm_device = "/dev/kvm";
  // The kernel the probe boots (the guest image's vmlinuz).
  std::filesystem::path kernel;
  std::chrono::milliseconds probe_timeout = std::chrono::seconds(4);
  // The cache of the probe's answer; empty: no cache (probe every time).
  std::filesystem::path cache_file;
  // Where the probe writes its console log while it runs (removed after; default: the temp dir).
  std::filesystem::path scratch_dir;
  // The accelerator the probe runs under: tests run it under "tcg" to show that the probe
  // passes where the guest runs.
  std::string probe_accelerator = "kvm";
};

// The default cache: /run/coffer/kvm-probe for root, else $XDG_RUNTIME_DIR/coffer-kvm-probe,
// else none.
std::filesystem::path default_kvm_probe_cache();

// Runs the probe (no cache): true when the kernel ran under KVM to its panic.
Result<bool> probe_kvm(const AccelOptions& options);

// kTcg: "tcg". kKvm: "kvm" if the probe passes, else "kvm_unusable". kAuto: "kvm" if /dev/kvm
// opens and the probe (or its cached answer) passes, else "tcg".
Result<AccelChoice> choose_accel(Accel wanted, const AccelOptions& options);

}  // namespace coffer::runtime::vm
