#include "cli/sim_command.h"

#include <csignal>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "cli/exit.h"
#include "core/file.h"
#include "core/json.h"
#include "crypto/digest.h"
#include "evidence/sim/measure.h"
#include "evidence/sim/quote_service.h"
#include "evidence/sim/sgx_enclave.h"
#include "evidence/sim/sim_pki.h"

namespace coffer::cli {
namespace {

namespace sim = evidence::sim;

[[noreturn]] void fail(const Error& e) { cli::fail("coffer sim", e); }

struct EnclaveOptions {
  std::string agent, rootfs_manifest, kernel, initrd, cmdline, init_data;
  std::string sgx_signature;  // sim-sgx: the enclave's signature file (enclave.sig)
  bool has_cmdline = false;
};

void add_enclave_options(CLI::App* cmd, EnclaveOptions& o) {
  cmd->add_option("--agent", o.agent, "process enclave: the agent executable");
  cmd->add_option("--rootfs-manifest", o.rootfs_manifest,
                  "process enclave: the root filesystem manifest");
  cmd->add_option("--kernel", o.kernel, "VM: the guest kernel");
  cmd->add_option("--initrd", o.initrd, "VM: the initrd");
  cmd->add_option("--cmdline", o.cmdline, "VM: the kernel command line");
  cmd->add_option("--init-data", o.init_data, "CoCo init-data TOML file");
  cmd->add_option("--sgx-signature", o.sgx_signature,
                  "process enclave, sim-sgx: its signature file (`coffer enclave sign`), for "
                  "the sgx.* values (measure) or SGX quotes, reports and sealing keys (quote "
                  "service)");
}

// The SGX identity from --sgx-signature, checked against the measured MRENCLAVE.
std::optional<sim::SgxIdentity> sgx_identity(const EnclaveOptions& o,
                                             const sim::LaunchMeasurements& m) {
  if (o.sgx_signature.empty()) return std::nullopt;
  auto text = read_text_file(o.sgx_signature, sim::kMaxSigstructBytes);
  if (!text) fail(text.error());
  auto id = sim::verify_sigstruct(*text, m.mr_enclave);
  if (!id) fail(id.error());
  return *id;
}

sim::EnclaveComponents components(const EnclaveOptions& o) {
  sim::EnclaveComponents c;
  if (!o.kernel.empty()) {
    c.kind = sim::EnclaveKind::kVm;
    c.kernel = o.kernel;
    if (!o.initrd.empty()) c.initrd = o.initrd;
    c.cmdline = o.cmdline;
  } else {
    if (o.agent.empty() || o.rootfs_manifest.empty()) {
      fail(Error{"usage",
                 "give --agent and --rootfs-manifest (process enclave) or --kernel "
                 "[--initrd] [--cmdline] (VM)"});
    }
    c.agent = o.agent;
    c.rootfs_manifest = o.rootfs_manifest;
  }
  if (!o.init_data.empty()) {
    auto text = read_text_file(o.init_data, 1 << 20);
    if (!text) fail(text.error());
    c.init_data = std::move(*text);
  }
  return c;
}

sim::LaunchMeasurements measure(const EnclaveOptions& o) {
  auto m = sim::measure_enclave(components(o));
  if (!m) fail(m.error());
  return std::move(*m);
}

void run_init(const std::string& dir, bool force, int rsa_bits) {
  if (!force && std::filesystem::exists(std::filesystem::path(dir) / "sim.json")) {
    fail(Error{"already_exists",
               dir + " already holds a simulation PKI; pass --force to replace it"});
  }
  sim::SimPkiOptions opts;
  opts.rsa_bits = rsa_bits;
  auto pki = sim::generate_sim_pki(opts);
  if (!pki) fail(pki.error());
  if (auto s = sim::write_sim_pki(*pki, dir, force); !s) fail(s.error());
  Json summary = {{"dir", dir},
                  {"intel_root", dir + "/intel/root_ca.pem"},
                  {"intel_root_sha256", hex_encode(pki->root_ca.sha256_fingerprint())},
                  {"intel_collateral", dir + "/intel/collateral"},
                  {"intel_collateral_sgx", dir + "/intel/collateral_sgx"},
                  {"amd_ark", dir + "/amd/ark.pem"},
                  {"amd_vendor_chain", dir + "/amd/ask_ark.pem"},
                  {"amd_vcek_dir", dir + "/amd/vcek"},
                  {"amd_crl_dir", dir + "/amd/crl"},
                  {"warning", "simulation only: this PKI proves nothing about the host"}};
  std::cout << summary.dump(2) << "\n";
}

void run_measure(const EnclaveOptions& o, const std::string& format) {
  auto m = measure(o);
  Json rv = m.reference_values();
  if (auto id = sgx_identity(o, m)) rv.update(sim::sgx_reference_values(*id));
  print_reference_values(rv, format);
}

void run_quote_service(const std::string& dir, const std::string& socket, bool debug,
                       const EnclaveOptions& o) {
  auto pki = sim::load_sim_pki(dir);
  if (!pki) fail(pki.error());
  auto m = measure(o);
  sim::QuoteServiceConfig config{.socket_path = socket};
  if (debug) config.td_attributes |= sim::kTdAttributesDebug;
  config.sgx = sgx_identity(o, m);
  // Block the stop signals before any thread starts, then wait for one of them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  sim::QuoteService service(std::move(*pki), std::move(m), config);
  if (auto s = service.start(); !s) fail(s.error());
  std::cerr << "coffer sim: quote service listening on " << socket << "\n";
  int sig = 0;
  sigwait(&set, &sig);
  service.stop();
}

}  // namespace

void print_reference_values(const evidence::sim::LaunchMeasurements& m, const std::string& format) {
  print_reference_values(m.reference_values(), format);
}

void print_reference_values(const Json& rv, const std::string& format) {
  if (format == "rvps") {
    // One RVPS message per name, as `POST /kbs/v0/reference-value` takes them.
    Json payload = Json::object();
    for (auto& [k, v] : rv.items()) payload[k] = Json::array({v});
    std::cout << Json{{"version", "0.1.0"},
                      {"type", "sample"},
                      {"payload", base64_encode(as_bytes(payload.dump()))}}
                     .dump()
              << "\n";
    return;
  }
  std::cout << rv.dump(2) << "\n";
}

void add_sim_command(CLI::App& app) {
  auto* simcmd = app.add_subcommand("sim", "simulated TEE: PKI, measurements, quote service");
  simcmd->require_subcommand(1);

  auto dir = std::make_shared<std::string>();
  auto force = std::make_shared<bool>(false);
  auto rsa_bits = std::make_shared<int>(4096);
  auto* init = simcmd->add_subcommand("init", "generate the simulation PKI and collateral");
  init->add_option("--dir", *dir, "directory to write")->required();
  init->add_flag("--force", *force, "replace an existing simulation PKI");
  init->add_option("--rsa-bits", *rsa_bits, "ARK/ASK RSA size")
      ->check(CLI::IsMember({2048, 3072, 4096}));
  init->callback([dir, force, rsa_bits] { run_init(*dir, *force, *rsa_bits); });

  auto eo = std::make_shared<EnclaveOptions>();
  auto format = std::make_shared<std::string>("json");
  auto* meas = simcmd->add_subcommand("measure", "print the reference values an enclave reports");
  add_enclave_options(meas, *eo);
  meas->add_option("--format", *format, "json (name -> value) or rvps (a reference-value message)")
      ->check(CLI::IsMember({"json", "rvps"}));
  meas->callback([eo, format] { run_measure(*eo, *format); });

  auto qdir = std::make_shared<std::string>();
  auto socket = std::make_shared<std::string>();
  auto debug = std::make_shared<bool>(false);
  auto qo = std::make_shared<EnclaveOptions>();
  auto* qs = simcmd->add_subcommand("quote-service", "serve evidence for one enclave");
  qs->add_option("--dir", *qdir, "simulation PKI directory (from `sim init`)")->required();
  qs->add_option("--socket", *socket, "Unix socket path")->required();
  qs->add_flag("--debug", *debug, "report a debug TD (TDATTRIBUTES.DEBUG)");
  add_enclave_options(qs, *qo);
  qs->callback([qdir, socket, debug, qo] { run_quote_service(*qdir, *socket, *debug, *qo); });
}

}  // namespace coffer::cli
