// The built-in Attestation Service: verifies evidence with the verifier registered for its TEE,
// appraises the claims with the attestation policy (Rego), and issues an EAR token (ES256 JWT)
// that the KBS and relying parties check.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>

#include "core/clock.h"
#include "core/error.h"
#include "core/json.h"
#include "crypto/pkey.h"
#include "policy/policy.h"
#include "trustee/rvps/rvps.h"
#include "trustee/storage/store.h"
#include "verifier/verifier.h"

namespace coffer::trustee::as {

struct AttestationServiceConfig {
  std::chrono::seconds token_lifetime{std::chrono::minutes(5)};
  std::string issuer = "coffer-trustee";
  std::string default_policy_id = "default_cpu";
  policy::Limits policy_limits;
};

struct AttestRequest {
  std::string tee;
  const Json& evidence;           // tee-evidence.primary_evidence
  ByteView expected_report_data;  // SHA-384 of the JCS runtime data
  std::optional<Bytes> init_data_digest;
  Json runtime_data_claims;  // {"nonce":..., "tee-pubkey":...}
  Json init_data_claims;     // parsed init-data (or {})
  std::string policy_id;     // empty: the default
};

struct AttestOutcome {
  std::string token;
  Json claims;         // the token's claims
  std::string status;  // ear.status of cpu0
};

class AttestationService {
 public:
  // `signing_key` must be a P-256 private key (ES256).
  static Result<std::unique_ptr<AttestationService>> create(AttestationServiceConfig config,
                                                            crypto::Key signing_key,
                                                            storage::Store& store, rvps::Rvps& rvps,
                                                            std::shared_ptr<const Clock> clock);

  void register_verifier(std::unique_ptr<verifier::Verifier> verifier);
  [[nodiscard]] bool has_verifier(std::string_view tee) const;

  // Compiles and stores an attestation policy ("bad_policy" when it does not compile).
  Status set_policy(const std::string& id, const std::string& rego);
  Result<std::string> get_policy(const std::string& id) const;
  // The policy id used when a request names none (config attestation_service.default_policy_id).
  [[nodiscard]] const std::string& default_policy_id() const { return config_.default_policy_id; }

  // Errors: "unsupported_tee", the verifier's own codes (wrapped as "attestation_failed" by the
  // KBS), "policy_error".
  Result<AttestOutcome> attest(const AttestRequest& request) const;

  // Verifies a token this service issued (signature, expiry) and returns its claims.
  Result<Json> verify_token(std::string_view token) const;
  [[nodiscard]] Json public_jwk() const { return public_jwk_; }

 private:
  AttestationService(AttestationServiceConfig config, crypto::Key key, storage::Store& store,
                     rvps::Rvps& rvps, std::shared_ptr<const Clock> clock);
  Result<std::shared_ptr<const policy::CompiledPolicy>> compile_policy(
      const std::string& id, const std::string& rego) const;
  std::shared_ptr<const policy::CompiledPolicy> policy_for(const std::string& id) const;

  AttestationServiceConfig config_;
  crypto::Key signing_key_;
  crypto::Key verify_key_;
  Json public_jwk_;
  storage::Store& store_;
  rvps::Rvps& rvps_;
  std::shared_ptr<const Clock> clock_;
  std::map<std::string, std::unique_ptr<verifier::Verifier>, std::less<>> verifiers_;
  mutable std::shared_mutex policies_mu_;
  mutable std::map<std::string, std::shared_ptr<const policy::CompiledPolicy>> policies_;
};

// The policies shipped with coffer (src/trustee/policies/*.rego, embedded at build time).
std::string_view default_attestation_policy();
// The development attestation policy (development_attestation.rego): never installed by itself;
// tests and `coffer sim` set it explicitly.
std::string_view development_attestation_policy();
std::string_view default_resource_policy();

}  // namespace coffer::trustee::as
