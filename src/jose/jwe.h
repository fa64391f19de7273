// JSON Web Encryption (RFC 7516) with "enc" A256GCM and "alg" ECDH-ES+A256KW or RSA-OAEP-256:
// how the KBS seals resources to a TEE's tee-pubkey and how ocicrypt "jwe" recipients wrap
// layer keys.
//
// Serializations. We produce the flattened JSON serialization (fields protected, encrypted_key,
// iv, ciphertext, tag; every header member in the protected header, whose base64url text is the
// GCM AAD), or the general one with a "recipients" array for several recipients. We consume
// flattened, general (with "unprotected", per-recipient "header" and "aad") and compact.
// ocicrypt (go-jose NewMultiEncrypter + FullSerialize) emits flattened JSON with all members
// protected for one recipient and general JSON with per-recipient {alg, epk} headers for
// several; for RSA keys it uses "RSA-OAEP" (SHA-1), which jwe_decrypt accepts but never emits.
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

enum class JweAlg { kEcdhEsA256kw, kRsaOaep256 };

std::string_view jwe_alg_name(JweAlg alg);  // "ECDH-ES+A256KW", "RSA-OAEP-256"
// EC keys -> ECDH-ES+A256KW, RSA -> RSA-OAEP-256; "unsupported_jwe" for Ed25519.
Result<JweAlg> default_jwe_alg(const crypto::Key& recipient);

// Whether a JWE can be sealed to this key: an EC key (P-256, P-384, P-521), or an RSA key with an
// odd e >= 65537 and a modulus of 2048 to 16384 bits. "unsupported_jwe" for other key types,
// "weak_key" for RSA keys outside those bounds. jwe_encrypt checks every recipient with it; a
// KBS checks a TEE's tee-pubkey with it when the TEE attests, not only when a secret is sealed.
Status check_jwe_recipient(const crypto::Key& recipient);

// Upper bound on a JWE accepted in text form.
inline constexpr std::size_t kMaxJweBytes = 64 * 1024 * 1024;

// Encrypts to one recipient; flattened JSON serialization. extra_protected_header members
// (e.g. "kid", "apu"/"apv" as base64url) join the protected header; it must not set "alg",
// "enc", "epk", "zip" or "crit" ("bad_jwe").
Result<Json> jwe_encrypt(ByteView plaintext, const crypto::Key& recipient_public,
                         const Json& extra_protected_header = Json::object());
Result<Json> jwe_encrypt(ByteView plaintext, const crypto::Key& recipient_public, JweAlg alg,
                         const Json& extra_protected_header = Json::object());

// Encrypts one content key to several recipients (alg chosen per key type): general JSON
// serialization, {"enc"} plus extra members protected, {"alg","epk"} per recipient.
Result<Json> jwe_encrypt_multi(ByteView plaintext, std::span<const crypto::Key> recipients,
                               const Json& extra_protected_header = Json::object());

// The compact form of a flattened JWE that has no unprotected header or "aad" ("bad_jwe").
Result<std::string> jwe_to_compact(const Json& flattened);

// Decrypts a flattened or general JSON JWE. Codes: "bad_jwe" (malformed, header members not
// disjoint, bad epk: wrong curve, off the curve), "unsupported_jwe" (alg, enc, zip, crit),
// "jwe_key_mismatch" (no recipient whose alg fits the key type), "decrypt_failed" (wrong key or
// any tampering; no plaintext is ever returned then).
Result<Bytes> jwe_decrypt(const Json& jwe, const crypto::Key& recipient_private);
// The same for the compact serialization (five '.'-separated parts).
Result<Bytes> jwe_decrypt_compact(std::string_view compact, const crypto::Key& recipient_private);
// Text in either form: JSON if it starts with '{', compact otherwise.
Result<Bytes> jwe_decrypt_text(std::string_view text, const crypto::Key& recipient_private);

}  // namespace coffer::jose
