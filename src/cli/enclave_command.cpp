#include "cli/enclave_command.h"

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/exit.h"
#include "cli/sim_command.h"
#include "core/file.h"
#include "core/json.h"
#include "crypto/pkey.h"
#include "evidence/sim/measure.h"
#include "runtime/process/enclave_image.h"

namespace coffer::cli {
namespace {

namespace process = runtime::process;

[[noreturn]] void fail(const Error& e) { cli::fail("coffer enclave", e); }

struct BuildOptions {
  std::string agent;
  std::string crun = "/usr/bin/crun";
  bool no_crun = false;
  std::vector<std::string> files;
  std::string out;
  bool keep_debug = false;
};

void run_build(const BuildOptions& o) {
  process::EnclaveImageOptions options;
  options.agent = o.agent;
  options.crun = o.no_crun ? std::filesystem::path() : std::filesystem::path(o.crun);
  options.strip_debug = !o.keep_debug;
  for (const auto& f : o.files) options.extra_files.emplace_back(f);
  auto m = process::build_enclave_image(options, o.out);
  if (!m) fail(m.error());
  std::uint64_t bytes = 0;
  for (const auto& e : m->entries) bytes += e.size;
  std::cout << Json{{"image", o.out},
                    {"manifest", o.out + "/manifest"},
                    {"agent", o.out + "/rootfs" + m->agent},
                    {"files", m->entries.size()},
                    {"bytes", bytes}}
                   .dump(2)
            << "\n";
}

struct SignOptions {
  std::string dir;
  std::string key;
  std::uint16_t isv_prod_id = 0;
  std::uint16_t isv_svn = 0;
  bool debug = false;
};

void run_sign(const SignOptions& o) {
  auto pem = read_text_file(o.key, 1 << 20);
  if (!pem) fail(pem.error());
  auto key = crypto::Key::from_pem(*pem);
  if (!key) fail(key.error());
  auto id = process::sign_enclave_image(
      o.dir, *key, {.isv_prod_id = o.isv_prod_id, .isv_svn = o.isv_svn, .debug = o.debug});
  if (!id) fail(id.error());
  Json out = evidence::sim::sgx_reference_values(*id);
  out["signature"] = o.dir + "/" + std::string(process::kEnclaveSignatureFile);
  std::cout << out.dump(2) << "\n";
}

void run_measure(const std::string& dir, const std::string& init_data_file,
                 const std::string& format, const std::string& tee) {
  auto m = process::verify_enclave_image(dir);
  if (!m) fail(m.error());
  std::optional<std::string> init_data;
  if (!init_data_file.empty()) {
    auto text = read_text_file(init_data_file, 1 << 20);
    if (!text) fail(text.error());
    init_data = std::move(*text);
  }
  auto measured =
      evidence::sim::measure_enclave(process::enclave_components(dir, *m, std::move(init_data)));
  if (!measured) fail(measured.error());
  Json rv = measured->reference_values();
  if (tee == "sim-sgx") {
    // SGX's identity needs the signature: MRSIGNER, ISVPRODID and ISVSVN come from it.
    auto id = process::read_enclave_signature(dir, measured->mr_enclave);
    if (!id) fail(id.error());
    rv = evidence::sim::sgx_reference_values(*id);
  }
  print_reference_values(rv, format);
}

}  // namespace

void add_enclave_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("enclave", "the process enclave's image: build, sign, measure");
  cmd->require_subcommand(1);

  auto bo = std::make_shared<BuildOptions>();
  auto* build = cmd->add_subcommand("build", "collect coffer-agent, crun and their libraries");
  build->add_option("--agent", bo->agent, "the coffer-agent executable")
      ->required()
      ->check(readable_file());
  auto* crun = build->add_option("--crun", bo->crun, "the OCI runtime")->capture_default_str();
  build
      ->add_flag("--no-crun", bo->no_crun,
                 "no OCI runtime: the app enclave's image, whose entry (--agent) is "
                 "coffer-app-enclave (docs/two-enclave.md)")
      ->excludes(crun);
  build->add_option("--file", bo->files, "another host file to include at its path (repeat)");
  build->add_option("--out", bo->out, "the image directory (new or empty)")->required();
  build->add_flag("--keep-debug", bo->keep_debug,
                  "install the agent with its debug sections (default: objcopy --strip-debug)");
  build->callback([bo] { run_build(*bo); });

  auto so = std::make_shared<SignOptions>();
  auto* sign = cmd->add_subcommand(
      "sign", "sign an image for sim-sgx (DIR/enclave.sig: MRSIGNER, ISVPRODID, ISVSVN)");
  sign->add_option("DIR", so->dir, "the image directory")->required();
  sign->add_option("--key", so->key, "the signer's private key (PEM: RSA-3072 as SGX, or P-256)")
      ->required()
      ->check(readable_file());
  sign->add_option("--isv-prod-id", so->isv_prod_id, "ISVPRODID (0..65535)")->capture_default_str();
  sign->add_option("--isv-svn", so->isv_svn, "ISVSVN (0..65535)")->capture_default_str();
  sign->add_flag("--debug", so->debug, "set ATTRIBUTES.DEBUG (policies refuse debug enclaves)");
  sign->callback([so] { run_sign(*so); });

  auto dir = std::make_shared<std::string>();
  auto tee = std::make_shared<std::string>("sim-tdx");
  auto init_data = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("json");
  auto* measure = cmd->add_subcommand("measure", "check an image, print its reference values");
  measure->add_option("DIR", *dir, "the image directory")->required();
  measure->add_option("--init-data", *init_data, "CoCo init-data TOML file")
      ->check(readable_file());
  measure
      ->add_option("--format", *format, "json (name -> value) or rvps (a reference-value message)")
      ->check(CLI::IsMember({"json", "rvps"}));
  measure
      ->add_option("--tee", *tee,
                   "sim-tdx / sim-snp (tdx.*, snp.* values) or sim-sgx (sgx.mr_enclave, "
                   "sgx.mr_signer, sgx.isv_prod_id, sgx.isv_svn: needs the signature)")
      ->check(CLI::IsMember({"sim-tdx", "sim-snp", "sim-sgx"}))
      ->capture_default_str();
  measure->callback(
      [dir, init_data, format, tee] { run_measure(*dir, *init_data, *format, *tee); });
}

}  // namespace coffer::cli
