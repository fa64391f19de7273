// coffer_evidence_tool: the `coffer evidence` command group as a standalone binary, for testing
// it without the whole `coffer` CLI (exit codes: 0 accepted, 1 rejected, 2 usage or I/O error).
#include <CLI/CLI.hpp>

#include "cli/evidence_command.h"
#include "core/main.h"

namespace {

int run(int argc, char** argv) {
  CLI::App app{"coffer evidence tool"};
  app.require_subcommand(1);
  coffer::cli::add_evidence_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return coffer::run_main("coffer_evidence_tool", [&] { return run(argc, argv); });
}
