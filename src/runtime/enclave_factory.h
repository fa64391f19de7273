// The one place the host side gets an enclave from: `coffer run` (src/cli) and
// containerd-shim-coffer-v2 (src/runtime/shim). The process enclave of src/runtime/process and
// the VM enclave of src/runtime/vm (QEMU); there is no other launcher, test-only or not. Linked
// as coffer_runtime_enclaves (the `coffer` executable through coffer_cli_enclaves).
#pragma once

#include <memory>
#include <string_view>

#include "core/error.h"
#include "runtime/launcher.h"

namespace coffer::runtime {

// Launches an enclave of `kind` ("process", "vm": spec.enclave_image is then the guest image).
// Returns when the agent answers Health. "enclave_unavailable" when this build has no launcher for
// `kind`.
Result<std::unique_ptr<Enclave>> launch_enclave(std::string_view kind, const EnclaveSpec& spec,
                                                const LaunchObserver& observer);

}  // namespace coffer::runtime
