// RAII owners for OpenSSL objects. Internal to src/crypto and modules that wrap X.509 details:
// a raw OpenSSL pointer never crosses a public function boundary.
#pragma once

#include <memory>
#include <string>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/error.h"
#include "crypto/digest.h"

namespace coffer::crypto::ossl {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};

using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, Deleter<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using X509CrlPtr = std::unique_ptr<X509_CRL, Deleter<X509_CRL, X509_CRL_free>>;

// The OpenSSL digest for a DigestAlg (defined in digest.cpp).
const EVP_MD* md(DigestAlg alg);

// The most recent OpenSSL error queue entry as text (clears the queue).
std::string last_error();

// make_error(code, message + ": " + last OpenSSL error).
std::unexpected<Error> error(std::string code, const std::string& message);

}  // namespace coffer::crypto::ossl
