// `coffer policy eval`: evaluate a Rego query against policy files, input and data.
#pragma once

#include <CLI/CLI.hpp>

namespace coffer::cli {

// Adds `policy eval --policy F.rego [--policy G.rego ...] [--input I.json] [--data D.json]
// [--explain] QUERY`. Prints the result as JSON, or `undefined`, on stdout; with --explain and an
// undefined or false result, the explanation on stderr.
// Exit codes: 0 evaluated (defined or undefined), 2 usage, file, parse, compile or evaluation
// error (message on stderr). The command throws CLI::RuntimeError(2) for the latter.
void add_policy_command(CLI::App& app);

}  // namespace coffer::cli
