#include "cli/guest_image_command.h"

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/exit.h"
#include "cli/sim_command.h"
#include "core/json.h"
#include "evidence/sim/measure.h"
#include "runtime/vm/guest_image.h"

namespace coffer::cli {
namespace {

namespace vm = runtime::vm;

[[noreturn]] void fail(const Error& e) { cli::fail("coffer guest-image", e); }

struct BuildOptions {
  vm::GuestImageOptions image;
  std::string out;
  std::string tee;
  std::string log_level;
  std::vector<std::string> modules;
  std::string format = "json";
};

void run_build(BuildOptions o) {
  if (!o.modules.empty()) o.image.modules = o.modules;
  // The guest's TEE and log level are part of the (measured) command line: coffer-guest-init
  // hands them to the agent.
  if (!o.tee.empty()) o.image.cmdline += " coffer.tee=" + o.tee;
  if (!o.log_level.empty()) o.image.cmdline += " coffer.log=" + o.log_level;
  auto img = vm::build_guest_image(o.image, o.out);
  if (!img) fail(img.error());
  evidence::sim::EnclaveComponents c;
  c.kind = evidence::sim::EnclaveKind::kVm;
  c.kernel = img->kernel;
  c.initrd = img->initrd;
  c.cmdline = img->cmdline;
  auto measured = evidence::sim::measure_enclave(c);
  if (!measured) fail(measured.error());
  if (o.format == "rvps") {
    print_reference_values(*measured, o.format);
    return;
  }
  Json modules = Json::array();
  for (const auto& m : img->modules) modules.push_back(m);
  std::cout << Json{{"kernel", img->kernel.string()},
                    {"initrd", img->initrd.string()},
                    {"cmdline", img->cmdline},
                    {"kernel_version", img->kernel_version},
                    {"modules", modules},
                    {"reference_values", measured->reference_values()}}
                   .dump(2)
            << "\n";
}

}  // namespace

void add_guest_image_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("guest-image", "the VM enclave's guest image: build");
  cmd->require_subcommand(1);
  auto bo = std::make_shared<BuildOptions>();
  auto* build = cmd->add_subcommand(
      "build", "kernel + reproducible initramfs + command line; prints their reference values");
  build->add_option("--agent", bo->image.agent, "the coffer-agent executable")
      ->required()
      ->check(readable_file());
  build
      ->add_option("--init", bo->image.init, "the coffer-guest-init executable (the guest's PID 1)")
      ->required()
      ->check(readable_file());
  build->add_option("--out", bo->out, "the image directory (new or empty)")->required();
  build
      ->add_option("--kernel-package", bo->image.kernel_package,
                   "the unpacked kernel package (scripts/install-deps)")
      ->capture_default_str();
  build->add_option("--crun", bo->image.crun, "the OCI runtime")->capture_default_str();
  build->add_option("--busybox", bo->image.busybox, "a static busybox")->capture_default_str();
  build->add_flag("--keep-debug{false}", bo->image.strip_debug,
                  "install the agent and the init with their debug sections (default: stripped)");
  build->add_option("--module", bo->modules,
                    "a kernel module to load (repeat; default virtio_pci virtio_console "
                    "virtio_net; dependencies come in)");
  build->add_option("--cmdline", bo->image.cmdline, "the kernel command line")
      ->capture_default_str();
  build->add_option("--tee", bo->tee, "the guest agent's TEE (appended as coffer.tee=)");
  build->add_option("--agent-log-level", bo->log_level,
                    "the guest agent's log level (appended as coffer.log=)");
  build->add_option("--format", bo->format, "json (files and reference values) or rvps")
      ->check(CLI::IsMember({"json", "rvps"}));
  build->callback([bo] { run_build(*bo); });
}

}  // namespace coffer::cli
