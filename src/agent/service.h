// coffer-agent's ttrpc service (coffer.agent.v1.Agent, proto/coffer/agent/v1/agent.proto,
// docs/agent-api.md): parses each request, validates it, asks the agent policy, then dispatches to
// the container executor and the image service.
//
// Status codes (google.rpc.Code) from the components' error codes: *_not_found NOT_FOUND,
// *_exists ALREADY_EXISTS, bad_state FAILED_PRECONDITION, policy_denied and image verification
// refusals PERMISSION_DENIED, bad input INVALID_ARGUMENT, cancelled CANCELLED, timeout
// DEADLINE_EXCEEDED, unreachable KBS/registry UNAVAILABLE, anything else INTERNAL. A status message
// is "<code>: <message>", printable ASCII, bounded; it never carries request values or secrets.
//
// Measurements: each image the service pulls is extended once per (reference, digest)
// ("pull_image", "<reference>@<digest>"), and each container is extended before it is created
// ("create_container", "<reference>@<digest> container=<id> policy=allow"). A failed extension
// fails the call: nothing runs unmeasured.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>

#include "agent/executor/executor.h"
#include "agent/image/image_service.h"
#include "agent/policy.h"
#include "core/bytes.h"
#include "core/error.h"
#include "core/json.h"
#include "guest/cdh/data_hub.h"
#include "net/ttrpc/frame.h"
#include "net/ttrpc/server.h"

namespace coffer::agent {

inline constexpr std::string_view kAgentService = "coffer.agent.v1.Agent";

// The image service as the agent uses it (ImageService::pull in production; a fake in tests).
using PullImageFn =
    std::function<Result<PulledImage>(const std::string& reference, std::stop_token stop)>;
// Runtime measurement (AttestationAgent::extend in production).
using MeasureFn = std::function<Status(const guest::MeasurementEvent& event)>;
// Unseals a CoCo sealed secret ("sealed.<JWS>"; DataHub::unseal in production).
using UnsealFn = std::function<Result<Bytes>(std::string_view sealed)>;
// Called after a sandbox exists, with its network namespace (the agent serves the workload REST
// API there); an error removes the sandbox again and fails CreateSandbox. `on_removed` runs
// before the sandbox goes.
struct SandboxHooks {
  std::function<Status(const std::string& sandbox_id, const std::filesystem::path& netns)>
      on_created;
  std::function<void(const std::string& sandbox_id)> on_removed;
};

// The two-enclave flow (docs/two-enclave.md): writes a container's bundle into an encrypted
// filesystem on the agent's storage and passes its key on. Implemented by
// runtime::appenclave::EfsBundleExporter; the service only validates, measures and builds the
// bundle's config.
struct BundleExport {
  std::string bundle_id;
  std::filesystem::path rootfs;  // the image's unpacked rootfs (read-only, not changed)
  Json config;                   // the OCI runtime spec, config.json of the bundle
  std::string key_handover;      // "seal" or "local"
};
struct BundleExported {
  std::uint64_t generation = 0;
  std::uint64_t files = 0;
  std::uint64_t bytes = 0;
};
struct KeyHandOver {
  std::string bundle_id;
  Bytes report;
  Bytes public_key;
};
struct KeyHandedOver {
  Bytes report;
  Bytes public_key;
  Bytes ciphertext;
};
class BundleExporter {
 public:
  virtual ~BundleExporter() = default;
  BundleExporter() = default;
  BundleExporter(const BundleExporter&) = delete;
  BundleExporter& operator=(const BundleExporter&) = delete;
  virtual Result<BundleExported> export_bundle(const BundleExport& request) = 0;
  virtual Result<KeyHandedOver> hand_over_key(const KeyHandOver& request) = 0;
};

// What GuestDetails reports about the guest.
struct GuestInfo {
  std::string tee;
  std::string init_data_digest_hex;  // "" without init-data
  bool config_from_init_data = false;
  // The agent's start: attestation and its configuration fetched from the KBS (PullImage
  // reports it as attestation_us).
  std::chrono::microseconds startup_attestation{0};
};

// The pulls in flight (ImageService::progress in production), for PullProgress.
using PullProgressFn = std::function<std::vector<PullProgress>()>;

struct AgentServiceDeps {
  ContainerExecutor* executor = nullptr;  // not owned, outlives the service
  PullImageFn pull;
  PullProgressFn pull_progress;  // optional: PullProgress answers no pulls without it
  MeasureFn measure;
  std::shared_ptr<AgentPolicy> policy;
  GuestInfo guest;
  SandboxHooks sandbox_hooks;  // optional
  // Sealed secrets (optional; without `unseal` a sealed value fails CreateContainer with
  // "sealed_secrets_unavailable"): environment values of the image config and of the request
  // that start with "sealed." are unsealed into the container's environment, and a bind mount
  // whose source is a file holding a sealed secret is replaced by a file with the plaintext
  // under `sealed_dir`/<container id>/ (mode 0400, removed with the container).
  UnsealFn unseal;
  std::filesystem::path sealed_dir;
  // ExportBundle / HandOverKey (optional; without it both fail with "export_unavailable").
  std::shared_ptr<BundleExporter> exporter;
};

// The google.rpc status for a component or service error.
net::ttrpc::RpcStatus to_rpc_status(const Error& error);

class AgentService {
 public:
  explicit AgentService(AgentServiceDeps deps);

  // Registers every method of coffer.agent.v1.Agent on `server`; the service outlives it.
  void register_methods(net::ttrpc::Server& server);

  // One call: what the registered method runs (for tests that bypass the transport).
  net::ttrpc::CallResult call(std::string_view method, const net::ttrpc::CallContext& ctx,
                              std::string_view request);

 private:
  Result<PulledImage> pull_and_measure(const std::string& reference, std::stop_token stop);
  // Replaces sealed secrets in the environment and in bind-mounted files by their plaintext.
  Status unseal_secrets(const std::string& container_id, const oci::ImageConfig& config,
                        SpecOverrides& overrides);
  void remove_secrets(const std::string& container_id);

  AgentServiceDeps deps_;
  std::mutex mu_;                                           // guards measured_
  std::set<std::pair<std::string, std::string>> measured_;  // (reference, digest) extended
};

}  // namespace coffer::agent
