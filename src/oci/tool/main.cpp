// Standalone `coffer_image_tool image ...` for testing the image commands without the full
// `coffer` CLI (the lead wires image_command into `coffer`).
#include <CLI/CLI.hpp>

#include "cli/image_command.h"
#include "core/main.h"

namespace {

int run(int argc, char** argv) {
  CLI::App app{"coffer image tool"};
  app.require_subcommand(1);
  coffer::cli::add_image_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return coffer::run_main("coffer_image_tool", [&] { return run(argc, argv); });
}
