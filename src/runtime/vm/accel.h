// Which QEMU accelerator the VM enclave uses (docs/vm-enclave.md, "Accelerator"). KVM only when
// a probe shows that it actually runs a guest: on some hosts /dev/kvm opens but every guest hangs
// at its first instruction, so "the device opens" is not evidence enough.
//
// The probe: qemu-system-x86_64 under KVM boots a 39-byte multiboot kernel whose only
// instructions write 0x31 to QEMU's isa-debug-exit port, which makes QEMU exit with status
// (0x31 << 1) | 1 = 99; any other outcome, or no exit within the timeout, means no KVM. It costs
// a QEMU start (~0.1-0.3 s) when KVM works and the timeout when it hangs, so the answer is cached
// in a small file keyed by the QEMU binary (path, size, mtime) and the host kernel's release.
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
  std::chrono::milliseconds probe_timeout = std::chrono::milliseconds(1500);
  // The cache of the probe's answer; empty: no cache (probe every time).
  std::filesystem::path cache_file;
  // Where the probe writes its kernel while it runs (removed after; default: the temp dir).
  std::filesystem::path scratch_dir;
  // The accelerator the probe runs under: tests run it under "tcg" to show that the probe
  // kernel itself exits as it should.
  std::string probe_accelerator = "kvm";
};

// The default cache: /run/coffer/kvm-probe for root, else $XDG_RUNTIME_DIR/coffer-kvm-probe,
// else none.
std::filesystem::path default_kvm_probe_cache();

// Runs the probe (no cache): true when a KVM guest ran to its exit.
Result<bool> probe_kvm(const AccelOptions& options);

// kTcg: "tcg". kKvm: "kvm" if the probe passes, else "kvm_unusable". kAuto: "kvm" if /dev/kvm
// opens and the probe (or its cached answer) passes, else "tcg".
Result<AccelChoice> choose_accel(Accel wanted, const AccelOptions& options);

}  // namespace coffer::runtime::vm
