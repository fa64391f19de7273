// coffer: the user command line.
#include <CLI/CLI.hpp>

#include "cli/exit.h"
#include "cli/kbs_command.h"
#include "cli/policy_command.h"
#include "cli/secret_command.h"
#include "core/log.h"
#include "core/main.h"
#ifdef COFFER_HAVE_AGENT_CTL_COMMAND
#include "cli/agent_ctl_command.h"
#endif
#ifdef COFFER_HAVE_RUN_COMMAND
#include "cli/run_command.h"
#endif
#ifdef COFFER_HAVE_EVIDENCE_COMMAND
#include "cli/evidence_command.h"
#endif
#ifdef COFFER_HAVE_IMAGE_COMMAND
#include "cli/image_command.h"
#endif
#ifdef COFFER_HAVE_SIM_COMMAND
#include "cli/sim_command.h"
#endif
#ifdef COFFER_HAVE_ENCLAVE_COMMAND
#include "cli/enclave_command.h"
#endif
#ifdef COFFER_HAVE_GUEST_IMAGE_COMMAND
#include "cli/guest_image_command.h"
#endif

namespace {

int run(int argc, char** argv) {
  CLI::App app{"coffer: confidential containers — images, keys, attestation"};
  app.require_subcommand(1);
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
  app.parse_complete_callback([&] { coffer::log::init(log_level); });
  coffer::cli::add_kbs_command(app);
  coffer::cli::add_policy_command(app);
  coffer::cli::add_secret_command(app);
#ifdef COFFER_HAVE_AGENT_CTL_COMMAND
  coffer::cli::add_agent_ctl_command(app);
#endif
#ifdef COFFER_HAVE_RUN_COMMAND
  coffer::cli::add_run_command(app);
#endif
#ifdef COFFER_HAVE_EVIDENCE_COMMAND
  coffer::cli::add_evidence_command(app);
#endif
#ifdef COFFER_HAVE_IMAGE_COMMAND
  coffer::cli::add_image_command(app);
#endif
#ifdef COFFER_HAVE_SIM_COMMAND
  coffer::cli::add_sim_command(app);
#endif
#ifdef COFFER_HAVE_ENCLAVE_COMMAND
  coffer::cli::add_enclave_command(app);
#endif
#ifdef COFFER_HAVE_GUEST_IMAGE_COMMAND
  coffer::cli::add_guest_image_command(app);
#endif
  coffer::cli::add_version_flag(app, "coffer");
  coffer::cli::one_value_per_option(app);
  return coffer::cli::run(app, argc, argv);
}

}  // namespace

int main(int argc, char** argv) {
  return coffer::run_main("coffer", [&] { return run(argc, argv); });
}
