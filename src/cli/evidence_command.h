// `coffer evidence`: decode and verify TEE evidence offline.
#pragma once

#include <CLI/CLI.hpp>

namespace coffer::cli {

// Adds
//   evidence inspect FILE
//       Decodes a TDX quote (v4/v5), SGX quote (v3), SEV-SNP report (raw or CoCo JSON), CC event
//       log, or CoCo evidence JSON ({"quote": ...} / {"attestation_report": ...}) and prints it
//       as JSON.
//   evidence verify FILE [--collateral DIR | --pccs URL] [--at RFC3339] [--root PEM]
//                        [--eventlog FILE] [--vek DIR | --kds URL] [--report-data HEX]
//       Verifies the evidence against the vendor roots (or --root) and prints
//       {"verdict", "status", "error"?, "claims"?}. Without --report-data, REPORTDATA is taken
//       from the evidence itself (not checked).
// Exit codes: 0 accepted, 1 rejected (the verifier's error code is printed), 2 usage or I/O error
// (message on stderr). Errors other than 0 are thrown as CLI::RuntimeError(code).
void add_evidence_command(CLI::App& app);

}  // namespace coffer::cli
