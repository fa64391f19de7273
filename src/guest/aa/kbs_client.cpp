#include "guest/aa/kbs_client.h"

#include <algorithm>
#include <thread>

#include "crypto/digest.h"
#include "crypto/pkey.h"
#include "jose/jcs.h"
#include "jose/jwe.h"
#include "jose/jwk.h"
#include "jose/jwt.h"
#include "net/http_client.h"

namespace coffer::guest::aa {
namespace {

constexpr std::string_view kApi = "/kbs/v0/";

// Transport failures worth another attempt; TLS and URL errors are not.
bool retryable_transport(const Error& e) {
  return e.code == "connect_failed" || e.code == "timeout" || e.code == "network_error";
}

bool retryable_status(int status) { return status >= 500 || status == 429; }

KbsProblem parse_problem(const net::Response& r) {
  KbsProblem p;
  p.status = r.status;
  if (auto body = parse_json(r.body, {.max_bytes = 64 * 1024}); body && body->is_object()) {
    p.type = json_optional_string(*body, "type").value_or("");
    p.detail = json_optional_string(*body, "detail").value_or("");
  }
  if (auto slash = p.type.rfind('/'); slash != std::string::npos) {
    p.variant = p.type.substr(slash + 1);
  } else {
    p.variant = p.type;
  }
  if (p.detail.empty() && p.type.empty()) p.detail = r.body.substr(0, 256);
  return p;
}

// "repo/type/tag" from the accepted spellings; each segment as the KBS allows it.
Result<std::string> normalize_resource_path(std::string_view path) {
  if (path.starts_with("kbs://")) {
    path.remove_prefix(6);
    // kbs://<authority>/repo/type/tag: the authority (usually empty) is ignored.
    auto slash = path.find('/');
    if (slash == std::string_view::npos)
      return make_error("bad_resource_path", "kbs:// URI needs /<repo>/<type>/<tag>");
    path.remove_prefix(slash);
  }
  if (path.starts_with('/')) path.remove_prefix(1);
  int segments = 0;
  std::size_t start = 0;
  while (true) {
    auto end = path.find('/', start);
    std::string_view seg =
        path.substr(start, end == std::string_view::npos ? path.npos : end - start);
    bool valid = !seg.empty() && seg.size() <= 128 && seg != "." && seg != ".." &&
                 seg.front() != '.' && std::all_of(seg.begin(), seg.end(), [](char c) {
                   return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
                 });
    if (!valid) {
      return make_error("bad_resource_path",
                        "resource path must be <repo>/<type>/<tag> with segments of "
                        "[A-Za-z0-9_-][A-Za-z0-9_.-]*");
    }
    ++segments;
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  if (segments != 3)
    return make_error("bad_resource_path", "resource path must have exactly 3 segments");
  return std::string(path);
}

}  // namespace

class KbsClient::Impl {
 public:
  Impl(std::string url, Attester& attester, KbsClientOptions options)
      : url_(std::move(url)), attester_(attester), options_(std::move(options)) {
    while (url_.ends_with('/')) url_.pop_back();
    if (!options_.clock) options_.clock = system_clock();
    http_ = std::make_unique<net::HttpClient>(net::HttpClientOptions{
        .timeout = options_.request_timeout,
        .ca_file = options_.ca_file,
        .insecure_skip_verify = options_.insecure,
        .follow_redirects = false,
    });
  }

  Result<std::string> attest() {
    token_.reset();
    int attempt = 0;
    while (true) {
      auto token = handshake();
      if (token) return token;
      if (!retry_after(token.error(), attempt)) {
        if (retryable_transport(token.error()))
          return make_error("kbs_unreachable", token.error().message);
        return std::unexpected(token.error());
      }
      ++attempt;
    }
  }

  Result<Bytes> get_resource(std::string_view repo_type_tag) {
    std::string path = COFFER_TRY(normalize_resource_path(repo_type_tag));
    bool rehandshaken = false;
    if (!valid_token()) {
      COFFER_TRY(attest());
      rehandshaken = true;
    }
    int attempt = 0;
    while (true) {
      net::ClientRequest req{.method = "GET", .url = url_ + std::string(kApi) + "resource/" + path};
      req.headers.set("Authorization", "Bearer " + *token_);
      auto r = http_->request(req);
      if (!r) {
        if (retry_after(Error{r.error().code, ""}, attempt)) {
          ++attempt;
          continue;
        }
        return make_error(retryable_transport(r.error()) ? "kbs_unreachable" : r.error().code,
                          "GET resource " + path + ": " + r.error().message);
      }
      if (r->status == 401 && !rehandshaken) {
        // The token was refused (expired early, KBS key rotated, restarted): attest once more.
        rehandshaken = true;
        COFFER_TRY(attest());
        continue;
      }
      if (r->status != 200) {
        auto e = kbs_error(*r, "GET resource " + path);
        if (retryable_status(r->status) && retry_after(e.error(), attempt)) {
          ++attempt;
          continue;
        }
        return e;
      }
      auto jwe = parse_json(r->body, {.max_bytes = jose::kMaxJweBytes});
      if (!jwe || !jwe->is_object())
        return make_error("kbs_bad_response", "resource response is not a JWE JSON object");
      const crypto::Key* key = COFFER_TRY(ephemeral_key());
      return jose::jwe_decrypt(*jwe, *key);
    }
  }

  [[nodiscard]] std::optional<std::string> token() const {
    if (!valid_token()) return std::nullopt;
    return token_;
  }

  Result<Json> tee_pubkey() {
    const crypto::Key* key = COFFER_TRY(ephemeral_key());
    Json jwk = COFFER_TRY(jose::key_to_jwk(key->public_key()));
    // As CoCo's attestation agent sends it: the JWE algorithm the KBS should seal with.
    jwk["alg"] = "ECDH-ES+A256KW";
    return jwk;
  }

  std::optional<KbsProblem> last_problem_;

 private:
  Result<const crypto::Key*> ephemeral_key() {
    if (!key_) key_ = COFFER_TRY(crypto::Key::generate(crypto::KeyType::kEcP256));
    return &*key_;
  }

  [[nodiscard]] bool valid_token() const {
    if (!token_) return false;
    if (!token_expiry_) return true;
    return options_.clock->now() + options_.token_refresh_margin < *token_expiry_;
  }

  // Sleeps before another attempt when `e` is transient and attempts remain.
  bool retry_after(const Error& e, int attempt) {
    bool transient = retryable_transport(e) || e.code == "kbs_server_error" || e.code == "kbs_busy";
    if (!transient || attempt >= options_.max_retries) return false;
    auto delay = options_.initial_backoff * (1LL << std::min(attempt, 16));
    delay = std::min<std::chrono::milliseconds>(delay, options_.max_backoff);
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
    return true;
  }

  std::unexpected<Error> kbs_error(const net::Response& r, const std::string& what) {
    KbsProblem p = parse_problem(r);
    last_problem_ = p;
    std::string msg = what + ": KBS answered " + std::to_string(r.status);
    if (!p.variant.empty()) msg += " " + p.variant;
    if (!p.detail.empty()) msg += ": " + p.detail;
    return make_error(kbs_status_code(r.status), msg);
  }

  Result<net::Response> post_json(std::string_view endpoint, const Json& body) {
    net::ClientRequest req{.method = "POST",
                           .url = url_ + std::string(kApi) + std::string(endpoint)};
    req.headers.set("Content-Type", "application/json");
    req.body = body.dump();
    auto r = http_->request(req);
    if (!r) {
      return make_error(r.error().code, "POST " + std::string(endpoint) + ": " + r.error().message);
    }
    return r;
  }

  // One auth + attest round; errors keep the transport codes so that attest() can retry them.
  Result<std::string> handshake() {
    http_->clear_cookies();
    Json auth = {{"version", kKbsProtocolVersion},
                 {"tee", std::string(attester_.tee())},
                 {"extra-params", Json::object()}};
    auto r = COFFER_TRY(post_json("auth", auth));
    if (r.status != 200) return kbs_error(r, "auth");
    auto challenge = parse_json(r.body, {.max_bytes = 64 * 1024});
    if (!challenge || !challenge->is_object())
      return make_error("kbs_bad_response", "auth response is not a JSON object");
    auto nonce = json_string(*challenge, "nonce");
    if (!nonce) return make_error("kbs_bad_response", "auth response has no nonce");

    Json pubkey = COFFER_TRY(tee_pubkey());
    // Report data exactly as the KBS recomputes it: SHA-384 over the JCS of the runtime data.
    const std::string additional;
    Json binding = {{"tee-pubkey", pubkey}, {"nonce", *nonce}, {"additional-evidence", additional}};
    std::string canonical = COFFER_TRY(jose::jcs(binding));
    Bytes report_data = crypto::sha384(as_bytes(canonical));
    report_data.resize(kReportDataSize, 0);
    Json evidence = COFFER_TRY(attester_.evidence(report_data));

    Json attest = {
        {"runtime-data", {{"nonce", *nonce}, {"tee-pubkey", pubkey}}},
        {"tee-evidence",
         {{"primary_evidence", std::move(evidence)}, {"additional_evidence", additional}}}};
    if (options_.init_data_toml)
      attest["init-data"] = {{"format", "toml"}, {"body", *options_.init_data_toml}};
    r = COFFER_TRY(post_json("attest", attest));
    if (r.status != 200) return kbs_error(r, "attest");
    auto answer = parse_json(r.body, {.max_bytes = 1024 * 1024});
    if (!answer || !answer->is_object())
      return make_error("kbs_bad_response", "attest response is not a JSON object");
    auto token = json_string(*answer, "token");
    if (!token) return make_error("kbs_bad_response", "attest response has no token");

    token_ = *token;
    token_expiry_.reset();
    if (auto claims = jose::jwt_peek_claims(*token);
        claims && claims->contains("exp") && (*claims)["exp"].is_number_integer()) {
      token_expiry_ = from_unix_seconds((*claims)["exp"].get<std::int64_t>());
    }
    return *token;
  }

  std::string url_;
  Attester& attester_;
  KbsClientOptions options_;
  std::unique_ptr<net::HttpClient> http_;
  std::optional<crypto::Key> key_;
  std::optional<std::string> token_;
  std::optional<TimePoint> token_expiry_;
};

std::string kbs_status_code(int status) {
  switch (status) {
    case 400:
      return "kbs_bad_request";
    case 401:
      return "kbs_unauthorized";
    case 403:
      return "kbs_forbidden";
    case 404:
      return "kbs_not_found";
    case 409:
      return "kbs_conflict";
    case 413:
      return "kbs_too_large";
    case 429:
      return "kbs_busy";
    default:
      return status >= 500 ? "kbs_server_error" : "kbs_unexpected_status";
  }
}

KbsClient::KbsClient(std::string url, Attester& attester, KbsClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(url), attester, std::move(options))) {}
KbsClient::~KbsClient() = default;
KbsClient::KbsClient(KbsClient&&) noexcept = default;
KbsClient& KbsClient::operator=(KbsClient&&) noexcept = default;

Result<std::string> KbsClient::attest() { return impl_->attest(); }
Result<Bytes> KbsClient::get_resource(std::string_view repo_type_tag) {
  return impl_->get_resource(repo_type_tag);
}
std::optional<std::string> KbsClient::token() const { return impl_->token(); }
Result<Json> KbsClient::tee_pubkey() const { return impl_->tee_pubkey(); }
const std::optional<KbsProblem>& KbsClient::last_problem() const { return impl_->last_problem_; }

}  // namespace coffer::guest::aa
