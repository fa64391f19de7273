#include "jose/jwt.h"

#include <cmath>

#include "jose/detail.h"

namespace coffer::jose {
namespace {

constexpr JsonLimits kClaimsLimits{kMaxJwsBytes, 32};

std::unexpected<Error> bad_jwt(std::string message) {
  return make_error("bad_jwt", std::move(message));
}

// A NumericDate claim (RFC 7519 section 2) in seconds, if present.
Result<std::optional<double>> numeric_date(const Json& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end()) return std::optional<double>();
  if (!it->is_number()) return bad_jwt(std::string("claim '") + name + "' must be a number");
  double v = it->get<double>();
  if (!std::isfinite(v)) return bad_jwt(std::string("claim '") + name + "' is not finite");
  return std::optional<double>(v);
}

double to_seconds(TimePoint t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

Status check_claims(const Json& claims, const JwtValidation& v) {
  const double now = to_seconds(v.now);
  const auto leeway = static_cast<double>(v.leeway.count());
  auto exp = COFFER_TRY(numeric_date(claims, "exp"));
  auto nbf = COFFER_TRY(numeric_date(claims, "nbf"));
  auto iat = COFFER_TRY(numeric_date(claims, "iat"));
  if (!exp && v.require_exp) return bad_jwt("token has no 'exp' claim");
  if (exp && now >= *exp + leeway) return make_error("token_expired", "token has expired");
  if (nbf && now + leeway < *nbf) {
    return make_error("token_not_yet_valid", "token is not valid yet ('nbf' in the future)");
  }
  if (iat && now + leeway < *iat) {
    return make_error("token_not_yet_valid", "token was issued in the future ('iat')");
  }
  if (v.max_lifetime) {
    if (!exp) return bad_jwt("token has no 'exp' claim and a maximum lifetime applies");
    if (*exp - now > static_cast<double>(v.max_lifetime->count()) + leeway) {
      return make_error("token_lifetime_too_long",
                        "token 'exp' is more than " + std::to_string(v.max_lifetime->count()) +
                            " seconds ahead; issue a shorter-lived token");
    }
  }
  if (v.issuer) {
    auto it = claims.find("iss");
    if (it == claims.end() || !it->is_string() || it->get_ref<const std::string&>() != *v.issuer) {
      return make_error("token_issuer_mismatch", "token 'iss' is not '" + *v.issuer + "'");
    }
  }
  if (v.audience) {
    auto it = claims.find("aud");
    bool found = false;
    if (it != claims.end() && it->is_string()) {
      found = it->get_ref<const std::string&>() == *v.audience;
    } else if (it != claims.end() && it->is_array()) {
      for (const auto& a : *it)
        found = found || (a.is_string() && a.get_ref<const std::string&>() == *v.audience);
    }
    if (!found)
      return make_error("token_audience_mismatch",
                        "token 'aud' does not include '" + *v.audience + "'");
  }
  return ok();
}

Result<Json> parse_claims(ByteView payload) {
  auto claims =
      parse_json(std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size()),
                 kClaimsLimits);
  if (!claims) return bad_jwt("JWT claims are not JSON: " + claims.error().message);
  if (!claims->is_object()) return bad_jwt("JWT claims must be a JSON object");
  return std::move(*claims);
}

}  // namespace

Result<std::string> jwt_sign(const Json& claims, const crypto::Key& key, JwsAlg alg,
                             const Json& extra_header) {
  if (!claims.is_object()) return bad_jwt("JWT claims must be a JSON object");
  if (!extra_header.is_object()) return bad_jwt("extra JWT header must be a JSON object");
  std::string payload = COFFER_TRY(detail::dump_json(claims, "bad_jwt"));
  if (extra_header.contains("typ")) return jws_sign(as_bytes(payload), key, alg, extra_header);
  Json header = extra_header;
  header["typ"] = "JWT";
  return jws_sign(as_bytes(payload), key, alg, header);
}

Result<Json> jwt_verify(std::string_view token, const crypto::Key& key,
                        std::span<const JwsAlg> allowed, const JwtValidation& validation) {
  auto verified = COFFER_TRY(jws_verify(token, key, allowed));
  Json claims = COFFER_TRY(parse_claims(verified.payload));
  COFFER_TRY_STATUS(check_claims(claims, validation));
  return claims;
}

Result<Json> jwt_peek_claims(std::string_view token) {
  auto first = token.find('.');
  auto second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (token.size() > kMaxJwsBytes || second == std::string_view::npos) {
    return bad_jwt("not a compact JWT");
  }
  auto payload = base64url_decode(token.substr(first + 1, second - first - 1));
  if (!payload) return bad_jwt("JWT payload is not base64url");
  return parse_claims(*payload);
}

}  // namespace coffer::jose
