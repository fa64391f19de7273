// coffer-app-enclave: the app enclave's boot step (PID 1 of the app enclave; docs/two-enclave.md).
// Its logic is in src/runtime/appenclave/boot.cpp.
#include <unistd.h>

#include <algorithm>
#include <string>

#include <CLI/CLI.hpp>

#include "core/main.h"
#include "core/version.h"
#include "runtime/appenclave/boot.h"

namespace {

namespace ae = coffer::runtime::appenclave;

int run(int argc, char** argv) {
  CLI::App app{"coffer-app-enclave: the app enclave's boot step (docs/two-enclave.md)"};
  app.set_version_flag("--version", coffer::version_line("coffer-app-enclave"));
  ae::BootOptions o;
  std::string quote_service;
  std::string storage;
  std::string agent_socket;
  app.add_option("--quote-service", quote_service, "the enclave's quote service socket")
      ->required();
  app.add_option("--storage", storage, "the host storage holding the bundle")->required();
  app.add_option("--status-fd", o.status_fd, "where to report started / error <code> <message>")
      ->required();
  app.add_option("--bundle", o.bundle_id, "the bundle id")->required();
  app.add_option("--key-handover", o.key_handover, "seal or local")->capture_default_str();
  app.add_option("--agent-socket", agent_socket, "local: the agent enclave's agent.sock");
  app.add_option("--agent-mr-enclave", o.agent_mr_enclave,
                 "local: the agent enclave's MRENCLAVE (hex)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    if (rc == 0) return 0;
    if (o.status_fd >= 0) {
      std::string line = "error usage " + std::string(e.what());
      std::ranges::replace(line, '\n', ' ');
      line += "\n";
      (void)!::write(o.status_fd, line.data(), line.size());
    }
    return 125;
  }
  o.quote_service = quote_service;
  o.storage = storage;
  o.agent_socket = agent_socket;
  return ae::run_boot(o);
}

}  // namespace

int main(int argc, char** argv) {
  return coffer::run_main("coffer-app-enclave", [&] { return run(argc, argv); });
}
