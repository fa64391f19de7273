#include "trustee/as/attestation_service.h"

#include <mutex>

#include "core/log.h"
#include "jose/jwk.h"
#include "jose/jwt.h"
#include "trustee/as/ear.h"

namespace coffer::trustee::as {
namespace {

constexpr std::string_view kEatProfile = "tag:github.com,2023:veraison/ear";
constexpr jose::JwsAlg kTokenAlgs[] = {jose::JwsAlg::kES256};
constexpr std::string_view kBuiltinDefaultPolicyId = "default_cpu";

}  // namespace

AttestationService::AttestationService(AttestationServiceConfig config, crypto::Key key,
                                       storage::Store& store, rvps::Rvps& rvps,
                                       std::shared_ptr<const Clock> clock)
    : config_(std::move(config)),
      signing_key_(std::move(key)),
      verify_key_(signing_key_.public_key()),
      store_(store),
      rvps_(rvps),
      clock_(std::move(clock)) {}

Result<std::unique_ptr<AttestationService>> AttestationService::create(
    AttestationServiceConfig config, crypto::Key signing_key, storage::Store& store,
    rvps::Rvps& rvps, std::shared_ptr<const Clock> clock) {
  if (signing_key.type() != crypto::KeyType::kEcP256 || !signing_key.has_private()) {
    return make_error("bad_key",
                      "the attestation token signing key must be a P-256 private key (ES256)");
  }
  std::unique_ptr<AttestationService> as(new AttestationService(
      std::move(config), std::move(signing_key), store, rvps, std::move(clock)));
  as->public_jwk_ = COFFER_TRY(jose::key_to_jwk(as->verify_key_));
  as->public_jwk_["alg"] = "ES256";
  // The default policy is always available; a stored one with the same id overrides it.
  auto stored = COFFER_TRY(store.get_policy("attestation", as->config_.default_policy_id));
  std::string text = stored ? *stored : std::string(default_attestation_policy());
  if (!stored && as->config_.default_policy_id != kBuiltinDefaultPolicyId) {
    // Likely a typo, or a policy not uploaded yet: say which policy serves attestations.
    spdlog::warn(
        "attestation_service.default_policy_id '{}' names no stored attestation policy: the "
        "built-in default policy serves it until `coffer kbs set-attestation-policy` sets one",
        as->config_.default_policy_id);
  }
  auto compiled = as->compile_policy(as->config_.default_policy_id, text);
  if (!compiled)
    return wrap_error(compiled.error(),
                      "attestation policy '" + as->config_.default_policy_id + "'");
  as->policies_[as->config_.default_policy_id] = *compiled;
  return as;
}

void AttestationService::register_verifier(std::unique_ptr<verifier::Verifier> verifier) {
  std::string tee(verifier->tee());
  verifiers_[tee] = std::move(verifier);
}

bool AttestationService::has_verifier(std::string_view tee) const {
  return verifiers_.contains(tee);
}

Result<std::shared_ptr<const policy::CompiledPolicy>> AttestationService::compile_policy(
    const std::string& id, const std::string& rego) const {
  policy::CompileOptions opts;
  opts.limits = config_.policy_limits;
  opts.clock = clock_;
  const rvps::Rvps* rvps = &rvps_;
  opts.builtins["query_reference_value"] = {
      1, [rvps](std::span<const Json> args) -> Result<Json> {
        if (args.size() != 1 || !args[0].is_string()) {
          return make_error("bad_request", "query_reference_value takes a string name");
        }
        return rvps->query(args[0].get<std::string>());
      }};
  auto compiled = policy::compile({{id + ".rego", rego}}, std::move(opts));
  if (!compiled) return make_error("bad_policy", compiled.error().message);
  return *compiled;
}

Status AttestationService::set_policy(const std::string& id, const std::string& rego) {
  auto compiled = COFFER_TRY(compile_policy(id, rego));
  COFFER_TRY_STATUS(store_.put_policy("attestation", id, rego));
  std::unique_lock lock(policies_mu_);
  policies_[id] = std::move(compiled);
  return ok();
}

Result<std::string> AttestationService::get_policy(const std::string& id) const {
  auto stored = COFFER_TRY(store_.get_policy("attestation", id));
  if (stored) return *stored;
  if (id == config_.default_policy_id) return std::string(default_attestation_policy());
  return make_error("not_found", "no attestation policy '" + id + "'");
}

std::shared_ptr<const policy::CompiledPolicy> AttestationService::policy_for(
    const std::string& id) const {
  {
    std::shared_lock lock(policies_mu_);
    auto it = policies_.find(id);
    if (it != policies_.end()) return it->second;
  }
  // Policies set by another replica land in storage first: load lazily.
  auto stored = store_.get_policy("attestation", id);
  if (!stored || !*stored) return nullptr;
  auto compiled = compile_policy(id, **stored);
  if (!compiled) return nullptr;
  std::unique_lock lock(policies_mu_);
  policies_[id] = *compiled;
  return *compiled;
}

Result<AttestOutcome> AttestationService::attest(const AttestRequest& request) const {
  auto vit = verifiers_.find(request.tee);
  if (vit == verifiers_.end()) {
    return make_error("unsupported_tee",
                      "TEE '" + request.tee + "' is not enabled in this attestation service");
  }
  TimePoint now = clock_->now();
  std::optional<ByteView> init_digest;
  if (request.init_data_digest) init_digest = ByteView(*request.init_data_digest);
  verifier::VerifyInput input{request.evidence, request.expected_report_data, init_digest, now};
  auto tee_claims = vit->second->verify(input);
  if (!tee_claims) return std::unexpected(tee_claims.error());

  // The policy sees the claims keyed by TEE, with runtime and init data alongside.
  Json annotated = Json::object();
  annotated[request.tee] = std::move(*tee_claims);
  annotated["runtime_data_claims"] = request.runtime_data_claims;
  annotated["init_data_claims"] =
      request.init_data_claims.is_null() ? Json::object() : request.init_data_claims;

  const std::string& policy_id =
      request.policy_id.empty() ? config_.default_policy_id : request.policy_id;
  auto policy = policy_for(policy_id);
  if (!policy)
    return make_error("policy_error", "attestation policy '" + policy_id + "' does not exist");
  auto result = policy->evaluate("data.policy", annotated);
  if (!result) {
    // Resource limits keep their own codes: the KBS answers them differently from a bad policy.
    const auto& code = result.error().code;
    bool limit = code == "policy_deadline_exceeded" || code == "policy_cost_exceeded";
    return make_error(limit ? code : "policy_error",
                      "attestation policy '" + policy_id + "': " + result.error().message);
  }
  const Json policy_output = result->value.value_or(Json::object());
  Json vector = COFFER_TRY(trust_vector_from(policy_output));
  std::string status = ear_status(vector);
  Json reasons = policy_reasons_from(policy_output);

  auto iat = unix_seconds(now);
  Json claims = {
      {"eat_profile", kEatProfile},
      {"iat", iat},
      {"exp", iat + config_.token_lifetime.count()},
      {"iss", config_.issuer},
      {"ear.verifier-id", {{"developer", "https://coffer.dev"}, {"build", "coffer-trustee 0.1.0"}}},
      {"submods",
       {{"cpu0",
         {{"ear.status", status},
          {"ear.trustworthiness-vector", vector},
          {"ear.appraisal-policy-id", policy_id},
          {"ear.veraison.annotated-evidence", std::move(annotated)}}}}},
  };
  if (!reasons.empty()) {
    claims["submods"]["cpu0"]["ear.veraison.policy-claims"] = {{"reasons", std::move(reasons)}};
  }
  auto token = COFFER_TRY(jose::jwt_sign(claims, signing_key_, jose::JwsAlg::kES256,
                                         Json{{"jwk", public_jwk_}, {"typ", "JWT"}}));
  return AttestOutcome{std::move(token), std::move(claims), std::move(status)};
}

Result<Json> AttestationService::verify_token(std::string_view token) const {
  jose::JwtValidation v;
  v.now = clock_->now();
  v.require_exp = true;
  v.issuer = config_.issuer;
  auto claims = jose::jwt_verify(token, verify_key_, kTokenAlgs, v);
  if (!claims)
    return make_error("token_invalid", "attestation token rejected: " + claims.error().message);
  return claims;
}

}  // namespace coffer::trustee::as
