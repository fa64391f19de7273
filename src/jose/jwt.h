// JSON Web Token (RFC 7519) on top of compact JWS, with the registered-claim checks coffer
// needs (exp, nbf, iat, iss, aud, and a cap on how far ahead exp may be).
#pragma once

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/error.h"
#include "core/json.h"
#include "crypto/pkey.h"
#include "jose/jws.h"

namespace coffer::jose {

// Signs `claims` (a JSON object) with header {"alg", "typ":"JWT", extra_header members}.
Result<std::string> jwt_sign(const Json& claims, const crypto::Key& key, JwsAlg alg,
                             const Json& extra_header = Json::object());

struct JwtValidation {
  TimePoint now{};  // set from the injected Clock
  std::chrono::seconds leeway{0};
  bool require_exp = true;
  // Reject tokens whose exp lies further than this ahead of now (KBS admin tokens: 2 hours).
  std::optional<std::chrono::seconds> max_lifetime;
  std::optional<std::string> issuer;    // "iss" must equal it
  std::optional<std::string> audience;  // "aud" (string or array) must contain it
};

// Verifies signature and claims; returns the claims object. Codes: those of jws_verify, plus
// "bad_jwt" (payload not a JSON object, mistyped or missing required claim), "token_expired",
// "token_not_yet_valid" (nbf or iat in the future), "token_lifetime_too_long",
// "token_issuer_mismatch", "token_audience_mismatch".
Result<Json> jwt_verify(std::string_view token, const crypto::Key& key,
                        std::span<const JwsAlg> allowed, const JwtValidation& validation);

// The claims of a token without verifying anything (diagnostics only). "bad_jwt" if malformed.
Result<Json> jwt_peek_claims(std::string_view token);

}  // namespace coffer::jose
