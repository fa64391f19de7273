// The one place `coffer run` gets an enclave from (src/cli/enclave_factory.cpp, linked into the
// `coffer` executable as coffer_cli_enclaves): the process enclave of src/runtime/process and
// the VM enclave of src/runtime/vm (QEMU). There is no other launcher, test-only or not.
#pragma once

#include <memory>
#include <string_view>

#include "core/error.h"
#include "runtime/launcher.h"

namespace coffer::cli {

// Launches an enclave of `kind` ("process", "vm": spec.enclave_image is then the guest image).
// Returns when the agent answers Health. "enclave_unavailable" when this build has no launcher for
// `kind`.
Result<std::unique_ptr<runtime::Enclave>> launch_enclave(std::string_view kind,
                                                         const runtime::EnclaveSpec& spec,
                                                         const runtime::LaunchObserver& observer);

}  // namespace coffer::cli
