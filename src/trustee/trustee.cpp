#include "trustee/trustee.h"

#include <sys/stat.h>

#include "core/file.h"
#include "core/log.h"
#include "crypto/x509.h"
#include "trustee/as/verifiers.h"
#include "trustee/kms/key_file.h"
#include "verifier/sample/sample_verifier.h"

namespace coffer::trustee {
namespace {

// The EAR signing key: a P-256 PEM, generated (mode 0600) at first start and kept.
Result<crypto::Key> load_or_create_signer(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if ((st.st_mode & 077) != 0) {
      return make_error("insecure_key_file", "token signing key '" + path.string() +
                                                 "' is readable by others: chmod 600 it");
    }
    auto pem = COFFER_TRY(read_text_file(path, 64 * 1024));
    auto key = crypto::Key::from_pem(pem);
    if (!key) return wrap_error(key.error(), "token signing key '" + path.string() + "'");
    return key;
  }
  auto key = COFFER_TRY(crypto::Key::generate(crypto::KeyType::kEcP256));
  auto pem = COFFER_TRY(key.private_pem());
  COFFER_TRY_STATUS(write_file_atomic(path, as_bytes(pem), 0600));
  spdlog::info("generated attestation token signing key {}", path.string());
  return key;
}

// Within this of its expiry, the TLS certificate is announced at start.
constexpr std::chrono::hours kCertificateExpiryWarning{7 * 24};

// The serving certificate (the first of the file) must be valid now: a trustee that starts with
// an expired or not yet valid certificate is unreachable for every client that checks it, which
// is worse to find out later than refusing now.
Status check_tls_certificate(const std::filesystem::path& path, TimePoint now) {
  auto pem = read_text_file(path, 1024 * 1024);
  if (!pem) return wrap_error(pem.error(), "http_server.certificate");
  auto chain = crypto::Certificate::chain_from_pem(*pem);
  if (!chain || chain->empty()) {
    return make_error("bad_config",
                      "http_server.certificate '" + path.string() + "' holds no PEM certificate");
  }
  const auto& leaf = chain->front();
  if (now < leaf.not_before()) {
    return make_error("tls_certificate_not_yet_valid",
                      "http_server.certificate '" + path.string() + "' is not valid before " +
                          format_rfc3339(leaf.not_before()) + " (now " + format_rfc3339(now) +
                          "): check the clock or issue a new certificate");
  }
  if (now >= leaf.not_after()) {
    return make_error("tls_certificate_expired",
                      "http_server.certificate '" + path.string() + "' expired at " +
                          format_rfc3339(leaf.not_after()) + ": renew it");
  }
  if (leaf.not_after() - now < kCertificateExpiryWarning) {
    spdlog::warn("http_server.certificate '{}' expires at {} (in less than 7 days): renew it",
                 path.string(), format_rfc3339(leaf.not_after()));
  }
  return ok();
}

}  // namespace

Trustee::~Trustee() { stop(); }

Result<std::unique_ptr<Trustee>> Trustee::create(const TrusteeConfig& config,
                                                 const std::shared_ptr<const Clock>& clock) {
  std::unique_ptr<Trustee> t(new Trustee());
  t->config_ = config;
  if (config.http_server.certificate) {
    COFFER_TRY_STATUS(check_tls_certificate(*config.http_server.certificate,
                                            (clock ? clock : system_clock())->now()));
  }

  auto kek = kms::load_or_create_kek(config.storage_backend.key_file);
  if (!kek) return std::unexpected(kek.error());
  auto store = storage::SqliteStore::open(config.storage_backend.path, std::move(*kek));
  if (!store) return std::unexpected(store.error());
  t->store_ = std::move(*store);
  t->rvps_ = COFFER_TRY(rvps::Rvps::open(*t->store_));

  auto signer = COFFER_TRY(load_or_create_signer(config.attestation_token.signer_key_path));
  as::AttestationServiceConfig as_config;
  as_config.token_lifetime = config.attestation_token.duration;
  as_config.issuer = config.attestation_token.issuer;
  as_config.default_policy_id = config.attestation_service.default_policy_id;
  as_config.policy_limits.deadline = config.policy.evaluation_deadline;
  as_config.policy_limits.max_builtin_bytes = config.policy.max_builtin_bytes;
  t->as_ = COFFER_TRY(
      as::AttestationService::create(as_config, std::move(signer), *t->store_, *t->rvps_, clock));
  // Hardware TEEs (tdx, sgx, snp) verify against the vendors' roots unless configured otherwise.
  config::Section verifiers =
      config::Section(config.document.get(), "").section("attestation_service").section("verifier");
  if (auto registered = as::register_tee_verifiers(*t->as_, verifiers, clock, config.base_dir);
      !registered) {
    return std::unexpected(registered.error());
  }
  if (config.attestation_service.sample_enabled) {
    spdlog::warn(
        "the 'sample' TEE is ENABLED: unsigned evidence is accepted (tests and development only)");
    t->as_->register_verifier(std::make_unique<verifier::sample::SampleVerifier>());
  }

  std::vector<crypto::Key> admin_keys;
  for (const auto& path : config.admin.auth_public_keys) {
    auto pem = read_text_file(path, 64 * 1024);
    if (!pem) return wrap_error(pem.error(), "admin public key");
    auto key = crypto::Key::from_pem(*pem);
    if (!key) return wrap_error(key.error(), "admin public key '" + path.string() + "'");
    if (key->type() != crypto::KeyType::kEd25519 && key->type() != crypto::KeyType::kEcP256) {
      return make_error("bad_config", "admin key '" + path.string() + "' must be Ed25519 or P-256");
    }
    admin_keys.push_back(key->public_key());
  }
  if (config.admin.insecure_admin) {
    spdlog::warn(
        "INSECURE ADMIN: the admin API accepts requests WITHOUT authentication (insecure_admin = "
        "true); "
        "never use this outside local development");
  } else if (admin_keys.empty()) {
    spdlog::warn("no [admin] auth_public_keys configured: the admin API refuses every request");
  }
  kbs::AdminAuth admin(std::move(admin_keys), config.admin.insecure_admin, clock);
  kbs::KbsSettings settings;
  settings.sessions.challenge_ttl = config.attestation_service.session_timeout;
  settings.sessions.max_attested_sessions = config.attestation_service.max_sessions;
  settings.sessions.max_consumed_nonces = config.kbs.max_consumed_nonces;
  settings.policy_limits.deadline = config.policy.evaluation_deadline;
  settings.policy_limits.max_builtin_bytes = config.policy.max_builtin_bytes;
  if (config.kbs.session_key_file) {
    settings.session_key = COFFER_TRY(kbs::load_session_key(*config.kbs.session_key_file));
  }
  t->kbs_ = COFFER_TRY(
      kbs::KbsService::create(settings, *t->store_, *t->rvps_, *t->as_, std::move(admin), clock));

  net::HttpServerConfig http;
  http.sockets = config.http_server.sockets;
  http.worker_threads = config.http_server.worker_threads;
  http.max_body_bytes = config.http_server.payload_request_size_bytes;
  http.max_connections = config.http_server.max_connections;
  http.max_connections_per_address = config.http_server.max_connections_per_address;
  http.header_timeout = config.http_server.header_timeout;
  if (config.http_server.certificate) {
    http.tls =
        net::TlsServerConfig{*config.http_server.certificate, *config.http_server.private_key};
  } else {
    spdlog::warn("serving plain HTTP (insecure_http = true): use TLS outside development");
  }
  kbs::KbsService* kbs = t->kbs_.get();
  t->server_ = std::make_unique<net::HttpServer>(
      http, [kbs](const net::Request& r) { return kbs->handle(r); });
  return t;
}

Status Trustee::start() { return server_->start(); }

void Trustee::stop() {
  if (server_) server_->stop();
}

std::vector<std::string> Trustee::urls() const {
  std::vector<std::string> out;
  auto ports = server_->bound_ports();
  std::string scheme = config_.http_server.certificate ? "https://" : "http://";
  for (std::size_t i = 0; i < ports.size() && i < config_.http_server.sockets.size(); ++i) {
    const std::string& s = config_.http_server.sockets[i];
    std::string host = s.substr(0, s.rfind(':'));
    if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
    if (host == "[::]") host = "[::1]";
    out.push_back(scheme + host + ":" + std::to_string(ports[i]));
  }
  return out;
}

}  // namespace coffer::trustee
