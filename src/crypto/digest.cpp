#include "crypto/digest.h"

#include <cstdlib>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include "crypto/ossl.h"

namespace coffer::crypto {

const EVP_MD* ossl::md(DigestAlg alg) {
  switch (alg) {
    case DigestAlg::kSha256:
      return EVP_sha256();
    case DigestAlg::kSha384:
      return EVP_sha384();
    case DigestAlg::kSha512:
      return EVP_sha512();
  }
  std::abort();
}

namespace {

// OpenSSL failures on digests only happen on allocation failure: an invariant, so abort.
void check(int rc) {
  if (rc != 1) std::abort();
}

}  // namespace

std::size_t digest_size(DigestAlg alg) {
  switch (alg) {
    case DigestAlg::kSha256:
      return 32;
    case DigestAlg::kSha384:
      return 48;
    case DigestAlg::kSha512:
      return 64;
  }
  std::abort();
}

std::string_view digest_name(DigestAlg alg) {
  switch (alg) {
    case DigestAlg::kSha256:
      return "SHA256";
    case DigestAlg::kSha384:
      return "SHA384";
    case DigestAlg::kSha512:
      return "SHA512";
  }
  std::abort();
}

Bytes digest(DigestAlg alg, ByteView data) {
  Bytes out(digest_size(alg));
  unsigned int len = 0;
  check(EVP_Digest(data.data(), data.size(), out.data(), &len, ossl::md(alg), nullptr));
  return out;
}

struct Hasher::Impl {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), &EVP_MD_CTX_free};
  DigestAlg alg;
};

Hasher::Hasher(DigestAlg alg) : impl_(std::make_unique<Impl>()) {
  impl_->alg = alg;
  if (!impl_->ctx) std::abort();
  check(EVP_DigestInit_ex(impl_->ctx.get(), ossl::md(alg), nullptr));
}
Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::update(ByteView data) {
  check(EVP_DigestUpdate(impl_->ctx.get(), data.data(), data.size()));
}

Bytes Hasher::finish() {
  Bytes out(digest_size(impl_->alg));
  unsigned int len = 0;
  check(EVP_DigestFinal_ex(impl_->ctx.get(), out.data(), &len));
  return out;
}

Bytes hmac(DigestAlg alg, ByteView key, ByteView data) {
  HmacStream h(alg, key);
  h.update(data);
  return h.finish();
}

struct HmacStream::Impl {
  std::unique_ptr<EVP_MAC, decltype(&EVP_MAC_free)> mac{EVP_MAC_fetch(nullptr, "HMAC", nullptr),
                                                        &EVP_MAC_free};
  std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)> ctx{nullptr, &EVP_MAC_CTX_free};
  DigestAlg alg;
};

HmacStream::HmacStream(DigestAlg alg, ByteView key) : impl_(std::make_unique<Impl>()) {
  impl_->alg = alg;
  if (!impl_->mac) std::abort();
  impl_->ctx.reset(EVP_MAC_CTX_new(impl_->mac.get()));
  if (!impl_->ctx) std::abort();
  std::string name(digest_name(alg));
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, name.data(), 0),
                         OSSL_PARAM_construct_end()};
  static const std::uint8_t kEmpty = 0;
  check(EVP_MAC_init(impl_->ctx.get(), key.empty() ? &kEmpty : key.data(), key.size(), params));
}
HmacStream::~HmacStream() = default;
HmacStream::HmacStream(HmacStream&&) noexcept = default;
HmacStream& HmacStream::operator=(HmacStream&&) noexcept = default;

void HmacStream::update(ByteView data) {
  check(EVP_MAC_update(impl_->ctx.get(), data.data(), data.size()));
}

Bytes HmacStream::finish() {
  Bytes out(digest_size(impl_->alg));
  std::size_t len = 0;
  check(EVP_MAC_final(impl_->ctx.get(), out.data(), &len, out.size()));
  out.resize(len);
  return out;
}

}  // namespace coffer::crypto
