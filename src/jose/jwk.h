// JSON Web Key (RFC 7517, key types of RFC 7518 section 6 and RFC 8037) for the key types of
// crypto::Key, and the RFC 7638 thumbprint.
#pragma once

#include <string>

#include "core/error.h"
#include "core/json.h"
#include "crypto/pkey.h"

namespace coffer::jose {

// Imports kty "EC" (crv P-256, P-384, P-521), "RSA" and "OKP" (crv Ed25519), with the private
// members when "d" is present. Fails with "bad_jwk" on missing, mistyped or inconsistent members
// (wrong coordinate length, point off the curve, private part not matching the public part).
Result<crypto::Key> key_from_jwk(const Json& jwk);

// Exports the public members, plus the private ones when include_private is set (which fails with
// "missing_private_key" for a public key).
Result<Json> key_to_jwk(const crypto::Key& key, bool include_private = false);

// RFC 7638 thumbprint: base64url(SHA-256(required members in lexicographic order)).
Result<std::string> jwk_thumbprint(const Json& jwk);
Result<std::string> jwk_thumbprint(const crypto::Key& key);

}  // namespace coffer::jose
