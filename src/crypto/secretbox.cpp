#include "crypto/secretbox.h"

#include <sodium.h>

#include "crypto/kdf.h"

namespace coffer::crypto {
namespace {

static_assert(kSecretboxKeySize == crypto_secretbox_KEYBYTES);
static_assert(kSecretboxNonceSize == crypto_secretbox_NONCEBYTES);
static_assert(kSecretboxMacSize == crypto_secretbox_MACBYTES);

Status check_sizes(ByteView key, ByteView nonce) {
  if (sodium_init() < 0) return make_error("crypto_error", "libsodium failed to initialise");
  if (key.size() != kSecretboxKeySize || nonce.size() != kSecretboxNonceSize) {
    return make_error("bad_key", "secretbox needs a 32-byte key and a 24-byte nonce");
  }
  return ok();
}

}  // namespace

Result<Bytes> secretbox_seal(ByteView key, ByteView nonce, ByteView plaintext) {
  COFFER_TRY_STATUS(check_sizes(key, nonce));
  Bytes boxed(plaintext.size() + kSecretboxMacSize);
  if (crypto_secretbox_easy(boxed.data(), plaintext.data(), plaintext.size(), nonce.data(),
                            key.data()) != 0) {
    return make_error("crypto_error", "secretbox sealing failed");
  }
  return boxed;
}

Result<Bytes> secretbox_open(ByteView key, ByteView nonce, ByteView boxed) {
  COFFER_TRY_STATUS(check_sizes(key, nonce));
  if (boxed.size() < kSecretboxMacSize) {
    return make_error("decrypt_failed", "secretbox is shorter than its MAC");
  }
  Bytes plain(boxed.size() - kSecretboxMacSize);
  if (crypto_secretbox_open_easy(plain.data(), boxed.data(), boxed.size(), nonce.data(),
                                 key.data()) != 0) {
    cleanse(plain);
    return make_error("decrypt_failed", "secretbox does not open with this key");
  }
  return plain;
}

}  // namespace coffer::crypto
