#include "crypto/kdf.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <memory>
#include <vector>

#include "crypto/ossl.h"

namespace coffer::crypto {
namespace {

using KdfPtr = std::unique_ptr<EVP_KDF, ossl::Deleter<EVP_KDF, EVP_KDF_free>>;
using KdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, ossl::Deleter<EVP_KDF_CTX, EVP_KDF_CTX_free>>;

constexpr std::uint64_t kMaxScryptMemory = 1ULL << 30;

}  // namespace

Result<Bytes> scrypt(std::string_view password, ByteView salt, const ScryptParams& params,
                     std::size_t length) {
  std::uint64_t n = params.n;
  std::uint32_t r = params.r;
  std::uint32_t p = params.p;
  // Bounds keep a hostile key file from asking for gigabytes or hours.
  if (n < 2 || (n & (n - 1)) != 0 || n > (1U << 20) || r == 0 || r > 32 || p == 0 || p > 16 ||
      length == 0 || length > 1024) {
    return make_error("bad_key", "unsupported scrypt parameters");
  }
  KdfPtr kdf(EVP_KDF_fetch(nullptr, "SCRYPT", nullptr));
  if (!kdf) return ossl::error("crypto_error", "OpenSSL has no SCRYPT KDF");
  KdfCtxPtr ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) return ossl::error("crypto_error", "EVP_KDF_CTX_new");
  std::uint64_t maxmem = kMaxScryptMemory;
  // OSSL_PARAM takes non-const pointers; OpenSSL only reads these buffers.
  OSSL_PARAM ossl_params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, const_cast<char*>(password.data()),
                                        password.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<std::uint8_t*>(salt.data()),
                                        salt.size()),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
      OSSL_PARAM_construct_end()};
  Bytes key(length);
  if (EVP_KDF_derive(ctx.get(), key.data(), key.size(), ossl_params) != 1) {
    return ossl::error("crypto_error", "scrypt derivation failed");
  }
  return key;
}

Result<Bytes> hkdf_sha256(ByteView ikm, ByteView salt, ByteView info, std::size_t length) {
  if (length == 0 || length > 255 * 32) return make_error("bad_key", "HKDF output length");
  KdfPtr kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (!kdf) return make_error("crypto_error", "HKDF unavailable");
  KdfCtxPtr ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) return make_error("crypto_error", "HKDF context");
  // OpenSSL takes non-const buffers in OSSL_PARAM; it does not write to them. Empty salt or
  // info are left out (RFC 5869: an absent salt is HashLen zero bytes).
  auto param = [](const char* name, ByteView b) {
    return OSSL_PARAM_construct_octet_string(name, const_cast<std::uint8_t*>(b.data()), b.size());
  };
  char digest[] = "SHA256";
  std::vector<OSSL_PARAM> params = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0)};
  if (ikm.empty()) return make_error("bad_key", "HKDF needs input keying material");
  params.push_back(param(OSSL_KDF_PARAM_KEY, ikm));
  if (!salt.empty()) params.push_back(param(OSSL_KDF_PARAM_SALT, salt));
  if (!info.empty()) params.push_back(param(OSSL_KDF_PARAM_INFO, info));
  params.push_back(OSSL_PARAM_construct_end());
  Bytes out(length);
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params.data()) != 1)
    return make_error("crypto_error", "HKDF derivation failed");
  return out;
}

void cleanse(std::span<std::uint8_t> secret) {
  if (!secret.empty()) OPENSSL_cleanse(secret.data(), secret.size());
}

}  // namespace coffer::crypto
