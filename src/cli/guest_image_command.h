// `coffer guest-image`: the VM enclave's guest image (docs/vm-enclave.md).
//   coffer guest-image build --agent PATH --init PATH --out DIR [--kernel-package DIR]
//       [--crun PATH] [--busybox PATH] [--module NAME]... [--cmdline TEXT] [--tee TEE]
//       [--format json|rvps]
//     writes DIR/vmlinuz, DIR/initrd, DIR/cmdline (reproducible: the same inputs give the same
//     bytes) and prints the reference values a VM booted from them reports (the simulated TEE's
//     measurement model, as `coffer sim measure --kernel --initrd --cmdline` prints them)
#pragma once

#include <CLI/CLI.hpp>

namespace coffer::cli {

void add_guest_image_command(CLI::App& app);

}  // namespace coffer::cli
