// Standalone `coffer_policy_eval policy eval ...` for testing the policy engine without the
// full `coffer` CLI.
#include <CLI/CLI.hpp>

#include "cli/policy_command.h"
#include "core/main.h"

namespace {

int run(int argc, char** argv) {
  CLI::App app{"coffer policy engine"};
  app.require_subcommand(1);
  coffer::cli::add_policy_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    // Usage errors exit with 2 like evaluation errors; --help exits 0.
    return code == 0 ? 0 : 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return coffer::run_main("coffer_policy_eval", [&] { return run(argc, argv); });
}
