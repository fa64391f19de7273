// The guest's configuration from CoCo init-data, the attestation agent (AA) facade with its
// runtime-measurement event log, and the confidential data hub (CDH).
//
// CONTRACT (written by the lead before the implementation; the implementer may add members and
// refine comments, but keeps these names and meanings so the agent service can call them).
//
// Init-data: CoCo's TOML (version, algorithm sha256/sha384/sha512, [data] with "aa.toml",
// "cdh.toml" and "policy.rego" as strings). aa.toml and cdh.toml follow CoCo's guest-components
// formats (aa: [token_configs.kbs] url/cert; cdh: [kbc] name/url/kbs_cert, [image]
// image_security_policy_uri, authenticated_registry_credentials_uri, ...). Unknown keys are
// ignored as CoCo does; wrong types are "bad_init_data".
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "core/error.h"
#include "core/json.h"
#include "guest/aa/attester.h"
#include "guest/aa/kbs_client.h"

namespace coffer::guest {

struct GuestConfig {
  // Where it came from: the init-data text (kept verbatim: its digest is what the TEE binds), or
  // nothing (built-in defaults; then `init_data_toml` is empty and from_init_data false).
  bool from_init_data = false;
  std::string init_data_toml;
  Bytes init_data_digest;  // with the init-data's algorithm

  // aa.toml
  std::string kbs_url;       // token_configs.kbs.url ("" : no KBS configured)
  std::string kbs_cert_pem;  // token_configs.kbs.cert
  // cdh.toml (kbc url/cert fall back to aa's when absent, and must agree when both present)
  std::string image_security_policy_uri;     // kbs:///... ("" : the agent's default)
  std::string registry_credentials_uri;      // kbs:///... ("" : anonymous)
  std::vector<std::string> sealed_secret_keys;  // kbs:/// URIs of JWKs that may sign sealed secrets
  std::vector<std::string> insecure_registries; // cdh [image] (coffer extension, documented)
  bool require_encrypted_layers = false;        // cdh [image] (coffer extension, documented)
  // "policy.rego": the agent policy ("" : the built-in default)
  std::string agent_policy_rego;
};

// Parses init-data. "bad_init_data" with the offending key.
Result<GuestConfig> parse_guest_config(std::string_view init_data_toml);

// Checks that the TEE binds exactly this init-data's digest (TDX MRCONFIGID, SNP HOST_DATA, the
// sim's equivalents). "init_data_mismatch" otherwise. Without init-data: nothing to check.
Status check_init_data_binding(const GuestConfig& config, aa::Attester& attester);

// One runtime measurement event (CoCo AA's event log: domain, operation, content), extended into
// RTMR3 / the sim TEE's equivalent as SHA-384 of "domain operation content".
struct MeasurementEvent {
  std::string domain;     // "github.com/confidential-containers" style, e.g. "coffer.dev/agent"
  std::string operation;  // "pull_image", "create_container"
  std::string content;    // e.g. "docker.io/x@sha256:..."
};

// The attestation agent facade: one attester, one KBS client, token cache with expiry and
// re-attestation, and the event log. Thread-safe (one mutex around the KBS client).
class AttestationAgent {
 public:
  AttestationAgent(std::unique_ptr<aa::Attester> attester, const GuestConfig& config,
                   aa::KbsClientOptions kbs_options = {});
  ~AttestationAgent();

  [[nodiscard]] std::string_view tee() const;
  // A valid KBS attestation token (cached until shortly before exp).
  Result<std::string> token();
  // Evidence binding SHA-384(runtime_data) (padded to 64 bytes), with the event log.
  Result<Json> evidence(ByteView runtime_data);
  // Extends the runtime measurement register and appends the event to the log.
  Status extend(const MeasurementEvent& event);
  [[nodiscard]] std::vector<MeasurementEvent> event_log() const;
  // kbs:///repo/type/tag or repo/type/tag, attesting when needed. "no_kbs" without a KBS URL.
  Result<Bytes> get_resource(std::string_view uri);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// The confidential data hub: KBS resources, the ocicrypt key provider, sealed secrets.
class DataHub {
 public:
  explicit DataHub(AttestationAgent& aa, const GuestConfig& config);

  Result<Bytes> get_resource(std::string_view uri);
  // ocicrypt provider.attestation-agent: the 32-byte key at kid (kbs:///...).
  Result<Bytes> unwrap_key(const std::string& kid);
  // CoCo sealed secret "sealed.<JWS compact>" (header.payload.signature, payload JSON with
  // version, type "vault", name = kbs:/// URI, provider "kbs"...): the JWS is verified with a key
  // named in config.sealed_secret_keys, then the named resource is fetched. "bad_sealed_secret",
  // "sealed_secret_signature".
  Result<Bytes> unseal(std::string_view sealed);
  // True for a value that is a sealed secret ("sealed." prefix).
  static bool is_sealed(std::string_view value);

 private:
  AttestationAgent& aa_;
  GuestConfig config_;
};

}  // namespace coffer::guest
