// The enclave launcher interface the host side uses (`coffer run`, later the containerd shim).
// One implementation per enclave kind: the process enclave (src/runtime/process, this issue) and
// the VM enclave (src/runtime/vm, later). A launched enclave runs coffer-agent, which the host
// drives over ttrpc (coffer.agent.v1, docs/agent-api.md) on `agent_socket()`; the host never
// sees inside the enclave otherwise.
//
// Ownership: the Enclave object owns everything the launch created (processes, the enclave's
// quote service, mounts, its private storage). Destroying it tears all of that down; so does
// stop(). Nothing is left running, mounted or listening afterwards.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace coffer::runtime {

struct EnclaveSpec {
  // "sim-tdx", "sim-snp" or "sim-sgx" (the simulated TEE; the launcher runs its quote service),
  // later "tdx"/"snp" for hardware VMs. Never a silent fallback to "sample". "sim-sgx" needs a
  // signed image (`coffer enclave sign`; DIR/enclave.sig over the image's MRENCLAVE): an
  // unsigned one fails with "enclave_not_signed", a wrongly signed or changed one with
  // "enclave_signature_invalid"; the quote service then also answers report / verify_report /
  // seal_key for the enclave (docs/simulated-tee.md).
  std::string tee = "sim-tdx";
  // The enclave image: the directory `coffer enclave build` wrote (its manifest names every
  // file, mode and digest; the launcher checks them before launch).
  std::filesystem::path enclave_image;
  // The simulation PKI directory (`coffer sim init --dir`), for sim-* TEEs.
  std::filesystem::path sim_dir;
  // CoCo init-data TOML text exactly as given, bound into MRCONFIGID / HOST_DATA; none: defaults.
  std::optional<std::string> init_data;
  // A private, per-enclave directory on the host (created 0700 if missing): the agent socket,
  // logs of the launch. The launcher removes what it created there at teardown.
  std::filesystem::path run_dir;
  // The agent's log level ("info" by default) and its log file (host side, outside the enclave;
  // empty: the launcher's stderr).
  std::string agent_log_level = "info";
  std::filesystem::path agent_log_file;
  // true: the agent shares the host's network namespace (as an SGX enclave does); false: a new
  // empty network namespace with loopback only.
  bool host_network = true;
  // Host storage (created 0700 if missing) bound read-write at /run/coffer-storage inside the
  // enclave: the agent gets `--storage-dir /run/coffer-storage` (it writes exported bundles
  // there), the app enclave reads its bundle from it. Empty: none.
  std::filesystem::path storage_dir;
  // The VM enclave's accelerator: "auto" (KVM if a probe guest runs under it, else TCG), "tcg",
  // or "kvm" (refused with "kvm_unusable" if the probe fails). runtime/vm/accel.h.
  std::string vm_accel = "auto";

  // The app enclave of the two-enclave flow (docs/two-enclave.md): the image's entry executable
  // is coffer-app-enclave, not coffer-agent. It runs with
  //   ENTRY --quote-service /run/coffer-quote/quote.sock --storage /run/coffer-storage
  //         --status-fd 3 ARGS...
  // with /dev/fuse in its /dev and the workload's stdio as given. launch returns once the boot
  // step reported "started" on the status fd (the workload runs), or fails with
  // "app_enclave_failed" and the boot's own message; agent_socket() is empty.
  struct AppRole {
    std::vector<std::string> args;  // after the launcher's own, e.g. --bundle ID --key-handover
    // The host directory holding the agent enclave's agent.sock, bound at /run/coffer-agent
    // (local attestation: the boot calls HandOverKey there). Empty: none.
    std::filesystem::path agent_dir;
    int stdin_fd = -1;   // -1: /dev/null
    int stdout_fd = -1;  // -1: the log file (agent_log_file) or the launcher's stderr
    int stderr_fd = -1;
  };
  std::optional<AppRole> app;
};

// What a launch reports to whoever shows progress (optional).
struct LaunchEvent {
  std::string step;    // "check_image", "measure", "quote_service", "start_agent", "agent_ready"
  std::string detail;  // human-readable, no secrets
};
using LaunchObserver = std::function<void(const LaunchEvent&)>;

class Enclave {
 public:
  virtual ~Enclave() = default;
  Enclave() = default;
  Enclave(const Enclave&) = delete;
  Enclave& operator=(const Enclave&) = delete;

  // The Unix socket on the host where the agent serves coffer.agent.v1 (ready when launch
  // returns: the agent answered Health).
  [[nodiscard]] virtual std::filesystem::path agent_socket() const = 0;
  // The measurements the enclave reports (the reference values, as `coffer sim measure` prints
  // them), for error messages and `coffer ps`.
  [[nodiscard]] virtual std::string measurements_json() const = 0;
  // The host pid of the enclave's first process (for `coffer ps`; signals go through stop()).
  [[nodiscard]] virtual pid_t pid() const = 0;
  // Waits until the agent exits; its exit status (0..255, or 128+signal).
  virtual Result<int> wait() = 0;
  // Asks the agent to stop (SIGTERM), kills it after `grace`, then tears everything down.
  // Idempotent.
  virtual Status stop(std::chrono::milliseconds grace) = 0;
};

}  // namespace coffer::runtime
