// coffer-snapshotter: containerd's proxy snapshotter for guest pull (docs/kubernetes.md).
#include <csignal>
#include <iostream>

#include <CLI/CLI.hpp>

#include "core/log.h"
#include "core/main.h"
#include "core/version.h"
#include "runtime/snapshotter/service.h"
#include "runtime/snapshotter/snapshotter.h"

namespace {

int run(int argc, char** argv) {
  CLI::App app{
      "coffer-snapshotter: containerd proxy snapshotter; the layers of images pulled "
      "for coffer stay out of the host (guest pull)"};
  std::string address;
  std::string root;
  std::string log_level = "info";
  coffer::runtime::snapshotter::SnapshotterOptions options;
  app.add_option("--address", address,
                 "the unix socket to serve (containerd's proxy_plugins "
                 "address)")
      ->required();
  app.add_option("--root", root, "the directory of the metadata database and snapshots")
      ->required();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  app.add_flag("--host-snapshots", options.host_snapshots,
               "also keep snapshots with files on the host for images that are not guest-pulled "
               "(imported or pulled without CRI's labels, e.g. a runc pod's sandbox image); "
               "default: refuse them");
  app.set_version_flag("--version", coffer::version_line("coffer-snapshotter"),
                       "print the version and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  coffer::log::init(log_level);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto snapshotter = coffer::runtime::snapshotter::Snapshotter::open(root, options);
  if (!snapshotter) {
    std::cerr << "coffer-snapshotter: " << snapshotter.error().to_string() << "\n";
    return 1;
  }
  auto server = coffer::runtime::snapshotter::SnapshotterServer::start(**snapshotter, address);
  if (!server) {
    std::cerr << "coffer-snapshotter: " << server.error().to_string() << "\n";
    return 1;
  }
  // flushed at once: scripts wait for this line
  std::cout << "coffer-snapshotter listening on " << address << "\n" << std::flush;
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("signal {} received, stopping", sig);
  (*server)->shutdown();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return coffer::run_main("coffer-snapshotter", [&] { return run(argc, argv); });
}
