// coffer-trustee: KBS + attestation service + RVPS + KMS in one process.
#include <csignal>
#include <iostream>

#include <CLI/CLI.hpp>

#include "core/log.h"
#include "core/main.h"
#include "core/version.h"
#include "trustee/trustee.h"

namespace {

int run(int argc, char** argv) {
  CLI::App app{"coffer-trustee: Key Broker Service and Attestation Service (KBS protocol 0.4.0)"};
  std::string config_path;
  std::string log_level;
  app.add_option("--config,-c", config_path,
                 "configuration file (TOML); see docs/trustee-config.md")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error (default: the config's log_level)");
  app.set_version_flag("--version", coffer::version_line("coffer-trustee"),
                       "print the version and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help, --version: 0; a command-line error: usage (2)
  }

  if (!log_level.empty() && !coffer::trustee::valid_log_level(log_level)) {
    std::cerr << "coffer-trustee: --log-level must be one of trace, debug, info, warn, error, "
                 "critical, off\n";
    return 2;
  }
  auto config = coffer::trustee::load_config(config_path);
  if (!config) {
    std::cerr << "coffer-trustee: " << config.error().to_string() << "\n";
    return 2;
  }
  coffer::log::init(log_level.empty() ? config->log_level : log_level);

  // Block the stop signals in every thread; this one waits for them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto trustee = coffer::trustee::Trustee::create(*config);
  if (!trustee) {
    std::cerr << "coffer-trustee: " << trustee.error().to_string() << "\n";
    return 1;
  }
  if (auto started = (*trustee)->start(); !started) {
    std::cerr << "coffer-trustee: " << started.error().to_string() << "\n";
    return 1;
  }
  for (const auto& url : (*trustee)->urls()) {
    // flushed at once: scripts wait for this line to learn the URL
    std::cout << "coffer-trustee listening on " << url << "\n" << std::flush;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("signal {} received, stopping", sig);
  (*trustee)->stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return coffer::run_main("coffer-trustee", [&] { return run(argc, argv); });
}
