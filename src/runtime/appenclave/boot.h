// The app enclave's boot step, coffer-app-enclave (docs/two-enclave.md): PID 1 of the app
// enclave. Gets the bundle's filesystem key (unsealing, or local attestation with the agent
// enclave), opens the encrypted filesystem (no older generation than the export), serves it
// through FUSE in a child process, mounts an overlay (the image read-only, a tmpfs on top) and
// runs the bundle's process in it; reports "started" or "error <code> <message>" on the status
// fd, forwards signals, and exits with the workload's status.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "evidence/sim/quote_client.h"
#include "runtime/appenclave/key_handover.h"

namespace coffer::runtime::appenclave {

inline constexpr std::size_t kMaxConfigBytes = 1024 * 1024;

struct BootOptions {
  std::filesystem::path quote_service;  // the enclave's own quote service socket
  std::filesystem::path storage;        // the host storage (bound at /run/coffer-storage)
  int status_fd = -1;
  std::string bundle_id;               // [a-z0-9][a-z0-9_.-]{0,63}
  std::string key_handover = "seal";   // "seal" or "local"
  std::filesystem::path agent_socket;  // local: the agent enclave's agent.sock
  std::string agent_mr_enclave;        // local: hex, 32 bytes (an untrusted hint)
  // Where the boot mounts the filesystem (DIR/efs), the writable layer (DIR/upper, a tmpfs) and
  // the container's root (DIR/root). Inside the enclave: /run/coffer-app.
  std::filesystem::path work_dir = "/run/coffer-app";
};

// "usage" for a malformed option (bundle id, mode, missing local-mode hints).
Status check_boot_options(const BootOptions& o);

// The bundle's key: unsealed from STORAGE/BUNDLE/sealed-key.json, or handed over by the agent
// enclave (HandOverKey over ttrpc) after local attestation.
Result<BundleKey> obtain_bundle_key(const BootOptions& o);

// What the boot runs, from the bundle's config.json (OCI runtime spec).
struct WorkloadSpec {
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd = "/";
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::vector<std::uint32_t> additional_gids;
};
// "bad_config" for a malformed or unsupported config (no args, a relative cwd, bounded sizes).
Result<WorkloadSpec> parse_workload_spec(std::string_view config_json);

// The whole boot; returns the process's exit status (the workload's, 128+signal when killed, or
// 125 after an "error" line).
int run_boot(const BootOptions& o);

}  // namespace coffer::runtime::appenclave
