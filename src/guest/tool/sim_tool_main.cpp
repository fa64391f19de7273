// coffer_sim_tool: `coffer sim ...` plus a minimal KBS client, for end-to-end tests of the
// simulated TEE without the full `coffer` executable.
//   coffer_sim_tool sim init|measure|quote-service ...
//   coffer_sim_tool get-resource --url U --tee T [--quote-service S] [--init-data F] PATH
#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/sim_command.h"
#include "core/file.h"
#include "core/main.h"
#include "guest/aa/attester.h"
#include "guest/aa/kbs_client.h"

namespace {

int run(int argc, char** argv) {
  CLI::App app("coffer simulated TEE tool");
  app.require_subcommand(1);
  coffer::cli::add_sim_command(app);

  std::string url, tee = "sim-tdx", socket, init_data, path;
  auto* get = app.add_subcommand("get-resource", "attest and fetch one resource to stdout");
  get->add_option("--url", url)->required();
  get->add_option("--tee", tee);
  get->add_option("--quote-service", socket);
  get->add_option("--init-data", init_data);
  get->add_option("path", path)->required();
  get->callback([&] {
    coffer::guest::aa::AttesterOptions o;
    o.quote_service_socket = socket;
    auto attester = coffer::guest::aa::make_attester(tee, o);
    if (!attester) {
      std::cerr << attester.error().to_string() << "\n";
      throw CLI::RuntimeError(1);
    }
    coffer::guest::aa::KbsClientOptions co;
    if (!init_data.empty()) {
      auto text = coffer::read_text_file(init_data);
      if (!text) throw CLI::RuntimeError(1);
      co.init_data_toml = *text;
    }
    coffer::guest::aa::KbsClient client(url, **attester, co);
    auto value = client.get_resource(path);
    if (!value) {
      std::cerr << value.error().to_string() << "\n";
      throw CLI::RuntimeError(value.error().code == "kbs_forbidden" ? 4 : 1);
    }
    std::cout.write(reinterpret_cast<const char*>(value->data()),
                    static_cast<std::streamsize>(value->size()));
  });
  CLI11_PARSE(app, argc, argv);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return coffer::run_main("coffer_sim_tool", [&] { return run(argc, argv); });
}
