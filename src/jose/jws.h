// JSON Web Signature (RFC 7515) in the compact serialization, for the algorithms of RFC 7518
// section 3 and RFC 8037 that coffer uses.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/error.h"
#include "core/json.h"
#include "crypto/pkey.h"

namespace coffer::jose {

enum class JwsAlg { kES256, kES384, kRS256, kPS256, kEdDSA };

std::string_view jws_alg_name(JwsAlg alg);  // "ES256", "ES384", "RS256", "PS256", "EdDSA"
// Fails with "alg_not_allowed" for any other name, "none" included.
Result<JwsAlg> parse_jws_alg(std::string_view name);
// The algorithm a key signs with by default (P-256 -> ES256, P-384 -> ES384, RSA -> PS256,
// Ed25519 -> EdDSA); "alg_key_mismatch" for P-521, which no supported JWS alg uses.
Result<JwsAlg> default_jws_alg(const crypto::Key& key);
// "alg_key_mismatch" unless the key is of the type the algorithm needs (ES256 with P-256 only,
// RS256/PS256 with RSA of at least 2048 bits, EdDSA with Ed25519).
Status check_jws_key(JwsAlg alg, const crypto::Key& key);

// Upper bound on a compact JWS (and JWT) that verification accepts.
inline constexpr std::size_t kMaxJwsBytes = 1024 * 1024;

// Signs `payload`; the header is {"alg": ..., extra_header members}. extra_header must be an
// object and must not set "alg" ("bad_jws").
Result<std::string> jws_sign(ByteView payload, const crypto::Key& key, JwsAlg alg,
                             const Json& extra_header = Json::object());

struct JwsVerified {
  Json header;
  Bytes payload;
};

// Verifies a compact JWS with `key`, accepting only the algorithms in `allowed`. Codes:
// "bad_jws" (malformed, too large, "crit" present), "alg_not_allowed" (none, unknown or not in
// `allowed`), "alg_key_mismatch" (header alg does not fit the key), "signature_invalid".
Result<JwsVerified> jws_verify(std::string_view compact, const crypto::Key& key,
                               std::span<const JwsAlg> allowed);

// The decoded protected header of a compact JWS, without verifying anything: for picking the
// key ("jwk", "kid") before calling jws_verify. "bad_jws" if malformed.
Result<Json> jws_peek_header(std::string_view compact);

}  // namespace coffer::jose
