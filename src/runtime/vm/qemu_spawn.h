// The one way the VM enclave starts QEMU (the launcher and the KVM probe): a child that dies
// with the thread that started it (PR_SET_PDEATHSIG = SIGKILL), stdin /dev/null, stdout and
// stderr to `out_fd` (-1: /dev/null).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "core/error.h"

namespace coffer::runtime::vm {

// Errors: "launch_failed" (fork). A QEMU that cannot be executed exits 127.
Result<pid_t> spawn_qemu(const std::vector<std::string>& args, int out_fd);

}  // namespace coffer::runtime::vm
