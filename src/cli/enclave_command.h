// `coffer enclave`: the process enclave's image (docs/process-enclave.md).
//   coffer enclave build --agent PATH --out DIR [--crun PATH] [--file PATH]...
//       collects coffer-agent, crun, their libraries and the loader into DIR/rootfs and writes
//       DIR/manifest; prints the manifest summary as JSON
//   coffer enclave measure DIR [--init-data F] [--format json|rvps]
//       checks DIR against its manifest and prints the reference values an enclave launched
//       from it reports (as `coffer sim measure --agent DIR/rootfs/usr/bin/coffer-agent
//       --rootfs-manifest DIR/manifest` does)
#pragma once

#include <CLI/CLI.hpp>

namespace coffer::cli {

void add_enclave_command(CLI::App& app);

}  // namespace coffer::cli
