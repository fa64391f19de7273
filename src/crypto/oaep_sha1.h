// RSA-OAEP with SHA-1 for OAEP and MGF1 (RFC 8017 defaults): the JWE "RSA-OAEP" of RFC 7518
// section 4.3, which ocicrypt (go-jose) uses to wrap layer keys for RSA recipients. Kept apart
// from Key so that new code reaches for SHA-256 (Key::rsa_oaep_*) instead.
#pragma once

#include "core/bytes.h"
#include "core/error.h"
#include "crypto/pkey.h"

namespace coffer::crypto {

// "wrong_key_type" unless an RSA private key; "decrypt_failed" for a wrong key or tampered data.
Result<Bytes> rsa_oaep_sha1_decrypt(const Key& key, ByteView ciphertext);
// For interoperability tests only.
Result<Bytes> rsa_oaep_sha1_encrypt(const Key& key, ByteView plaintext);

}  // namespace coffer::crypto
