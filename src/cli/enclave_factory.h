// The one place `coffer run` gets an enclave from: a link-time choice, so that no user-facing
// option can pick a test-only launcher.
//
//   - the `coffer` executable links src/cli/enclave_factory.cpp: the real launchers
//     (the process enclave of src/runtime/process; fails closed while it is not built in);
//   - the test executable `coffer-run-test` links apps/test/run/test_launcher.cpp instead: the
//     agent as a plain process with the simulated TEE's quote service (tests only).
#pragma once

#include <memory>
#include <string_view>

#include "core/error.h"
#include "runtime/launcher.h"

namespace coffer::cli {

// Launches an enclave of `kind` ("process"). Returns when the agent answers Health.
// "enclave_unavailable" when this build has no launcher for `kind`.
Result<std::unique_ptr<runtime::Enclave>> launch_enclave(std::string_view kind,
                                                         const runtime::EnclaveSpec& spec,
                                                         const runtime::LaunchObserver& observer);

}  // namespace coffer::cli
