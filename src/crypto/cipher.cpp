#include "crypto/cipher.h"

#include <climits>

#include "crypto/ossl.h"

namespace coffer::crypto {
namespace {

Result<const EVP_CIPHER*> gcm_for(std::size_t key_size) {
  switch (key_size) {
    case 16:
      return EVP_aes_128_gcm();
    case 24:
      return EVP_aes_192_gcm();
    case 32:
      return EVP_aes_256_gcm();
    default:
      return make_error("bad_key", "AES-GCM key must be 16, 24 or 32 bytes");
  }
}

Result<const EVP_CIPHER*> wrap_for(std::size_t key_size) {
  switch (key_size) {
    case 16:
      return EVP_aes_128_wrap();
    case 24:
      return EVP_aes_192_wrap();
    case 32:
      return EVP_aes_256_wrap();
    default:
      return make_error("bad_key", "AES key-wrap key must be 16, 24 or 32 bytes");
  }
}

int isize(std::size_t n) { return static_cast<int>(n); }

}  // namespace

Result<GcmSealed> aes_gcm_encrypt(ByteView key, ByteView iv, ByteView plaintext, ByteView aad) {
  const EVP_CIPHER* cipher = COFFER_TRY(gcm_for(key.size()));
  if (iv.empty()) return make_error("bad_iv", "AES-GCM needs a non-empty IV");
  if (plaintext.size() > INT_MAX || aad.size() > INT_MAX)
    return make_error("too_large", "AES-GCM input too large");
  ossl::CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  GcmSealed out;
  out.ciphertext.resize(plaintext.size());
  out.tag.resize(16);
  int len = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), cipher, nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, isize(iv.size()), nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), iv.data()) != 1 ||
      (!aad.empty() &&
       EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad.data(), isize(aad.size())) != 1) ||
      EVP_EncryptUpdate(ctx.get(), out.ciphertext.data(), &len, plaintext.data(),
                        isize(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.ciphertext.data() + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, 16, out.tag.data()) != 1) {
    return ossl::error("encrypt_failed", "AES-GCM encryption failed");
  }
  return out;
}

Result<Bytes> aes_gcm_decrypt(ByteView key, ByteView iv, ByteView ciphertext, ByteView tag,
                              ByteView aad) {
  const EVP_CIPHER* cipher = COFFER_TRY(gcm_for(key.size()));
  if (iv.empty()) return make_error("bad_iv", "AES-GCM needs a non-empty IV");
  if (tag.size() != 16) return make_error("decrypt_failed", "AES-GCM tag must be 16 bytes");
  if (ciphertext.size() > INT_MAX || aad.size() > INT_MAX)
    return make_error("too_large", "AES-GCM input too large");
  ossl::CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  Bytes out(ciphertext.size());
  int len = 0;
  Bytes tag_copy(tag.begin(), tag.end());
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), cipher, nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, isize(iv.size()), nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), iv.data()) != 1 ||
      (!aad.empty() &&
       EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad.data(), isize(aad.size())) != 1) ||
      EVP_DecryptUpdate(ctx.get(), out.data(), &len, ciphertext.data(), isize(ciphertext.size())) !=
          1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, 16, tag_copy.data()) != 1) {
    return ossl::error("decrypt_failed", "AES-GCM decryption failed");
  }
  int final_len = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), out.data() + len, &final_len) != 1) {
    ossl::last_error();
    return make_error("decrypt_failed",
                      "AES-GCM authentication tag mismatch: wrong key or tampered data");
  }
  return out;
}

struct AesCtr::Impl {
  ossl::CipherCtxPtr ctx{EVP_CIPHER_CTX_new()};
};

AesCtr::AesCtr() : impl_(std::make_unique<Impl>()) {}
AesCtr::~AesCtr() = default;
AesCtr::AesCtr(AesCtr&&) noexcept = default;
AesCtr& AesCtr::operator=(AesCtr&&) noexcept = default;

Result<AesCtr> AesCtr::create(ByteView key, ByteView iv) {
  if (key.size() != 32) return make_error("bad_key", "AES-256-CTR key must be 32 bytes");
  if (iv.size() != 16) return make_error("bad_iv", "AES-CTR IV must be 16 bytes");
  AesCtr c;
  if (!c.impl_->ctx || EVP_EncryptInit_ex(c.impl_->ctx.get(), EVP_aes_256_ctr(), nullptr,
                                          key.data(), iv.data()) != 1) {
    return ossl::error("encrypt_failed", "AES-CTR init failed");
  }
  return c;
}

void AesCtr::update(ByteView in, std::uint8_t* out) {
  std::size_t off = 0;
  while (off < in.size()) {
    int chunk = static_cast<int>(std::min<std::size_t>(in.size() - off, 1 << 30));
    int len = 0;
    if (EVP_EncryptUpdate(impl_->ctx.get(), out + off, &len, in.data() + off, chunk) != 1)
      std::abort();
    off += static_cast<std::size_t>(chunk);
  }
}

Result<Bytes> aes_key_wrap(ByteView kek, ByteView key) {
  const EVP_CIPHER* cipher = COFFER_TRY(wrap_for(kek.size()));
  if (key.size() < 16 || key.size() % 8 != 0)
    return make_error("bad_key", "key to wrap must be a multiple of 8 bytes, at least 16");
  ossl::CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  Bytes out(key.size() + 8);
  int len = 0, fin = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), cipher, nullptr, kek.data(), nullptr) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out.data(), &len, key.data(), isize(key.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + len, &fin) != 1) {
    return ossl::error("encrypt_failed", "AES key wrap failed");
  }
  out.resize(static_cast<std::size_t>(len) + static_cast<std::size_t>(fin));
  return out;
}

Result<Bytes> aes_key_unwrap(ByteView kek, ByteView wrapped) {
  const EVP_CIPHER* cipher = COFFER_TRY(wrap_for(kek.size()));
  if (wrapped.size() < 24 || wrapped.size() % 8 != 0)
    return make_error("decrypt_failed", "wrapped key has an invalid length");
  ossl::CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  Bytes out(wrapped.size());
  int len = 0, fin = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), cipher, nullptr, kek.data(), nullptr) != 1 ||
      EVP_DecryptUpdate(ctx.get(), out.data(), &len, wrapped.data(), isize(wrapped.size())) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), out.data() + len, &fin) != 1) {
    ossl::last_error();
    return make_error("decrypt_failed",
                      "AES key unwrap failed: wrong key-encryption key or tampered data");
  }
  out.resize(static_cast<std::size_t>(len) + static_cast<std::size_t>(fin));
  return out;
}

}  // namespace coffer::crypto
