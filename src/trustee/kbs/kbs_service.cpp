#include "trustee/kbs/kbs_service.h"

#include <algorithm>
#include <mutex>

#include "core/log.h"
#include "crypto/digest.h"
#include "crypto/random.h"
#include "evidence/init_data.h"
#include "jose/jcs.h"
#include "jose/jwe.h"
#include "jose/jwk.h"
#include "policy/program.h"
#include "trustee/as/ear.h"
#include "trustee/kbs/problem.h"
#include "trustee/kbs/resource_path.h"

namespace coffer::trustee::kbs {
namespace {

constexpr std::string_view kPrefix = "/kbs/v0/";

Result<Json> parse_body(const net::Request& request) {
  auto body = parse_json(request.body);
  if (!body)
    return make_error("bad_json", "request body is not valid JSON: " + body.error().message);
  if (!body->is_object()) return make_error("bad_json", "request body must be a JSON object");
  return body;
}

struct InitData {
  Bytes digest;
  Json claims;
};

// init-data {"format":"toml","body":"<CoCo init-data TOML>"}: digest of the body as sent (what
// the host put in MRCONFIGID / HOSTDATA) and its [data] table as claims.
Result<InitData> parse_init_data(const Json& init, std::size_t max_bytes) {
  if (!init.is_object()) return make_error("bad_request", "init-data must be an object");
  auto format = json_string(init, "format");
  if (!format || *format != "toml")
    return make_error("bad_request", "init-data format must be \"toml\"");
  auto body = json_string(init, "body");
  if (!body) return make_error("bad_request", "init-data needs a string body");
  if (body->size() > max_bytes) return make_error("too_large", "init-data body is over the limit");
  auto parsed = evidence::parse_init_data(*body);
  if (!parsed) return make_error("bad_request", parsed.error().message);
  return InitData{std::move(parsed->digest), std::move(parsed->claims)};
}

// Metric label of a request: one of a fixed set, so that requests to made-up paths cannot grow
// /metrics (a label per distinct path is unbounded memory and output).
std::string_view endpoint_label(std::string_view path) {
  if (path == "/healthz") return "/healthz";
  if (path == "/metrics") return "/metrics";
  if (!path.starts_with(kPrefix)) return "other";
  auto rest = path.substr(kPrefix.size());
  auto first = rest.substr(0, rest.find('/'));
  static constexpr std::string_view kKnown[] = {
      "auth", "attest", "resource", "resource-policy", "attestation-policy", "reference-value"};
  for (auto known : kKnown) {
    if (first == known) return known;
  }
  return "other";
}

// One info line per successful attestation: what was appraised and the verdict, never the token,
// the nonce or the TEE's key.
void log_attestation(const std::string& tee, const as::AttestOutcome& outcome) {
  std::string policy_id = "?";
  std::string vector = "{}";
  if (auto sm = outcome.claims.find("submods"); sm != outcome.claims.end() && sm->is_object()) {
    if (auto cpu0 = sm->find("cpu0"); cpu0 != sm->end() && cpu0->is_object()) {
      if (auto p = cpu0->find("ear.appraisal-policy-id"); p != cpu0->end() && p->is_string())
        policy_id = p->get<std::string>();
      if (auto v = cpu0->find("ear.trustworthiness-vector"); v != cpu0->end()) vector = v->dump();
    }
  }
  std::string why = as::describe_appraisal(outcome.claims);
  spdlog::info("attestation: tee={} ear.status={} policy={} trust-vector={}{}{}", tee,
               outcome.status, printable_excerpt(policy_id, 128), vector,
               why.empty() ? "" : " not affirming: ", why);
}

}  // namespace

KbsService::KbsService(KbsSettings settings, storage::Store& store, rvps::Rvps& rvps,
                       as::AttestationService& as, AdminAuth admin,
                       const std::shared_ptr<const Clock>& clock)
    : settings_(std::move(settings)),
      store_(store),
      rvps_(rvps),
      as_(as),
      admin_(std::move(admin)),
      clock_(clock),
      sessions_(settings_.session_key.empty() ? crypto::random_bytes(kMinSessionKeyBytes)
                                              : settings_.session_key,
                clock, settings_.sessions) {
  settings_.session_key.clear();  // kept by sessions_ only
  metrics_.describe("kbs_http_requests_total", "HTTP requests by endpoint and status", "counter");
  metrics_.describe("kbs_attestations_total", "Attestations by TEE and outcome", "counter");
  metrics_.describe("kbs_resource_releases_total", "Resources released", "counter");
  metrics_.describe("kbs_resource_denials_total", "Resource requests refused, by reason",
                    "counter");
  metrics_.describe("kbs_request_duration_seconds", "Request latency by endpoint", "histogram");
}

Result<std::unique_ptr<KbsService>> KbsService::create(KbsSettings settings, storage::Store& store,
                                                       rvps::Rvps& rvps, as::AttestationService& as,
                                                       AdminAuth admin,
                                                       const std::shared_ptr<const Clock>& clock) {
  std::unique_ptr<KbsService> kbs(
      new KbsService(std::move(settings), store, rvps, as, std::move(admin), clock));
  auto stored = COFFER_TRY(store.get_policy("resource", "default"));
  std::string text = stored ? *stored : std::string(as::default_resource_policy());
  auto compiled = kbs->compile_resource_policy(text);
  if (!compiled) return wrap_error(compiled.error(), "resource policy");
  kbs->resource_policy_ = *compiled;
  return kbs;
}

Result<std::shared_ptr<const policy::CompiledPolicy>> KbsService::compile_resource_policy(
    const std::string& rego) const {
  policy::CompileOptions opts;
  opts.limits = settings_.policy_limits;
  opts.clock = clock_;
  auto compiled = policy::compile({{"resource-policy.rego", rego}}, std::move(opts));
  if (!compiled) return make_error("bad_policy", compiled.error().message);
  // The KBS asks for data.policy.allow: a policy without that rule would deny everything with
  // an "undefined" nobody wrote on purpose (a wrong package name, a renamed rule).
  const auto& groups = (*compiled)->program().groups;
  if (std::ranges::none_of(
          groups, [](const policy::RuleGroup& g) { return g.path == "data.policy.allow"; })) {
    return make_error("bad_policy",
                      "the resource policy defines no 'allow' rule in 'package policy': the KBS "
                      "decides with data.policy.allow");
  }
  return *compiled;
}

std::shared_ptr<const policy::CompiledPolicy> KbsService::resource_policy() const {
  std::shared_lock lock(policy_mu_);
  return resource_policy_;
}

Status KbsService::set_resource_policy(const std::string& rego) {
  auto compiled = COFFER_TRY(compile_resource_policy(rego));
  COFFER_TRY_STATUS(store_.put_policy("resource", "default", rego));
  std::unique_lock lock(policy_mu_);
  resource_policy_ = std::move(compiled);
  return ok();
}

net::Response KbsService::handle(const net::Request& request) {
  auto start = clock_->steady_now();
  std::string endpoint;
  net::Response response = route(request, endpoint);
  double seconds = std::chrono::duration<double>(clock_->steady_now() - start).count();
  metrics_.increment("kbs_http_requests_total",
                     {{"endpoint", endpoint}, {"status", std::to_string(response.status)}});
  metrics_.observe_seconds("kbs_request_duration_seconds", seconds, {{"endpoint", endpoint}});
  return response;
}

net::Response KbsService::route(const net::Request& request, std::string& endpoint) {
  const std::string path = request.path();
  endpoint = endpoint_label(path);
  const std::string& m = request.method;
  auto method_not_allowed = [] {
    return problem(405, "MethodNotAllowed", "method not allowed on this endpoint");
  };

  if (path == "/healthz")
    return m == "GET" ? net::Response::json(200, {{"status", "ok"}}) : method_not_allowed();
  if (path == "/metrics") {
    if (m != "GET") return method_not_allowed();
    return net::Response::bytes(200, metrics_.render(), "text/plain; version=0.0.4; charset=utf-8");
  }
  if (!path.starts_with(kPrefix)) return problem(404, "NotFound", "no such endpoint");
  std::string_view rest = std::string_view(path).substr(kPrefix.size());

  if (rest == "auth") return m == "POST" ? auth(request) : method_not_allowed();
  if (rest == "attest") return m == "POST" ? attest(request) : method_not_allowed();
  if (rest == "resource-policy")
    return (m == "POST" || m == "GET") ? resource_policy(request) : method_not_allowed();
  if (rest == "attestation-policy") {
    return (m == "POST" || m == "GET") ? attestation_policy(request) : method_not_allowed();
  }
  if (rest == "reference-value")
    return m == "POST" ? reference_value(request, "") : method_not_allowed();
  if (rest.starts_with("reference-value/")) {
    return m == "GET" ? reference_value(request, std::string(rest.substr(16)))
                      : method_not_allowed();
  }
  if (rest.starts_with("resource/")) {
    std::string rpath(rest.substr(9));
    if (m == "GET") return get_resource(request, rpath);
    if (m == "POST" || m == "PUT" || m == "DELETE") return admin_resource(request, rpath);
    return method_not_allowed();
  }
  return problem(404, "NotFound", "no such endpoint");
}

Status KbsService::check_admin(const net::Request& request) const {
  auto checked = admin_.check(request);
  // Which check failed, never the token: AdminAuth's messages do not quote the credential.
  if (!checked) {
    spdlog::info("admin request refused: {} {}: {}", request.method,
                 printable_excerpt(request.path(), 128), checked.error().message);
  }
  return checked;
}

net::Response KbsService::auth(const net::Request& request) {
  auto body = parse_body(request);
  if (!body) return problem_from_error(body.error());
  auto version = json_string(*body, "version");
  if (!version)
    return problem_from_error(Error{"bad_json", "auth request: " + version.error().message});
  if (*version != kProtocolVersion) {
    return problem(400, "ProtocolVersion",
                   "KBS protocol version '" + printable_excerpt(*version, 32) +
                       "' is not supported; this KBS speaks " + std::string(kProtocolVersion));
  }
  auto tee = json_string(*body, "tee");
  if (!tee) return problem_from_error(Error{"bad_json", "auth request: " + tee.error().message});
  if (!as_.has_verifier(*tee)) {
    return problem(400, "UnsupportedTee",
                   "TEE '" + printable_excerpt(*tee, 32) + "' is not enabled on this KBS");
  }
  // Stateless: the cookie is the challenge (see sessions.h); nothing is stored.
  if (auto previous = net::cookie(request, kSessionCookie)) sessions_.forget_attested(*previous);
  auto challenge = sessions_.issue_challenge(*tee);
  auto response = net::Response::json(200, {{"nonce", challenge.nonce}, {"extra-params", ""}});
  response.headers.add(
      "Set-Cookie", net::set_cookie(kSessionCookie, challenge.cookie,
                                    {.max_age_seconds = settings_.sessions.challenge_ttl.count()}));
  return response;
}

net::Response KbsService::attest(const net::Request& request) {
  auto fail = [&](const std::string& tee, const Error& e) {
    metrics_.increment("kbs_attestations_total", {{"tee", tee}, {"outcome", "error"}});
    return problem_from_error(e);
  };
  auto id = net::cookie(request, kSessionCookie);
  if (!id)
    return fail("unknown",
                Error{"missing_cookie", "attest needs the kbs-session-id cookie from /auth"});
  auto session = sessions_.open_challenge(*id);
  if (!session) return fail("unknown", session.error());
  const std::string& tee = session->tee;

  auto body = parse_body(request);
  if (!body) return fail(tee, body.error());
  auto runtime = json_object(*body, "runtime-data");
  if (!runtime) return fail(tee, Error{"bad_json", "attest request: " + runtime.error().message});
  auto nonce = json_string(**runtime, "nonce");
  if (!nonce) return fail(tee, Error{"bad_json", "runtime-data: " + nonce.error().message});
  // Freshness: the evidence must answer this session's challenge.
  if (!constant_time_equal(*nonce, session->nonce)) {
    return fail(tee, Error{"nonce_mismatch", "runtime-data nonce is not this session's nonce"});
  }
  auto pubkey_it = (*runtime)->find("tee-pubkey");
  if (pubkey_it == (*runtime)->end() || !pubkey_it->is_object()) {
    return fail(tee, Error{"bad_json", "runtime-data needs a tee-pubkey JWK object"});
  }
  auto pubkey = jose::key_from_jwk(*pubkey_it);
  if (!pubkey) return fail(tee, Error{"bad_jwk", "tee-pubkey: " + pubkey.error().message});
  if (pubkey->has_private())
    return fail(tee, Error{"bad_jwk", "tee-pubkey must not contain a private key"});
  // Refused now, not when a resource is sealed to it: a key the KBS cannot safely encrypt to
  // (Ed25519, weak RSA) must not get a token.
  if (auto sealable = jose::check_jwe_recipient(*pubkey); !sealable) {
    return fail(tee, Error{"bad_jwk", "tee-pubkey cannot receive sealed resources: " +
                                          sealable.error().message});
  }

  auto evidence_obj = json_object(*body, "tee-evidence");
  if (!evidence_obj)
    return fail(tee, Error{"bad_json", "attest request: " + evidence_obj.error().message});
  auto primary_it = (*evidence_obj)->find("primary_evidence");
  if (primary_it == (*evidence_obj)->end())
    return fail(tee, Error{"bad_json", "tee-evidence needs primary_evidence"});
  Json primary = *primary_it;
  if (primary.is_string()) {  // some attesters send the TEE JSON as a string
    auto parsed = parse_json(primary.get<std::string>());
    if (!parsed) return fail(tee, Error{"bad_json", "primary_evidence: " + parsed.error().message});
    primary = std::move(*parsed);
  }
  std::string additional;
  if (auto it = (*evidence_obj)->find("additional_evidence");
      it != (*evidence_obj)->end() && !it->is_null()) {
    if (!it->is_string())
      return fail(tee, Error{"bad_json", "additional_evidence must be a JSON string"});
    additional = it->get<std::string>();
  }

  // Binding: the TEE's report data must be the digest of exactly this runtime data.
  Json binding = {
      {"tee-pubkey", *pubkey_it}, {"nonce", *nonce}, {"additional-evidence", additional}};
  auto canonical = jose::jcs(binding);
  if (!canonical)
    return fail(tee, Error{"bad_json",
                           "runtime-data cannot be canonicalised: " + canonical.error().message});
  Bytes expected = crypto::sha384(as_bytes(*canonical));

  std::optional<Bytes> init_digest;
  Json init_claims = Json::object();
  if (auto it = body->find("init-data"); it != body->end() && !it->is_null()) {
    auto init = parse_init_data(*it, settings_.max_init_data_bytes);
    if (!init) return fail(tee, init.error());
    init_digest = std::move(init->digest);
    init_claims = std::move(init->claims);
  }

  Json runtime_claims = {{"nonce", *nonce}, {"tee-pubkey", *pubkey_it}};
  if (!additional.empty()) runtime_claims["additional-evidence"] = additional;
  as::AttestRequest req{
      tee, primary, expected, init_digest, std::move(runtime_claims), std::move(init_claims), ""};
  auto outcome = as_.attest(req);
  if (!outcome) {
    metrics_.increment("kbs_attestations_total", {{"tee", tee}, {"outcome", "rejected"}});
    spdlog::info("attestation rejected: tee={} code={}: {}", tee, outcome.error().code,
                 printable_excerpt(outcome.error().message, 300));
    const auto& code = outcome.error().code;
    if (code == "unsupported_tee" || code == "policy_deadline_exceeded" ||
        code == "policy_cost_exceeded") {
      return problem_from_error(outcome.error());
    }
    return problem(401, "AttestationFailed",
                   "attestation failed (" + outcome.error().code + "): " + outcome.error().message);
  }
  // One token per challenge: of concurrent or replayed attempts, only the first succeeds.
  if (auto consumed = sessions_.consume(*session); !consumed) return fail(tee, consumed.error());
  metrics_.increment("kbs_attestations_total", {{"tee", tee}, {"outcome", outcome->status}});
  log_attestation(tee, *outcome);
  TimePoint token_expires = clock_->now();
  if (auto it = outcome->claims.find("exp");
      it != outcome->claims.end() && it->is_number_integer()) {
    token_expires = from_unix_seconds(it->get<std::int64_t>());
  }
  auto cookie =
      sessions_.attested_cookie(outcome->token, std::move(outcome->claims), token_expires);
  auto response = net::Response::json(200, {{"token", outcome->token}});
  auto max_age = std::chrono::duration_cast<std::chrono::seconds>(token_expires - clock_->now());
  response.headers.add(
      "Set-Cookie",
      net::set_cookie(kSessionCookie, cookie,
                      {.max_age_seconds = std::max<std::int64_t>(0, max_age.count())}));
  return response;
}

net::Response KbsService::get_resource(const net::Request& request, const std::string& path) {
  auto deny = [&](std::string_view reason, const Error& e) {
    metrics_.increment("kbs_resource_denials_total", {{"reason", std::string(reason)}});
    spdlog::info("resource request refused: path={} reason={}: {}", printable_excerpt(path, 128),
                 reason, e.message);
    return problem_from_error(e);
  };
  auto rpath = parse_resource_path(path);
  if (!rpath) return deny("bad_path", rpath.error());

  // The caller proves attestation with its session cookie or by presenting the token itself.
  // A session holds the claims this KBS signed, so only their expiry needs checking; a
  // presented token is verified in full.
  std::shared_ptr<const Json> claims;
  if (auto auth = request.headers.get("Authorization"); auth && auth->starts_with("Bearer ")) {
    auto verified = as_.verify_token(std::string_view(*auth).substr(7));
    if (!verified) return deny("bad_token", verified.error());
    claims = std::make_shared<const Json>(std::move(*verified));
  } else if (auto id = net::cookie(request, kSessionCookie)) {
    auto session = sessions_.open_attested(*id);
    if (!session) {
      return deny(session.error().code == "token_invalid" ? "bad_token" : "unauthenticated",
                  session.error());
    }
    claims = std::move(*session);
  } else {
    return deny("unauthenticated", Error{"missing_cookie",
                                         "resource requests need an attested session cookie or "
                                         "an 'Authorization: Bearer <attestation token>'"});
  }

  const Json* tee_pubkey = nullptr;
  try {
    const Json& rd = claims->at("submods")
                         .at("cpu0")
                         .at("ear.veraison.annotated-evidence")
                         .at("runtime_data_claims");
    tee_pubkey = &rd.at("tee-pubkey");
  } catch (const Json::exception&) {
    return deny("bad_token", Error{"token_invalid", "attestation token carries no tee-pubkey"});
  }

  auto policy = resource_policy();
  Json data = {{"plugin", "resource"},
               {"resource-path", Json::array({rpath->repo, rpath->type, rpath->tag})},
               {"query", Json::object()}};
  auto decision = policy->evaluate("data.policy.allow", *claims, data);
  if (!decision) {
    spdlog::error("resource policy evaluation failed: {}", decision.error().to_string());
    const auto& code = decision.error().code;
    if (code == "policy_deadline_exceeded" || code == "policy_cost_exceeded") {
      return deny("policy_limit", Error{code, "resource policy: " + decision.error().message});
    }
    return deny("policy_error", Error{"policy_deny", "resource policy failed to evaluate: " +
                                                         decision.error().message});
  }
  if (!decision->value || *decision->value != Json(true)) {
    // Re-run with explanation only on the (rare) deny path.
    std::string why;
    if (auto explained = policy->evaluate("data.policy.allow", *claims, data, true);
        explained && explained->explanation && !explained->explanation->entries.empty()) {
      why = ": " + explained->explanation->to_string();
    }
    // What the appraisal said first (which trust claim is not affirming, and why), then Rego's
    // account of the resource policy's decision.
    std::string appraisal = as::describe_appraisal(*claims);
    if (!appraisal.empty()) appraisal = "attestation not affirming: " + appraisal + ". ";
    return deny("policy",
                Error{"policy_deny", appraisal + "resource policy denied '" + rpath->str() +
                                         "' (rule data.policy.allow is " +
                                         (decision->value ? decision->value->dump() : "undefined") +
                                         ")" + why});
  }

  auto value = store_.get_resource(rpath->str());
  if (!value) return deny("storage", value.error());
  if (!*value)
    return deny("not_found", Error{"not_found", "no resource at '" + rpath->str() + "'"});
  auto key = jose::key_from_jwk(*tee_pubkey);
  if (!key)
    return deny("bad_token", Error{"token_invalid", "token tee-pubkey is not a usable key"});
  auto jwe = jose::jwe_encrypt(**value, *key);
  if (!jwe) return deny("seal", jwe.error());
  metrics_.increment("kbs_resource_releases_total");
  spdlog::info("resource released: path={}", rpath->str());
  return net::Response::json(200, *jwe);
}

net::Response KbsService::admin_resource(const net::Request& request, const std::string& path) {
  if (auto a = check_admin(request); !a) return problem_from_error(a.error());
  auto rpath = parse_resource_path(path);
  if (!rpath) return problem_from_error(rpath.error());
  if (request.method == "DELETE") {
    auto d = store_.delete_resource(rpath->str());
    if (!d) return problem_from_error(d.error());
    spdlog::info("admin: deleted resource {}", rpath->str());
    return net::Response::json(200, {{"deleted", rpath->str()}});
  }
  auto s = store_.put_resource(rpath->str(), as_bytes(request.body));
  if (!s) return problem_from_error(s.error());
  spdlog::info("admin: stored resource {} ({} bytes)", rpath->str(), request.body.size());
  return net::Response::json(200, {{"stored", rpath->str()}});
}

net::Response KbsService::resource_policy(const net::Request& request) {
  if (auto a = check_admin(request); !a) return problem_from_error(a.error());
  if (request.method == "GET") {
    auto stored = store_.get_policy("resource", "default");
    if (!stored) return problem_from_error(stored.error());
    std::string text = *stored ? **stored : std::string(as::default_resource_policy());
    return net::Response::json(200, {{"policy", base64url_encode(as_bytes(text))}});
  }
  auto body = parse_body(request);
  if (!body) return problem_from_error(body.error());
  auto b64 = json_string(*body, "policy");
  if (!b64) return problem_from_error(Error{"bad_json", b64.error().message});
  auto text = base64url_decode(*b64);
  if (!text) return problem_from_error(Error{"bad_json", "policy must be base64url-encoded Rego"});
  auto s = set_resource_policy(to_string(*text));
  if (!s) return problem_from_error(s.error());
  spdlog::info("admin: resource policy replaced");
  return net::Response::json(200, {{"updated", "resource-policy"}});
}

net::Response KbsService::attestation_policy(const net::Request& request) {
  if (auto a = check_admin(request); !a) return problem_from_error(a.error());
  if (request.method == "GET") {
    std::string id = as_.default_policy_id();
    auto q = request.query();
    if (q.starts_with("policy_id=")) id = q.substr(10);
    if (!valid_segment(id))
      return problem(400, "InvalidRequest",
                     "policy_id must be 1-128 characters of A-Z a-z 0-9 _ - .");
    auto text = as_.get_policy(id);
    if (!text) return problem_from_error(text.error());
    return net::Response::json(
        200, {{"policy_id", id}, {"type", "rego"}, {"policy", base64url_encode(as_bytes(*text))}});
  }
  auto body = parse_body(request);
  if (!body) return problem_from_error(body.error());
  auto type = json_optional_string(*body, "type").value_or("rego");
  if (type != "rego")
    return problem(400, "InvalidRequest", "attestation policy type must be \"rego\"");
  auto id = json_optional_string(*body, "policy_id").value_or(as_.default_policy_id());
  if (!valid_segment(id))
    return problem(400, "InvalidRequest",
                   "policy_id must be 1-128 characters of A-Z a-z 0-9 _ - .");
  auto b64 = json_string(*body, "policy");
  if (!b64) return problem_from_error(Error{"bad_json", b64.error().message});
  auto text = base64url_decode(*b64);
  if (!text) return problem_from_error(Error{"bad_json", "policy must be base64url-encoded Rego"});
  auto s = as_.set_policy(id, to_string(*text));
  if (!s) return problem_from_error(s.error());
  spdlog::info("admin: attestation policy '{}' replaced", id);
  return net::Response::json(200, {{"updated", "attestation-policy"}, {"policy_id", id}});
}

net::Response KbsService::reference_value(const net::Request& request, const std::string& name) {
  if (auto a = check_admin(request); !a) return problem_from_error(a.error());
  if (request.method == "GET") {
    // The name comes from the request path as raw bytes.
    if (!is_valid_utf8(name))
      return problem(400, "InvalidRequest", "reference value name is not valid UTF-8");
    if (!rvps_.contains(name))
      return problem(404, "ReferenceValueNotFound",
                     "no reference value named '" + printable_excerpt(name, 64) + "'");
    return net::Response::json(200, {{"name", name}, {"values", rvps_.query(name)}});
  }
  auto body = parse_body(request);
  if (!body) return problem_from_error(body.error());
  auto s = rvps_.register_message(*body);
  if (!s) return problem_from_error(s.error());
  return net::Response::json(200, {{"updated", "reference-value"}});
}

}  // namespace coffer::trustee::kbs
