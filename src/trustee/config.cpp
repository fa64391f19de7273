#include "trustee/config.h"

#include <algorithm>

#include "core/bytes.h"

#include "core/config.h"
#include "core/file.h"

namespace coffer::trustee {
namespace {

std::filesystem::path resolve(const std::filesystem::path& base, const std::string& p) {
  std::filesystem::path path(p);
  return path.is_absolute() ? path : base / path;
}

Result<std::int64_t> positive(const config::Section& s, std::string_view key, std::int64_t def,
                              std::int64_t max) {
  auto v = COFFER_TRY(s.integer(key, def));
  if (v < 1 || v > max) {
    return make_error("bad_config", "'" + s.name() + "." + std::string(key) +
                                        "' must be between 1 and " + std::to_string(max));
  }
  return v;
}

bool valid_policy_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::ranges::all_of(id, [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-' || ch == '.';
  });
}

}  // namespace

bool valid_log_level(std::string_view level) {
  static constexpr std::string_view kLevels[] = {"trace", "debug",    "info", "warn",
                                                 "error", "critical", "off"};
  return std::ranges::find(kLevels, level) != std::end(kLevels);
}

Result<TrusteeConfig> parse_config(std::string_view toml_text,
                                   const std::filesystem::path& base_dir,
                                   std::string_view source_name) {
  auto table = COFFER_TRY(config::parse(toml_text, source_name));
  config::Section root(&table, "");
  COFFER_TRY_STATUS(
      root.reject_unknown({"http_server", "admin", "attestation_token", "attestation_service",
                           "kbs", "policy", "storage_backend", "log_level"}));
  TrusteeConfig c;
  c.log_level = COFFER_TRY(root.string("log_level", "info"));
  if (!valid_log_level(c.log_level)) {
    return make_error("bad_config",
                      "'log_level' must be one of trace, debug, info, warn, error, "
                      "critical, off (not '" +
                          printable_excerpt(c.log_level, 32) + "')");
  }

  auto http = root.section("http_server");
  COFFER_TRY_STATUS(http.reject_unknown(
      {"sockets", "insecure_http", "private_key", "certificate", "payload_request_size",
       "worker_threads", "max_connections", "max_connections_per_address", "header_timeout_ms"}));
  if (auto sockets = COFFER_TRY(http.string_array("sockets")); !sockets.empty())
    c.http_server.sockets = sockets;
  c.http_server.insecure_http = COFFER_TRY(http.boolean("insecure_http", false));
  if (auto k = COFFER_TRY(http.optional_string("private_key")))
    c.http_server.private_key = resolve(base_dir, *k);
  if (auto k = COFFER_TRY(http.optional_string("certificate")))
    c.http_server.certificate = resolve(base_dir, *k);
  // Trustee counts payload_request_size in MiB.
  c.http_server.payload_request_size_bytes =
      static_cast<std::size_t>(COFFER_TRY(positive(http, "payload_request_size", 2, 1024))) * 1024 *
      1024;
  c.http_server.worker_threads =
      static_cast<std::size_t>(COFFER_TRY(positive(http, "worker_threads", 2, 256)));
  c.http_server.max_connections =
      static_cast<std::size_t>(COFFER_TRY(positive(http, "max_connections", 1024, 1'000'000)));
  auto per_address = COFFER_TRY(http.integer("max_connections_per_address", 64));
  if (per_address < 0 || per_address > 1'000'000) {
    return make_error("bad_config",
                      "'http_server.max_connections_per_address' must be between 0 (no limit) "
                      "and 1000000");
  }
  c.http_server.max_connections_per_address = static_cast<std::size_t>(per_address);
  c.http_server.header_timeout =
      std::chrono::milliseconds(COFFER_TRY(positive(http, "header_timeout_ms", 10'000, 3'600'000)));
  if (!c.http_server.insecure_http && (!c.http_server.private_key || !c.http_server.certificate)) {
    return make_error("bad_config",
                      "http_server needs private_key and certificate for HTTPS, or insecure_http = "
                      "true for plain "
                      "HTTP (development only)");
  }
  if (c.http_server.private_key.has_value() != c.http_server.certificate.has_value()) {
    return make_error("bad_config",
                      "http_server.private_key and http_server.certificate go together");
  }

  auto admin = root.section("admin");
  COFFER_TRY_STATUS(admin.reject_unknown({"auth_public_keys", "insecure_admin"}));
  for (const auto& k : COFFER_TRY(admin.string_array("auth_public_keys"))) {
    c.admin.auth_public_keys.push_back(resolve(base_dir, k));
  }
  c.admin.insecure_admin = COFFER_TRY(admin.boolean("insecure_admin", false));

  auto token = root.section("attestation_token");
  COFFER_TRY_STATUS(token.reject_unknown({"signer_key_path", "duration_min", "issuer"}));
  c.attestation_token.signer_key_path =
      resolve(base_dir, COFFER_TRY(token.string("signer_key_path", "token-signer.pem")));
  c.attestation_token.duration =
      std::chrono::minutes(COFFER_TRY(positive(token, "duration_min", 5, 24 * 60)));
  c.attestation_token.issuer = COFFER_TRY(token.string("issuer", "coffer-trustee"));

  auto as = root.section("attestation_service");
  COFFER_TRY_STATUS(
      as.reject_unknown({"timeout", "max_sessions", "default_policy_id", "verifier"}));
  c.attestation_service.session_timeout =
      std::chrono::minutes(COFFER_TRY(positive(as, "timeout", 5, 24 * 60)));
  c.attestation_service.max_sessions =
      static_cast<std::size_t>(COFFER_TRY(positive(as, "max_sessions", 10000, 10'000'000)));
  c.attestation_service.default_policy_id =
      COFFER_TRY(as.string("default_policy_id", "default_cpu"));
  // The admin API accepts only such ids: another one could never be set (see kbs_service.cpp).
  if (!valid_policy_id(c.attestation_service.default_policy_id)) {
    return make_error("bad_config",
                      "'attestation_service.default_policy_id' must be 1-128 characters of A-Z a-z "
                      "0-9 _ - . (not '" +
                          printable_excerpt(c.attestation_service.default_policy_id, 32) + "')");
  }
  auto verifiers = as.section("verifier");
  COFFER_TRY_STATUS(verifiers.reject_unknown({"sample", "tdx", "sgx", "snp"}));
  auto sample = verifiers.section("sample");
  COFFER_TRY_STATUS(sample.reject_unknown({"enabled"}));
  c.attestation_service.sample_enabled = COFFER_TRY(sample.boolean("enabled", false));

  auto kbs = root.section("kbs");
  COFFER_TRY_STATUS(kbs.reject_unknown({"session_key_file", "max_consumed_nonces"}));
  if (auto k = COFFER_TRY(kbs.optional_string("session_key_file")))
    c.kbs.session_key_file = resolve(base_dir, *k);
  c.kbs.max_consumed_nonces = static_cast<std::size_t>(
      COFFER_TRY(positive(kbs, "max_consumed_nonces", 100000, 100'000'000)));

  auto pol = root.section("policy");
  COFFER_TRY_STATUS(pol.reject_unknown({"evaluation_deadline_ms", "max_builtin_bytes"}));
  c.policy.evaluation_deadline =
      std::chrono::milliseconds(COFFER_TRY(positive(pol, "evaluation_deadline_ms", 1000, 600'000)));
  c.policy.max_builtin_bytes = static_cast<std::size_t>(
      COFFER_TRY(positive(pol, "max_builtin_bytes", 64 << 20, std::int64_t{1} << 40)));

  auto storage = root.section("storage_backend");
  COFFER_TRY_STATUS(storage.reject_unknown({"type", "path", "key_file"}));
  c.storage_backend.type = COFFER_TRY(storage.string("type", "sqlite"));
  if (c.storage_backend.type != "sqlite") {
    return make_error("bad_config",
                      "storage_backend.type must be \"sqlite\" (PostgreSQL is not built yet)");
  }
  c.storage_backend.path = resolve(base_dir, COFFER_TRY(storage.string("path", "trustee.db")));
  c.storage_backend.key_file =
      resolve(base_dir, COFFER_TRY(storage.string("key_file", "storage.kek")));
  c.base_dir = base_dir;
  c.document = std::make_shared<const toml::table>(std::move(table));
  return c;
}

Result<TrusteeConfig> load_config(const std::filesystem::path& path) {
  auto text = read_text_file(path, 1024 * 1024);
  if (!text) return wrap_error(text.error(), "reading configuration");
  auto base = std::filesystem::absolute(path).parent_path();
  return parse_config(*text, base, path.string());
}

}  // namespace coffer::trustee
