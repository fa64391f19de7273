// Symmetric ciphers: AES-256-GCM (JWE content, KBS key provider, storage at rest),
// AES-256-CTR (ocicrypt layers, streaming) and AES key wrap (RFC 3394, JWE A256KW).
#pragma once

#include <memory>

#include "core/bytes.h"
#include "core/error.h"

namespace coffer::crypto {

struct GcmSealed {
  Bytes ciphertext;
  Bytes tag;  // 16 bytes
};

// key: 16, 24 or 32 bytes; iv: 12 bytes recommended.
Result<GcmSealed> aes_gcm_encrypt(ByteView key, ByteView iv, ByteView plaintext, ByteView aad);
// Fails with "decrypt_failed" when the tag does not verify; no plaintext is returned then.
Result<Bytes> aes_gcm_decrypt(ByteView key, ByteView iv, ByteView ciphertext, ByteView tag,
                              ByteView aad);

// Streaming AES-CTR (encryption and decryption are the same operation).
class AesCtr {
 public:
  static Result<AesCtr> create(ByteView key, ByteView iv);
  ~AesCtr();
  AesCtr(AesCtr&&) noexcept;
  AesCtr& operator=(AesCtr&&) noexcept;
  // Transforms `in` into `out` (same size; may alias).
  void update(ByteView in, std::uint8_t* out);

 private:
  AesCtr();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// RFC 3394 AES key wrap with the default IV.
Result<Bytes> aes_key_wrap(ByteView kek, ByteView key);
Result<Bytes> aes_key_unwrap(ByteView kek, ByteView wrapped);

}  // namespace coffer::crypto
