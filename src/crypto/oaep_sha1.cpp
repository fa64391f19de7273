#include "crypto/oaep_sha1.h"

#include <openssl/rsa.h>

#include "crypto/ossl.h"

namespace coffer::crypto {
namespace {

ossl::PkeyCtxPtr oaep_ctx(const Key& key, bool decrypt) {
  ossl::PkeyCtxPtr ctx(
      EVP_PKEY_CTX_new_from_pkey(nullptr, static_cast<EVP_PKEY*>(key.native_handle()), nullptr));
  if (!ctx ||
      (decrypt ? EVP_PKEY_decrypt_init(ctx.get()) : EVP_PKEY_encrypt_init(ctx.get())) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha1()) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha1()) != 1) {
    return nullptr;
  }
  return ctx;
}

}  // namespace

Result<Bytes> rsa_oaep_sha1_decrypt(const Key& key, ByteView ciphertext) {
  if (key.type() != KeyType::kRsa || !key.has_private()) {
    return make_error("wrong_key_type", "RSA-OAEP decryption needs an RSA private key");
  }
  auto ctx = oaep_ctx(key, true);
  size_t len = 0;
  if (!ctx ||
      EVP_PKEY_decrypt(ctx.get(), nullptr, &len, ciphertext.data(), ciphertext.size()) != 1) {
    return ossl::error("decrypt_failed", "RSA-OAEP (SHA-1) decryption failed");
  }
  Bytes out(len);
  if (EVP_PKEY_decrypt(ctx.get(), out.data(), &len, ciphertext.data(), ciphertext.size()) != 1) {
    ossl::last_error();
    return make_error("decrypt_failed", "RSA-OAEP decryption failed: wrong key or tampered data");
  }
  out.resize(len);
  return out;
}

Result<Bytes> rsa_oaep_sha1_encrypt(const Key& key, ByteView plaintext) {
  if (key.type() != KeyType::kRsa) return make_error("wrong_key_type", "RSA-OAEP needs an RSA key");
  auto ctx = oaep_ctx(key, false);
  size_t len = 0;
  if (!ctx || EVP_PKEY_encrypt(ctx.get(), nullptr, &len, plaintext.data(), plaintext.size()) != 1) {
    return ossl::error("encrypt_failed", "RSA-OAEP (SHA-1) encryption failed");
  }
  Bytes out(len);
  if (EVP_PKEY_encrypt(ctx.get(), out.data(), &len, plaintext.data(), plaintext.size()) != 1) {
    return ossl::error("encrypt_failed", "RSA-OAEP (SHA-1) encryption failed");
  }
  out.resize(len);
  return out;
}

}  // namespace coffer::crypto
