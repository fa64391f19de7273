// The KBS protocol (0.4.0) over HTTP: RCAR handshake (/auth, /attest), resource release, admin
// API, health and metrics. Transport-independent: handle() maps a Request to a Response, and
// HttpServer (src/net) calls it from its worker threads.
#pragma once

#include <memory>
#include <shared_mutex>
#include <string>

#include "core/clock.h"
#include "net/http.h"
#include "policy/policy.h"
#include "trustee/as/attestation_service.h"
#include "trustee/kbs/admin_auth.h"
#include "trustee/kbs/metrics.h"
#include "trustee/kbs/sessions.h"
#include "trustee/rvps/rvps.h"
#include "trustee/storage/store.h"

namespace coffer::trustee::kbs {

inline constexpr std::string_view kProtocolVersion = "0.4.0";
inline constexpr std::string_view kSessionCookie = "kbs-session-id";

struct KbsSettings {
  SessionSettings sessions;
  // Key authenticating session cookies; empty: a random key for this process (cookies are then
  // valid only on this process and until it restarts).
  Bytes session_key;
  std::size_t max_init_data_bytes = 64 * 1024;
  policy::Limits policy_limits;  // for the resource policy
};

class KbsService {
 public:
  static Result<std::unique_ptr<KbsService>> create(KbsSettings settings, storage::Store& store,
                                                    rvps::Rvps& rvps, as::AttestationService& as,
                                                    AdminAuth admin,
                                                    const std::shared_ptr<const Clock>& clock);

  net::Response handle(const net::Request& request);

  // Replaces the resource policy (Rego text); "bad_policy" if it does not compile.
  Status set_resource_policy(const std::string& rego);
  [[nodiscard]] Metrics& metrics() { return metrics_; }

 private:
  KbsService(KbsSettings settings, storage::Store& store, rvps::Rvps& rvps,
             as::AttestationService& as, AdminAuth admin,
             const std::shared_ptr<const Clock>& clock);

  net::Response route(const net::Request& request, std::string& endpoint);
  // AdminAuth's check, with the refusal logged (which check failed; never the token).
  Status check_admin(const net::Request& request) const;
  net::Response auth(const net::Request& request);
  net::Response attest(const net::Request& request);
  net::Response get_resource(const net::Request& request, const std::string& path);
  net::Response admin_resource(const net::Request& request, const std::string& path);
  net::Response resource_policy(const net::Request& request);
  net::Response attestation_policy(const net::Request& request);
  net::Response reference_value(const net::Request& request, const std::string& name);

  Result<std::shared_ptr<const policy::CompiledPolicy>> compile_resource_policy(
      const std::string& rego) const;
  std::shared_ptr<const policy::CompiledPolicy> resource_policy() const;

  KbsSettings settings_;
  storage::Store& store_;
  rvps::Rvps& rvps_;
  as::AttestationService& as_;
  AdminAuth admin_;
  std::shared_ptr<const Clock> clock_;
  Sessions sessions_;
  Metrics metrics_;
  mutable std::shared_mutex policy_mu_;
  std::shared_ptr<const policy::CompiledPolicy> resource_policy_;
};

}  // namespace coffer::trustee::kbs
