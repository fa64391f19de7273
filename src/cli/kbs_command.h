// `coffer kbs ...`: the KBS client (attest, get-resource) and admin commands. Exit codes: the
// table in cli/exit.h (docs/cli.md).
#pragma once

#include <CLI/CLI.hpp>

namespace coffer::cli {

void add_kbs_command(CLI::App& app);

}  // namespace coffer::cli
