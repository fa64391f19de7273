// `coffer run` and the commands for containers it started with --detach: `coffer ps`, `logs`,
// `stop`, `rm` (docs/run.md).
#pragma once

#include <CLI/CLI.hpp>

namespace coffer::cli {

void add_run_command(CLI::App& app);

}  // namespace coffer::cli
