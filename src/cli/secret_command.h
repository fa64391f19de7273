// `coffer secret`: CoCo sealed secrets, made on the owner's side and unsealed only inside an
// attested enclave (the agent's data hub; docs/init-data.md, [sealed_secret]).
#pragma once

#include <CLI/CLI.hpp>

namespace coffer::cli {

// Adds
//   `secret seal --signing-key KEY.pem --kid kbs:///R/T/G --resource kbs:///R/T/G` — prints
//       "sealed.<JWS>": a vault secret naming the KBS resource that holds the value, signed
//       (ES256 with a P-256 key, EdDSA with Ed25519, RS256 with RSA) by the key whose public JWK
//       the enclave fetches from `--kid` (listed in cdh.toml [sealed_secret] verification_keys);
//   `secret verification-key --signing-key KEY.pem` — prints that public JWK, to store at the
//       `--kid` resource with `coffer kbs set-resource`.
// Exit codes: the shared table (src/cli/exit.h).
void add_secret_command(CLI::App& app);

}  // namespace coffer::cli
