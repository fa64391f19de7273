// `coffer sim`: the simulated TEE (docs/simulated-tee.md).
//   coffer sim init --dir D [--force]                 generate the simulation PKI and collateral
//   coffer sim measure <enclave> [--init-data F]      print the reference values it will report
//   coffer sim quote-service --dir D --socket S <enclave> [--init-data F] [--debug]
//                                                     serve evidence for that enclave until
//                                                     SIGINT/SIGTERM
// where <enclave> is `--agent F --rootfs-manifest F` (process enclave) or
// `--kernel F [--initrd F] [--cmdline S]` (VM).
// Exit codes: 0 success; 1 failure (message on stderr); 3 `init` refused to overwrite.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "evidence/sim/measure.h"

namespace coffer::cli {

void add_sim_command(CLI::App& app);

// What `coffer sim measure` prints: the reference values as JSON (format "json") or one RVPS
// message (format "rvps"). `coffer enclave measure` prints the same.
void print_reference_values(const evidence::sim::LaunchMeasurements& m, const std::string& format);
// The same for reference values already named (name -> value).
void print_reference_values(const Json& reference_values, const std::string& format);

}  // namespace coffer::cli
