// coffer-trustee configuration (TOML). Key names follow Trustee's where the concept is the same;
// every key is documented in docs/trustee-config.md. Relative paths resolve against the
// directory of the configuration file.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/error.h"

namespace coffer::trustee {

struct HttpServerSettings {
  std::vector<std::string> sockets = {"127.0.0.1:8080"};
  bool insecure_http = false;
  std::optional<std::filesystem::path> private_key;
  std::optional<std::filesystem::path> certificate;
  std::size_t payload_request_size_bytes = 2 * 1024 * 1024;
  std::size_t worker_threads = 2;
  std::size_t max_connections = 1024;
  std::size_t max_connections_per_address = 64;  // 0: no per-address limit
  std::chrono::milliseconds header_timeout{10'000};
};

struct AdminSettings {
  std::vector<std::filesystem::path> auth_public_keys;
  bool insecure_admin = false;
};

struct TokenSettings {
  std::filesystem::path signer_key_path = "token-signer.pem";
  std::chrono::seconds duration{std::chrono::minutes(5)};
  std::string issuer = "coffer-trustee";
};

struct AttestationServiceSettings {
  std::chrono::seconds session_timeout{std::chrono::minutes(5)};  // lifetime of a challenge
  std::size_t max_sessions = 10000;  // attested sessions kept for cookie-based resource requests
  bool sample_enabled = false;
  std::string default_policy_id = "default_cpu";
};

// [kbs]: session cookies (see trustee/kbs/sessions.h).
struct KbsConfigSettings {
  // Key authenticating kbs-session-id cookies; replicas behind one address share it. Absent: a
  // random key per process.
  std::optional<std::filesystem::path> session_key_file;
  std::size_t max_consumed_nonces = 100000;  // replay cache of redeemed challenges
};

// [policy]: bounds on every Rego evaluation (attestation and resource policies).
struct PolicySettings {
  std::chrono::milliseconds evaluation_deadline{1000};
  std::size_t max_builtin_bytes = 64 << 20;
};

struct StorageSettings {
  std::string type = "sqlite";
  std::filesystem::path path = "trustee.db";
  std::filesystem::path key_file = "storage.kek";
};

struct TrusteeConfig {
  HttpServerSettings http_server;
  AdminSettings admin;
  TokenSettings attestation_token;
  AttestationServiceSettings attestation_service;
  KbsConfigSettings kbs;
  PolicySettings policy;
  StorageSettings storage_backend;
  std::string log_level = "info";
  // The parsed document and its directory, for sections other modules interpret themselves
  // ([attestation_service.verifier.tdx|sgx|snp], see trustee/as/verifiers.h).
  std::shared_ptr<const toml::table> document;
  std::filesystem::path base_dir;
};

// The spdlog level names `log_level` and `coffer-trustee --log-level` accept.
bool valid_log_level(std::string_view level);

// Parses and validates a configuration; `base_dir` anchors relative paths.
// Errors: "bad_config" naming the key.
Result<TrusteeConfig> parse_config(std::string_view toml_text,
                                   const std::filesystem::path& base_dir,
                                   std::string_view source_name = "config");
Result<TrusteeConfig> load_config(const std::filesystem::path& path);

}  // namespace coffer::trustee
