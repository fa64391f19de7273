// The process enclave (docs/process-enclave.md): coffer-agent from an enclave image, isolated in
// its own user, mount, PID, IPC and UTS namespaces (and a network namespace when
// EnclaveSpec::host_network is false), pivot_root'ed into a fresh tmpfs that holds only the
// checked copy of the image, /proc, a minimal /dev, private storage and the agent socket
// directory; seccomp, Landlock scopes, rlimits, an empty environment. The launcher measures what
// it copied (docs/simulated-tee.md §2) and serves the enclave's quote service from a thread of its
// own process, on a socket that exists only inside the enclave's root.
//
// Launch from a thread that lives as long as the enclave (typically the main thread): the
// enclave's first process has PR_SET_PDEATHSIG = SIGKILL, which the kernel fires when the
// *thread* that started it exits; killing it takes down the whole enclave (PID namespace).
// The enclave's first process is a child of the caller: SIGCHLD must not be ignored (SIG_IGN
// would reap it behind the launcher's back), and a caller that reaps with waitpid(-1) must leave
// Enclave::pid() to wait()/stop().
#pragma once

#include <memory>

#include "core/error.h"
#include "runtime/launcher.h"

namespace coffer::runtime::process {

// Errors (by step): "usage" (spec), the enclave image codes of enclave_image.h (refused before
// any process starts), the sim PKI and measurement errors, "launch_failed" (namespaces, mounts,
// the agent's exec), "agent_exited" (the agent ended before it answered Health; its log says
// why), "agent_not_ready" (no Health answer within the timeout).
Result<std::unique_ptr<Enclave>> launch_process_enclave(const EnclaveSpec& spec,
                                                        const LaunchObserver& observer = {});

}  // namespace coffer::runtime::process
