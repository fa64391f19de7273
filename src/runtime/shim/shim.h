// containerd-shim-coffer-v2: containerd's runtime v2 calling conventions (containerd 1.6).
//
//   start   (in the bundle directory, TTRPC_ADDRESS set, runtime options on stdin): prints only
//           the shim's ttrpc address (unix:///...) on stdout. A CRI container whose pod already
//           has a shim gets that shim's address; otherwise a new shim daemon is forked, which
//           detaches (own session, stdin/stdout on /dev/null, stderr on the bundle's `log` FIFO)
//           and serves containerd.task.v2.Task until Shutdown.
//   delete  (-bundle DIR): cleans up after a shim that is gone and prints a DeleteResponse.
//
// Files: <run_dir>/<pod key>.sock (the ttrpc socket) and <run_dir>/<pod key>/ (the enclave's
// run directory, the agent's log), the pod key being a digest of containerd's address, the
// namespace and the pod id; <bundle>/coffer-shim.json says which (for `delete`), <bundle>/address
// the address. All of it is removed when the shim exits.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace coffer::runtime::shim {

// The pod key: 32 hex digits of SHA-256(address NUL namespace NUL pod).
std::string pod_key(std::string_view address, std::string_view ns, std::string_view pod);

// The whole program (apps/containerd-shim-coffer-v2).
int shim_main(int argc, char** argv);

}  // namespace coffer::runtime::shim
