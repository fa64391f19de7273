// NaCl's crypto_secretbox (XSalsa20-Poly1305), as cosign's encrypted key files use it. OpenSSL
// has no XSalsa20, so this one primitive comes from libsodium; like every other cipher it is
// reached only through src/crypto.
#pragma once

#include <cstddef>

#include "core/bytes.h"
#include "core/error.h"

namespace coffer::crypto {

inline constexpr std::size_t kSecretboxKeySize = 32;
inline constexpr std::size_t kSecretboxNonceSize = 24;
inline constexpr std::size_t kSecretboxMacSize = 16;

// MAC (16 bytes) followed by the ciphertext, as crypto_secretbox_easy lays them out.
// "bad_key" for a key or nonce of the wrong size.
Result<Bytes> secretbox_seal(ByteView key, ByteView nonce, ByteView plaintext);
// "decrypt_failed" when the MAC does not verify (no plaintext is returned then); "bad_key" for
// sizes.
Result<Bytes> secretbox_open(ByteView key, ByteView nonce, ByteView boxed);

}  // namespace coffer::crypto
