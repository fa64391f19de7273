// The process enclave's kernel-side confinement beyond namespaces (docs/process-enclave.md §3):
// a seccomp deny list and Landlock scopes. Filters are built in the launcher (they allocate) and
// installed by the enclave's first process right before it execs the agent, with only syscalls.
#pragma once

#include <linux/filter.h>

#include <string>
#include <vector>

#include "core/error.h"

namespace coffer::runtime::process {

// The syscalls the enclave may not make (each fails with EPERM); crun still works with all of
// them denied. Syscalls of other ABIs than the native one (i386, x32) kill the caller.
const std::vector<std::string>& seccomp_denied_syscalls();
// The syscalls that fail with ENOSYS, as if the kernel did not have them (the key management
// syscalls: crun goes on without a keyring then).
const std::vector<std::string>& seccomp_unavailable_syscalls();

// The deny list compiled to a classic BPF program (libseccomp, native architecture).
Result<std::vector<sock_filter>> build_seccomp_filter();

// The Landlock ABI version of the running kernel (0: Landlock unavailable).
int landlock_abi_version();

// Restricts the calling thread (and what it execs and forks) to the Landlock scopes
// ABSTRACT_UNIX_SOCKET and SIGNAL (ABI >= 6): no connecting to abstract Unix sockets, no
// signals, outside this domain. Needs no_new_privs or CAP_SYS_ADMIN. Only syscalls (usable in a
// child after clone). Returns 0 or an errno value.
int restrict_landlock_scopes() noexcept;

}  // namespace coffer::runtime::process
