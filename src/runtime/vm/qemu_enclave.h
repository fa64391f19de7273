// The VM enclave's launcher (docs/vm-enclave.md): QEMU (qemu-system-x86_64) boots a guest image
// that `coffer guest-image build` wrote (EnclaveSpec::enclave_image = that directory: vmlinuz,
// initrd, cmdline); coffer-guest-init (PID 1) starts coffer-agent on the virtio-serial port
// "coffer.agent", which QEMU exposes on the host as the Unix socket RUN_DIR/agent-port.sock.
// The launcher holds the one connection to it and serves agent_socket() = RUN_DIR/agent.sock, a
// ttrpc multiplexer: any number of host clients at once, each request a stream id unique on the
// port, answers routed back to their client, answers to a client that has gone dropped.
//
//   qemu-system-x86_64 -nodefaults -no-user-config -display none -machine pc,accel=tcg
//     -cpu max -smp 1 -m M -object memory-backend-memfd (guest RAM in a memfd)
//     -kernel/-initrd/-append from the image, -serial file:CONSOLE_LOG, -no-reboot
//     -device virtio-serial-pci + virtserialport name=coffer.agent on a server socket chardev
//     -netdev user (QEMU's user networking: the guest is 10.0.2.15, the host 10.0.2.2)
//
// launch returns once the agent answered Health SERVING through the port. A guest that stops
// before that, or does not answer within VmOptions::ready_timeout, is killed and the error
// points at the console log (and quotes its last lines); that log is then left in place (the
// caller removes RUN_DIR). Teardown (stop(), the destructor)
// kills QEMU (SIGTERM, then SIGKILL after the grace period) and removes the socket, the logs it
// created in RUN_DIR and RUN_DIR itself if the launch created it. QEMU gets PR_SET_PDEATHSIG =
// SIGKILL: it dies with the thread that launched it.
//
// sim-tdx / sim-snp: a second port, "coffer.quote", carries the simulated TEE's quote service
// protocol (evidence/sim/quote_service.h), answered in the launcher's process by a QuoteService
// for this VM's measurements (kernel, initrd, command line, init-data); the guest's init serves
// it to the agent as /run/coffer-quote/quote.sock. The same port hands the guest its init-data
// once ({"op":"init_data"} -> {"init_data": base64 | null}); MRCONFIGID / HOST_DATA bind it.
// "sample" images get no quote port and no init-data. The accelerator is TCG unless KVM passes
// the probe of accel.h (VmOptions::accel).
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "core/error.h"
#include "runtime/launcher.h"
#include "runtime/vm/accel.h"

namespace coffer::runtime::vm {

struct VmOptions {
  std::string qemu = "qemu-system-x86_64";
  unsigned memory_mib = 512;  // the initramfs is unpacked into guest RAM
  unsigned vcpus = 1;
  std::chrono::milliseconds ready_timeout = std::chrono::seconds(30);
  // The cache of the KVM probe (accel.h) that EnclaveSpec::vm_accel "auto" and "kvm" run.
  std::filesystem::path kvm_probe_cache = default_kvm_probe_cache();
  // Tests of a hostile host: what the init-data port hands the guest instead of
  // EnclaveSpec::init_data (which MRCONFIGID / HOST_DATA still bind). The host can always do
  // this; the agent must refuse the init-data that its TEE does not bind.
  std::optional<std::string> delivered_init_data;
};

// Errors: "usage" (spec), "bad_guest_image" (missing vmlinuz/initrd/cmdline, or the image's
// coffer.tee is not spec.tee), "not_supported" (a TEE other than sim-tdx, sim-snp or sample, or
// init-data with sample), the measurement errors, "launch_failed" (QEMU could not start),
// "vm_exited" (the VM stopped before the agent answered), "agent_not_ready" (no Health SERVING
// within ready_timeout), "kvm_unusable" (spec.vm_accel "kvm" and the probe failed).
Result<std::unique_ptr<Enclave>> launch_vm_enclave(const EnclaveSpec& spec,
                                                   const VmOptions& options = {},
                                                   const LaunchObserver& observer = {});

}  // namespace coffer::runtime::vm
