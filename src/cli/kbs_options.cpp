#include "cli/kbs_options.h"

#include <chrono>

#include "cli/exit.h"
#include "core/bytes.h"
#include "core/clock.h"
#include "core/file.h"
#include "crypto/pkey.h"
#include "jose/jwt.h"

namespace coffer::cli {

void add_kbs_connection_options(CLI::App* app, KbsConnection& c, bool admin, bool short_aliases) {
  auto names = [short_aliases](const std::string& prefixed, const std::string& short_name) {
    return short_aliases ? prefixed + "," + short_name : prefixed;
  };
  app->add_option(names("--kbs-url", "--url"), c.url, "KBS base URL, e.g. https://kbs.example:8080")
      ->envname("COFFER_KBS_URL")
      ->transform(http_url());
  app->add_option(names("--kbs-ca-file", "--ca-file"), c.ca_file, "PEM CA bundle for an https KBS")
      ->envname("COFFER_KBS_CA_FILE")
      ->check(readable_file());
  app->add_flag(names("--kbs-insecure", "--insecure"), c.insecure,
                "skip the KBS's TLS certificate verification (development only)");
  if (admin) {
    app->add_option(names("--kbs-admin-key", "--admin-key"), c.admin_key,
                    "KBS admin private key, Ed25519 or P-256 PEM")
        ->envname("COFFER_KBS_ADMIN_KEY");
  }
}

void add_kbs_attestation_options(CLI::App* app, KbsAttestation& a) {
  app->add_option("--tee", a.tee,
                  "attester: sample, tdx, snp, sgx, sim-tdx, sim-snp, sim-sgx, auto")
      ->capture_default_str();
  app->add_option("--quote-service", a.quote_service,
                  "Unix socket of the simulated TEE's quote service");
  app->add_option("--init-data", a.init_data, "CoCo init-data TOML to send")
      ->check(CLI::ExistingFile);
}

net::HttpClientOptions kbs_http_options(const KbsConnection& c) {
  net::HttpClientOptions http;
  http.ca_file = c.ca_file;
  http.insecure_skip_verify = c.insecure;
  http.cookies = false;
  return http;
}

Result<guest::aa::KbsClientOptions> kbs_client_options(const KbsConnection& c,
                                                       const KbsAttestation& a) {
  guest::aa::KbsClientOptions o;
  o.ca_file = c.ca_file;
  o.insecure = c.insecure;
  if (!a.init_data.empty()) o.init_data_toml = COFFER_TRY(read_text_file(a.init_data, 1 << 20));
  return o;
}

Result<std::string> kbs_admin_token(const std::string& admin_key_path) {
  auto pem = COFFER_TRY(read_text_file(admin_key_path, 64 * 1024));
  auto key = crypto::Key::from_pem(pem);
  if (!key || !key->has_private()) {
    return make_error("bad_key", "admin key '" + admin_key_path + "' is not a private key PEM");
  }
  auto now = unix_seconds(system_clock()->now());
  auto alg = key->type() == crypto::KeyType::kEd25519 ? jose::JwsAlg::kEdDSA : jose::JwsAlg::kES256;
  return jose::jwt_sign(Json{{"iat", now}, {"exp", now + 300}}, *key, alg);
}

Status kbs_set_resource(const KbsConnection& c, std::string_view path, const Bytes& value) {
  auto token = COFFER_TRY(kbs_admin_token(c.admin_key));
  net::HttpClient client(kbs_http_options(c));
  net::ClientRequest req{.method = "POST", .url = c.url + "/kbs/v0/resource/" + std::string(path)};
  req.headers.set("Authorization", "Bearer " + token);
  req.headers.set("Content-Type", "application/octet-stream");
  req.body = to_string(value);
  auto resp = client.request(req);
  if (!resp) {
    // the transport's own code (tls_untrusted, empty_reply...) picks the exit code and the hint
    return make_error(resp.error().code,
                      "cannot reach the KBS at " + c.url + ": " + resp.error().to_string());
  }
  if (resp->status / 100 != 2) {
    return make_error(kbs_status_code(resp->status),
                      "registering kbs:///" + std::string(path) + ": KBS answered " +
                          std::to_string(resp->status) + " " + printable_excerpt(resp->body, 300));
  }
  return ok();
}

KbsKeyFetcher::KbsKeyFetcher(KbsConnection c, KbsAttestation a)
    : conn_(std::move(c)), att_(std::move(a)) {}
KbsKeyFetcher::~KbsKeyFetcher() = default;

Result<Bytes> KbsKeyFetcher::fetch(const std::string& kid) {
  if (!kid.starts_with("kbs:///")) {
    return make_error("bad_resource_path", "'" + kid + "' is not kbs:///repo/type/tag");
  }
  if (!client_) {
    guest::aa::AttesterOptions opts;
    if (!att_.quote_service.empty()) opts.quote_service_socket = att_.quote_service;
    attester_ = COFFER_TRY(guest::aa::make_attester(att_.tee, opts));
    client_ = std::make_unique<guest::aa::KbsClient>(conn_.url, *attester_,
                                                     COFFER_TRY(kbs_client_options(conn_, att_)));
  }
  auto value = client_->get_resource(kid.substr(7));
  if (!value) {
    Error e = value.error();
    if (const auto& p = client_->last_problem()) {
      e.message += " (KBS " + std::to_string(p->status) + " " + p->variant + ": " +
                   printable_excerpt(p->detail, 400) + ")";
    }
    return std::unexpected(e);
  }
  return value;
}

}  // namespace coffer::cli
