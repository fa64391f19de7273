// coffer-agent: the agent inside the enclave. Reads the attested init-data, checks that the TEE
// binds its digest, then serves coffer.agent.v1.Agent (docs/agent-api.md) over ttrpc on a Unix
// socket (process enclave) or a virtio-serial character device (VM).
#include <fcntl.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "agent/executor/executor.h"
#include "agent/image/image_service.h"
#include "agent/policy.h"
#include "agent/service.h"
#include "core/bytes.h"
#include "core/file.h"
#include "core/log.h"
#include "core/main.h"
#include "core/version.h"
#include "guest/aa/attester.h"
#include "guest/cdh/data_hub.h"
#include "guest/rest_api.h"
#include "net/ttrpc/server.h"
#include "runtime/appenclave/exporter.h"

namespace {

namespace fs = std::filesystem;
using namespace coffer;

// Without an image security policy in the init-data the agent does what CoCo's image-rs does
// without one: no signature requirement (the evidence shows there was no init-data).
constexpr std::string_view kDefaultImagePolicy =
    R"({"default":[{"type":"insecureAcceptAnything"}]})";

struct Options {
  std::string socket;
  std::string serial_device;
  std::string init_data;
  std::string tee = "auto";
  std::string quote_service;
  std::string state_dir = "/run/coffer-agent";
  std::string log_level = "info";
  std::string rest_api = "127.0.0.1:8006";
  std::string storage_dir;
};

int fail(const std::string& what, const Error& e) {
  spdlog::critical("{}: {}", what, e.to_string());
  std::cerr << "coffer-agent: " << what << ": " << e.to_string() << "\n";
  return 1;
}

Result<std::string> fetch_text(guest::DataHub& hub, const std::string& uri) {
  auto bytes = COFFER_TRY(hub.get_resource(uri));
  return std::string(bytes.begin(), bytes.end());
}

int serve(Options o) {
  // The agent holds the TEE's keys: no core dumps, no ptrace or /proc/<pid>/mem by the same
  // user (execve resets this, so a launcher cannot set it for us).
  ::prctl(PR_SET_DUMPABLE, 0);
  // Block the stop signals in every thread; the main thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  if (::getpid() == 1) agent::install_child_reaper();

  // 1. configuration: the init-data, verbatim, or the built-in defaults
  guest::GuestConfig config;
  if (!o.init_data.empty()) {
    auto text = read_text_file(o.init_data);
    if (!text) return fail("reading init-data", text.error());
    auto parsed = guest::parse_guest_config(*text);
    if (!parsed) return fail("init-data", parsed.error());
    config = std::move(*parsed);
  }

  // 2. the attester for the TEE we run in (never a silent fall back to sample)
  guest::aa::AttesterOptions attester_options;
  attester_options.quote_service_socket = o.quote_service;
  auto attester = guest::aa::make_attester(o.tee, attester_options);
  if (!attester) return fail("attester", attester.error());

  // 3. the TEE must bind exactly this init-data before anything of it is used
  if (auto bound = guest::check_init_data_binding(config, **attester); !bound) {
    return fail("init-data binding", bound.error());
  }

  // 4. the agent policy: init-data's policy.rego, else the built-in default
  std::shared_ptr<agent::AgentPolicy> policy;
  if (config.agent_policy_rego.empty()) {
    policy = agent::AgentPolicy::builtin();
  } else {
    auto loaded = agent::AgentPolicy::load(config.agent_policy_rego, true);
    if (!loaded) return fail("agent policy", loaded.error());
    policy = std::move(*loaded);
  }

  std::error_code ec;
  const std::string state_dir_given = o.state_dir;
  o.state_dir = fs::absolute(state_dir_given, ec).lexically_normal().string();
  if (ec) return fail("state directory", Error{"io_error", state_dir_given + ": " + ec.message()});
  fs::create_directories(o.state_dir, ec);
  fs::permissions(o.state_dir, fs::perms::owner_all, ec);
  if (ec) return fail("state directory", Error{"io_error", o.state_dir + ": " + ec.message()});

  // 5. attestation agent and data hub
  const auto attestation_started = std::chrono::steady_clock::now();
  guest::aa::KbsClientOptions kbs_options;
  if (config.from_init_data) kbs_options.init_data_toml = config.init_data_toml;
  if (!config.kbs_cert_pem.empty()) {
    const fs::path ca = fs::path(o.state_dir) / "kbs-ca.pem";
    if (auto w = write_file_atomic(ca, as_bytes(config.kbs_cert_pem), 0600); !w) {
      return fail("writing the KBS certificate", w.error());
    }
    kbs_options.ca_file = ca.string();
  }
  const std::string tee((*attester)->tee());
  guest::AttestationAgent aa(std::move(*attester), config, kbs_options);
  guest::DataHub hub(aa, config);

  // 6. image service with the policy and credentials the init-data names (fetched from the KBS)
  agent::ImageServiceOptions image_options;
  image_options.storage_dir = fs::path(o.state_dir) / "images";
  if (config.image_security_policy_uri.empty()) {
    image_options.security_policy_json = std::string(kDefaultImagePolicy);
  } else {
    auto text = fetch_text(hub, config.image_security_policy_uri);
    if (!text) return fail("image security policy", text.error());
    image_options.security_policy_json = std::move(*text);
  }
  if (!config.registry_credentials_uri.empty()) {
    auto text = fetch_text(hub, config.registry_credentials_uri);
    if (!text) return fail("registry credentials", text.error());
    image_options.registry_auth_json = std::move(*text);
  }
  image_options.resource_resolver = [&hub](const std::string& uri) {
    return hub.get_resource(uri);
  };
  image_options.key_provider = [&hub](const std::string& kid) { return hub.unwrap_key(kid); };
  image_options.insecure_registries = config.insecure_registries;
  image_options.require_encrypted_layers = config.require_encrypted_layers;
  agent::ImageService images(std::move(image_options));
  const auto startup_attestation = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - attestation_started);

  // 7. the container executor
  agent::ExecutorOptions executor_options;
  executor_options.state_dir = fs::path(o.state_dir) / "containers";
  auto executor = agent::make_crun_executor(executor_options);
  if (!executor) return fail("container executor", executor.error());

  // 8. the service
  agent::AgentServiceDeps deps;
  deps.executor = executor->get();
  deps.pull = [&images](const std::string& reference, const std::stop_token& stop) {
    return images.pull(reference, stop);
  };
  deps.pull_progress = [&images] { return images.progress(); };
  // A TEE without runtime measurement registers (SNP, sample) cannot record what ran; that is
  // said once and the calls go on (its evidence carries no event log). Any other failure to
  // record fails the call.
  deps.measure = [&aa](const guest::MeasurementEvent& event) -> Status {
    auto s = aa.extend(event);
    if (!s && s.error().code == "not_supported") {
      static std::once_flag once;
      std::call_once(once, [&] {
        spdlog::warn("runtime measurements are not recorded: {}", s.error().to_string());
      });
      return ok();
    }
    return s;
  };
  deps.policy = policy;
  deps.guest = agent::GuestInfo{tee, hex_encode(config.init_data_digest), config.from_init_data,
                                startup_attestation};
  deps.unseal = [&hub](std::string_view sealed) { return hub.unseal(sealed); };
  deps.sealed_dir = fs::path(o.state_dir) / "secrets";
  // The two-enclave flow (docs/two-enclave.md): bundles exported to host storage, their keys
  // sealed or handed over with the simulated SGX platform's help.
  if (!o.storage_dir.empty()) {
    if (o.tee != "sim-sgx" || o.quote_service.empty()) {
      return fail("storage", Error{"usage",
                                   "--storage-dir (exported bundles) needs --tee sim-sgx and its "
                                   "--quote-service"});
    }
    deps.exporter =
        std::make_shared<runtime::appenclave::EfsBundleExporter>(o.storage_dir, o.quote_service);
  }
  // The workload REST API (CoCo's /cdh/resource, /aa/token, /aa/evidence) in each sandbox's own
  // network namespace, never in the agent's (the host's side).
  std::mutex rest_mu;
  std::map<std::string, std::unique_ptr<guest::RestApi>> rest_apis;
  if (o.rest_api != "off") {
    deps.sandbox_hooks.on_created = [&](const std::string& id, const fs::path& netns) -> Status {
      guest::RestApiOptions rest_options;
      rest_options.address = o.rest_api;
      rest_options.netns = netns;
      auto api = std::make_unique<guest::RestApi>(aa, hub, rest_options);
      COFFER_TRY_STATUS(api->start());
      spdlog::info("sandbox {}: workload API on {}", id, o.rest_api);
      std::lock_guard lock(rest_mu);
      rest_apis[id] = std::move(api);
      return ok();
    };
    deps.sandbox_hooks.on_removed = [&](const std::string& id) {
      std::unique_ptr<guest::RestApi> api;
      {
        std::lock_guard lock(rest_mu);
        if (auto it = rest_apis.find(id); it != rest_apis.end()) {
          api = std::move(it->second);
          rest_apis.erase(it);
        }
      }
      if (api) api->stop();
    };
  }
  agent::AgentService service(std::move(deps));
  net::ttrpc::Server server;
  service.register_methods(server);

  std::atomic<bool> stopping = false;
  std::thread serial;
  if (!o.socket.empty()) {
    if (auto s = server.listen_unix(o.socket); !s) return fail("listening", s.error());
    spdlog::info("coffer-agent {} serving on {} (tee {}, init-data: {}, policy: {})",
                 coffer::version(), o.socket, tee, config.from_init_data ? "yes" : "no",
                 policy->from_init_data() ? "init-data" : "built-in default");
  } else {
    // A character device has no accept: serve it until the host side hangs up, then reopen.
    serial = std::thread([&] {
      while (!stopping) {
        const int fd = ::open(o.serial_device.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
          spdlog::critical("opening {}: {}", o.serial_device, std::strerror(errno));
          ::kill(::getpid(), SIGTERM);
          return;
        }
        server.serve_fd(fd);
      }
    });
    spdlog::info("coffer-agent {} serving on {} (tee {})", coffer::version(), o.serial_device, tee);
  }
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("signal {} received, stopping", sig);
  stopping = true;
  server.stop();
  if (serial.joinable()) serial.join();
  return 0;
}

int run(int argc, char** argv) {
  CLI::App app{"coffer-agent: the agent inside the enclave (coffer.agent.v1 over ttrpc)"};
  Options o;
  auto* socket = app.add_option("--socket", o.socket, "serve on this Unix socket");
  auto* serial = app.add_option("--serial-device", o.serial_device,
                                "serve on this character device (virtio-serial port)");
  socket->excludes(serial);
  app.add_option("--init-data", o.init_data, "CoCo init-data TOML (its digest must be bound)");
  app.add_option("--tee", o.tee, "tdx, snp, sgx, sim-tdx, sim-snp, sim-sgx, sample, auto")
      ->capture_default_str();
  app.add_option("--quote-service", o.quote_service, "the simulated TEE's quote service socket");
  app.add_option("--storage-dir", o.storage_dir,
                 "host storage for exported bundles (the two-enclave flow, sim-sgx)");
  app.add_option("--state-dir", o.state_dir, "images, containers, state (created 0700)")
      ->capture_default_str();
  app.add_option("--log-level", o.log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
  app.add_option("--rest-api", o.rest_api,
                 "address of the workload REST API in each sandbox's network namespace, or off")
      ->capture_default_str();
  app.set_version_flag("--version", coffer::version_line("coffer-agent"),
                       "print the version and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (o.socket.empty() && o.serial_device.empty()) {
    std::cerr << "coffer-agent: one of --socket or --serial-device is required\n";
    return 2;
  }
  log::init(o.log_level);
  return serve(o);
}

}  // namespace

int main(int argc, char** argv) {
  return coffer::run_main("coffer-agent", [&] { return run(argc, argv); });
}
