#include "trustee/kbs/admin_auth.h"

#include "jose/jwt.h"

namespace coffer::trustee::kbs {
namespace {

constexpr std::chrono::hours kMaxTokenLifetime{2};

}  // namespace

AdminAuth::AdminAuth(std::vector<crypto::Key> keys, bool insecure,
                     std::shared_ptr<const Clock> clock)
    : keys_(std::move(keys)), insecure_(insecure), clock_(std::move(clock)) {}

Status AdminAuth::check(const net::Request& request) const {
  if (insecure_) return ok();
  if (keys_.empty()) {
    return make_error("admin_auth",
                      "the admin API is disabled: no [admin] auth_public_keys are configured");
  }
  auto header = request.headers.get("Authorization");
  if (!header) return make_error("admin_auth", "admin request without an Authorization header");
  constexpr std::string_view kBearer = "Bearer ";
  if (header->size() <= kBearer.size() ||
      !net::iequals(std::string_view(*header).substr(0, kBearer.size()), kBearer)) {
    return make_error("admin_auth", "admin Authorization must be 'Bearer <JWT>'");
  }
  std::string_view token = std::string_view(*header).substr(kBearer.size());
  jose::JwtValidation v;
  v.now = clock_->now();
  v.require_exp = true;
  v.max_lifetime = kMaxTokenLifetime;
  Error last{"admin_auth", "admin token is not signed by any configured admin key"};
  for (const auto& key : keys_) {
    std::vector<jose::JwsAlg> algs;
    if (key.type() == crypto::KeyType::kEd25519) algs = {jose::JwsAlg::kEdDSA};
    if (key.type() == crypto::KeyType::kEcP256) algs = {jose::JwsAlg::kES256};
    if (algs.empty()) continue;
    auto claims = jose::jwt_verify(token, key, algs, v);
    if (claims) return ok();
    // A valid signature with bad timing is more useful to report than "unknown key".
    if (claims.error().code != "signature_invalid" && claims.error().code != "alg_not_allowed") {
      last = Error{"admin_auth", "admin token rejected: " + claims.error().message};
    }
  }
  return std::unexpected(last);
}

}  // namespace coffer::trustee::kbs
