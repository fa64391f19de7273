#include "crypto/pkey.h"

#include <cstring>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "crypto/ossl.h"

namespace coffer::crypto {
namespace {

using BnPtr = std::unique_ptr<BIGNUM, ossl::Deleter<BIGNUM, BN_free>>;
using ParamBldPtr =
    std::unique_ptr<OSSL_PARAM_BLD, ossl::Deleter<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, ossl::Deleter<OSSL_PARAM, OSSL_PARAM_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, ossl::Deleter<ECDSA_SIG, ECDSA_SIG_free>>;

const char* curve_group_name(KeyType t) {
  switch (t) {
    case KeyType::kEcP256:
      return "prime256v1";
    case KeyType::kEcP384:
      return "secp384r1";
    case KeyType::kEcP521:
      return "secp521r1";
    default:
      return nullptr;
  }
}

Result<KeyType> detect_type(EVP_PKEY* pkey) {
  switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
      return KeyType::kRsa;
    case EVP_PKEY_ED25519:
      return KeyType::kEd25519;
    case EVP_PKEY_EC: {
      char name[64] = {};
      size_t len = 0;
      if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name,
                                         &len) != 1) {
        return ossl::error("unsupported_key", "EC key without a named curve");
      }
      std::string_view n(name, len);
      if (n == "prime256v1" || n == "P-256") return KeyType::kEcP256;
      if (n == "secp384r1" || n == "P-384") return KeyType::kEcP384;
      if (n == "secp521r1" || n == "P-521") return KeyType::kEcP521;
      return make_error("unsupported_key", "unsupported EC curve " + std::string(n));
    }
    default:
      return make_error("unsupported_key", "unsupported key type");
  }
}

bool pkey_has_private(EVP_PKEY* pkey, KeyType t) {
  if (t == KeyType::kEd25519) {
    size_t len = 0;
    return EVP_PKEY_get_raw_private_key(pkey, nullptr, &len) == 1 && len > 0;
  }
  BIGNUM* bn = nullptr;
  const char* name = (t == KeyType::kRsa) ? OSSL_PKEY_PARAM_RSA_D : OSSL_PKEY_PARAM_PRIV_KEY;
  bool has = EVP_PKEY_get_bn_param(pkey, name, &bn) == 1 && bn != nullptr;
  BN_clear_free(bn);
  return has;
}

Bytes bn_to_bytes(const BIGNUM* bn, std::size_t pad = 0) {
  std::size_t n = static_cast<std::size_t>(BN_num_bytes(bn));
  Bytes out(std::max(n, pad));
  BN_bn2binpad(bn, out.data(), static_cast<int>(out.size()));
  return out;
}

Result<Bytes> get_bn(EVP_PKEY* pkey, const char* name, std::size_t pad = 0) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, name, &raw) != 1 || raw == nullptr) {
    return make_error("missing_key_component", std::string("key has no ") + name);
  }
  BnPtr bn(raw);
  return bn_to_bytes(bn.get(), pad);
}

Result<Key> from_params(const char* type_name, OSSL_PARAM_BLD* bld, bool is_private) {
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld));
  ossl::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type_name, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, is_private ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
                        params.get()) != 1) {
    return ossl::error("bad_key", std::string("invalid ") + type_name + " key parameters");
  }
  return Key::adopt_native(raw);
}

BnPtr bn_from(ByteView b) {
  return BnPtr(BN_bin2bn(b.data(), static_cast<int>(b.size()), nullptr));
}

}  // namespace

std::string_view key_type_name(KeyType t) {
  switch (t) {
    case KeyType::kEcP256:
      return "P-256";
    case KeyType::kEcP384:
      return "P-384";
    case KeyType::kEcP521:
      return "P-521";
    case KeyType::kRsa:
      return "RSA";
    case KeyType::kEd25519:
      return "Ed25519";
  }
  return "?";
}

std::size_t ec_field_size(KeyType t) {
  switch (t) {
    case KeyType::kEcP256:
      return 32;
    case KeyType::kEcP384:
      return 48;
    case KeyType::kEcP521:
      return 66;
    default:
      return 0;
  }
}

struct Key::Impl {
  ossl::PkeyPtr pkey;
};

Key::Key(std::unique_ptr<Impl> impl, KeyType type, bool has_private)
    : impl_(std::move(impl)), type_(type), has_private_(has_private) {}
Key::Key(const Key& o)
    : impl_(std::make_unique<Impl>()), type_(o.type_), has_private_(o.has_private_) {
  EVP_PKEY_up_ref(o.impl_->pkey.get());
  impl_->pkey.reset(o.impl_->pkey.get());
}
Key& Key::operator=(const Key& o) {
  if (this != &o) {
    Key copy(o);
    *this = std::move(copy);
  }
  return *this;
}
Key::Key(Key&&) noexcept = default;
Key& Key::operator=(Key&&) noexcept = default;
Key::~Key() = default;

void* Key::native_handle() const { return impl_->pkey.get(); }

Result<Key> Key::adopt_native(void* evp_pkey) {
  auto impl = std::make_unique<Impl>();
  impl->pkey.reset(static_cast<EVP_PKEY*>(evp_pkey));
  if (!impl->pkey) return make_error("bad_key", "no key");
  KeyType t = COFFER_TRY(detect_type(impl->pkey.get()));
  bool priv = pkey_has_private(impl->pkey.get(), t);
  return Key(std::move(impl), t, priv);
}

bool Key::is_ec() const {
  return type_ == KeyType::kEcP256 || type_ == KeyType::kEcP384 || type_ == KeyType::kEcP521;
}

Result<Key> Key::generate(KeyType type, int rsa_bits) {
  EVP_PKEY* raw = nullptr;
  switch (type) {
    case KeyType::kRsa:
      raw = EVP_RSA_gen(static_cast<unsigned>(rsa_bits));
      break;
    case KeyType::kEd25519:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
      break;
    default:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve_group_name(type));
      break;
  }
  if (raw == nullptr) return ossl::error("keygen_failed", "key generation failed");
  return adopt_native(raw);
}

Result<Key> Key::from_pem(std::string_view pem) {
  ossl::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* raw = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, const_cast<char*>(""));
  if (raw == nullptr) {
    ERR_clear_error();
    bio.reset(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    raw = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  }
  if (raw == nullptr) return ossl::error("bad_key", "not a PEM private or public key");
  return adopt_native(raw);
}

Result<Key> Key::from_public_der(ByteView spki) {
  const unsigned char* p = spki.data();
  EVP_PKEY* raw = d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size()));
  if (raw == nullptr || p != spki.data() + spki.size()) {
    EVP_PKEY_free(raw);
    return ossl::error("bad_key", "not a DER SubjectPublicKeyInfo");
  }
  return adopt_native(raw);
}

Result<Key> Key::from_private_der(ByteView pkcs8) {
  const unsigned char* p = pkcs8.data();
  EVP_PKEY* raw = d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(pkcs8.size()));
  if (raw == nullptr) return ossl::error("bad_key", "not a DER private key");
  return adopt_native(raw);
}

Result<Key> Key::ec_from_point(KeyType curve, const EcPoint& pub,
                               std::optional<ByteView> private_scalar) {
  const char* group = curve_group_name(curve);
  std::size_t fs = ec_field_size(curve);
  if (group == nullptr) return make_error("bad_key", "not an EC curve");
  if (pub.x.size() != fs || pub.y.size() != fs) {
    return make_error("bad_key", "EC coordinates must be " + std::to_string(fs) + " bytes for " +
                                     std::string(key_type_name(curve)));
  }
  Bytes point{0x04};
  point.insert(point.end(), pub.x.begin(), pub.x.end());
  point.insert(point.end(), pub.y.begin(), pub.y.end());
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  BnPtr d;
  OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
  OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
  if (private_scalar) {
    d = bn_from(*private_scalar);
    OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, d.get());
  }
  auto key = COFFER_TRY(from_params("EC", bld.get(), private_scalar.has_value()));
  // fromdata does not check that the point is on the curve: do it, invalid-curve attacks need it.
  // P-256/384/521 have cofactor 1, so a point on the curve other than infinity is in the prime
  // order group: the quick check is complete, the full one only adds a costly n*Q = O.
  ossl::PkeyCtxPtr check(
      EVP_PKEY_CTX_new_from_pkey(nullptr, static_cast<EVP_PKEY*>(key.native_handle()), nullptr));
  if (!check || EVP_PKEY_public_check_quick(check.get()) != 1) {
    return ossl::error("bad_key", "EC public point is not on the curve");
  }
  if (private_scalar && EVP_PKEY_pairwise_check(check.get()) != 1) {
    return ossl::error("bad_key", "EC private scalar does not match the public point");
  }
  return key;
}

Result<Key> Key::rsa_from_components(const RsaComponents& c) {
  if (c.n.empty() || c.e.empty()) return make_error("bad_key", "RSA key needs n and e");
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  std::vector<BnPtr> keep;
  auto push = [&](const char* name, const Bytes& b) {
    keep.push_back(bn_from(b));
    OSSL_PARAM_BLD_push_BN(bld.get(), name, keep.back().get());
  };
  push(OSSL_PKEY_PARAM_RSA_N, c.n);
  push(OSSL_PKEY_PARAM_RSA_E, c.e);
  bool priv = !c.d.empty();
  if (priv) {
    push(OSSL_PKEY_PARAM_RSA_D, c.d);
    if (!c.p.empty() && !c.q.empty()) {
      push(OSSL_PKEY_PARAM_RSA_FACTOR1, c.p);
      push(OSSL_PKEY_PARAM_RSA_FACTOR2, c.q);
      if (!c.dp.empty() && !c.dq.empty() && !c.qi.empty()) {
        push(OSSL_PKEY_PARAM_RSA_EXPONENT1, c.dp);
        push(OSSL_PKEY_PARAM_RSA_EXPONENT2, c.dq);
        push(OSSL_PKEY_PARAM_RSA_COEFFICIENT1, c.qi);
      }
    }
  }
  return from_params("RSA", bld.get(), priv);
}

Result<Key> Key::ed25519_from_raw(ByteView public_key, std::optional<ByteView> private_key) {
  EVP_PKEY* raw = nullptr;
  if (private_key) {
    if (private_key->size() != 32)
      return make_error("bad_key", "Ed25519 private key must be 32 bytes");
    raw = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, private_key->data(),
                                       private_key->size());
  } else {
    if (public_key.size() != 32)
      return make_error("bad_key", "Ed25519 public key must be 32 bytes");
    raw = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, public_key.data(),
                                      public_key.size());
  }
  if (raw == nullptr) return ossl::error("bad_key", "invalid Ed25519 key");
  auto key = COFFER_TRY(adopt_native(raw));
  if (private_key && !public_key.empty()) {
    auto derived = COFFER_TRY(key.ed25519_raw_public());
    if (!constant_time_equal(derived, public_key)) {
      return make_error("bad_key", "Ed25519 private key does not match the public key");
    }
  }
  return key;
}

Key Key::public_key() const {
  if (!has_private_) return *this;
  auto k = from_public_der(public_der());
  if (!k) std::abort();  // re-importing our own public key cannot fail
  return std::move(*k);
}

Result<std::string> Key::private_pem() const {
  if (!has_private_) return make_error("no_private_key", "key has no private part");
  ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PKCS8PrivateKey(bio.get(), impl_->pkey.get(), nullptr, nullptr, 0, nullptr,
                                    nullptr) != 1) {
    return ossl::error("encode_failed", "cannot encode private key");
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

std::string Key::public_pem() const {
  ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PUBKEY(bio.get(), impl_->pkey.get()) != 1) std::abort();
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

Bytes Key::public_der() const {
  unsigned char* buf = nullptr;
  int len = i2d_PUBKEY(impl_->pkey.get(), &buf);
  if (len <= 0) std::abort();
  Bytes out(buf, buf + len);
  OPENSSL_free(buf);
  return out;
}

Result<Bytes> Key::private_der() const {
  if (!has_private_) return make_error("no_private_key", "key has no private part");
  ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  if (i2d_PKCS8PrivateKey_bio(bio.get(), impl_->pkey.get(), nullptr, nullptr, 0, nullptr,
                              nullptr) != 1) {
    return ossl::error("encode_failed", "cannot encode private key");
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return Bytes(data, data + len);
}

bool Key::same_public(const Key& other) const {
  return EVP_PKEY_eq(impl_->pkey.get(), other.impl_->pkey.get()) == 1;
}

Result<EcPoint> Key::ec_point() const {
  if (!is_ec()) return make_error("wrong_key_type", "not an EC key");
  std::size_t fs = ec_field_size(type_);
  Bytes point(1 + 2 * fs);
  size_t len = 0;
  EVP_PKEY_set_utf8_string_param(impl_->pkey.get(), OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                 "uncompressed");
  if (EVP_PKEY_get_octet_string_param(impl_->pkey.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                      point.size(), &len) != 1 ||
      len != point.size() || point[0] != 0x04) {
    return ossl::error("encode_failed", "cannot export EC point");
  }
  return EcPoint{Bytes(point.begin() + 1, point.begin() + 1 + static_cast<long>(fs)),
                 Bytes(point.begin() + 1 + static_cast<long>(fs), point.end())};
}

Result<Bytes> Key::ec_private_scalar() const {
  if (!is_ec() || !has_private_) return make_error("no_private_key", "not an EC private key");
  return get_bn(impl_->pkey.get(), OSSL_PKEY_PARAM_PRIV_KEY, ec_field_size(type_));
}

Result<RsaComponents> Key::rsa_components() const {
  if (type_ != KeyType::kRsa) return make_error("wrong_key_type", "not an RSA key");
  RsaComponents c;
  EVP_PKEY* k = impl_->pkey.get();
  c.n = COFFER_TRY(get_bn(k, OSSL_PKEY_PARAM_RSA_N));
  c.e = COFFER_TRY(get_bn(k, OSSL_PKEY_PARAM_RSA_E));
  if (has_private_) {
    c.d = COFFER_TRY(get_bn(k, OSSL_PKEY_PARAM_RSA_D));
    c.p = get_bn(k, OSSL_PKEY_PARAM_RSA_FACTOR1).value_or(Bytes{});
    c.q = get_bn(k, OSSL_PKEY_PARAM_RSA_FACTOR2).value_or(Bytes{});
    c.dp = get_bn(k, OSSL_PKEY_PARAM_RSA_EXPONENT1).value_or(Bytes{});
    c.dq = get_bn(k, OSSL_PKEY_PARAM_RSA_EXPONENT2).value_or(Bytes{});
    c.qi = get_bn(k, OSSL_PKEY_PARAM_RSA_COEFFICIENT1).value_or(Bytes{});
  }
  return c;
}

Result<Bytes> Key::ed25519_raw_public() const {
  if (type_ != KeyType::kEd25519) return make_error("wrong_key_type", "not an Ed25519 key");
  Bytes out(32);
  size_t len = out.size();
  if (EVP_PKEY_get_raw_public_key(impl_->pkey.get(), out.data(), &len) != 1)
    return ossl::error("encode_failed", "raw public key");
  return out;
}

Result<Bytes> Key::ed25519_raw_private() const {
  if (type_ != KeyType::kEd25519 || !has_private_)
    return make_error("no_private_key", "not an Ed25519 private key");
  Bytes out(32);
  size_t len = out.size();
  if (EVP_PKEY_get_raw_private_key(impl_->pkey.get(), out.data(), &len) != 1)
    return ossl::error("encode_failed", "raw private key");
  return out;
}

int Key::rsa_bits() const {
  return type_ == KeyType::kRsa ? EVP_PKEY_get_bits(impl_->pkey.get()) : 0;
}

Result<Bytes> Key::sign(ByteView data, const SignatureParams& params) const {
  if (!has_private_) return make_error("no_private_key", "signing needs a private key");
  ossl::MdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  const EVP_MD* md = type_ == KeyType::kEd25519 ? nullptr : ossl::md(params.digest);
  if (!ctx || EVP_DigestSignInit(ctx.get(), &pctx, md, nullptr, impl_->pkey.get()) != 1) {
    return ossl::error("sign_failed", "cannot initialise signing");
  }
  if (type_ == KeyType::kRsa && params.rsa_padding == RsaPadding::kPss) {
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1) {
      return ossl::error("sign_failed", "cannot set RSA-PSS");
    }
  }
  size_t len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &len, data.data(), data.size()) != 1)
    return ossl::error("sign_failed", "signing failed");
  Bytes sig(len);
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, data.data(), data.size()) != 1)
    return ossl::error("sign_failed", "signing failed");
  sig.resize(len);
  if (is_ec() && params.format == SignatureFormat::kRaw)
    return ecdsa_der_to_raw(sig, ec_field_size(type_));
  return sig;
}

Status Key::verify(ByteView data, ByteView signature, const SignatureParams& params) const {
  Bytes der;
  ByteView sig = signature;
  if (is_ec() && params.format == SignatureFormat::kRaw) {
    if (signature.size() != 2 * ec_field_size(type_)) {
      return make_error(
          "signature_invalid",
          "ECDSA signature must be " + std::to_string(2 * ec_field_size(type_)) + " bytes");
    }
    der = COFFER_TRY(ecdsa_raw_to_der(signature));
    sig = der;
  }
  ossl::MdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  const EVP_MD* md = type_ == KeyType::kEd25519 ? nullptr : ossl::md(params.digest);
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, impl_->pkey.get()) != 1) {
    return ossl::error("verify_failed", "cannot initialise verification");
  }
  if (type_ == KeyType::kRsa && params.rsa_padding == RsaPadding::kPss) {
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1) {
      return ossl::error("verify_failed", "cannot set RSA-PSS");
    }
  }
  if (EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), data.data(), data.size()) != 1) {
    ossl::last_error();
    return make_error("signature_invalid", "signature does not verify");
  }
  return ok();
}

Result<Bytes> Key::ecdh(const Key& peer_public) const {
  if (!is_ec() || !has_private_)
    return make_error("wrong_key_type", "ECDH needs an EC private key");
  if (peer_public.type_ != type_)
    return make_error("wrong_key_type", "ECDH peer key is on a different curve");
  ossl::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, impl_->pkey.get(), nullptr));
  size_t len = 0;
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      // Every Key's point was validated when it was built (ec_from_point checks it, DER/PEM
      // decoding rejects points off the curve), so do not pay for a second full check here.
      EVP_PKEY_derive_set_peer_ex(ctx.get(), peer_public.impl_->pkey.get(), 0) != 1 ||
      EVP_PKEY_derive(ctx.get(), nullptr, &len) != 1) {
    return ossl::error("ecdh_failed", "ECDH key agreement failed");
  }
  Bytes out(len);
  if (EVP_PKEY_derive(ctx.get(), out.data(), &len) != 1)
    return ossl::error("ecdh_failed", "ECDH key agreement failed");
  out.resize(len);
  return out;
}

Result<Bytes> Key::rsa_oaep_encrypt(ByteView plaintext, DigestAlg digest) const {
  if (type_ != KeyType::kRsa) return make_error("wrong_key_type", "RSA-OAEP needs an RSA key");
  ossl::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, impl_->pkey.get(), nullptr));
  size_t len = 0;
  if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), ossl::md(digest)) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), ossl::md(digest)) != 1 ||
      EVP_PKEY_encrypt(ctx.get(), nullptr, &len, plaintext.data(), plaintext.size()) != 1) {
    return ossl::error("encrypt_failed", "RSA-OAEP encryption failed");
  }
  Bytes out(len);
  if (EVP_PKEY_encrypt(ctx.get(), out.data(), &len, plaintext.data(), plaintext.size()) != 1) {
    return ossl::error("encrypt_failed", "RSA-OAEP encryption failed");
  }
  out.resize(len);
  return out;
}

Result<Bytes> Key::rsa_oaep_decrypt(ByteView ciphertext, DigestAlg digest) const {
  if (type_ != KeyType::kRsa || !has_private_)
    return make_error("wrong_key_type", "RSA-OAEP decryption needs an RSA private key");
  ossl::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, impl_->pkey.get(), nullptr));
  size_t len = 0;
  if (!ctx || EVP_PKEY_decrypt_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), ossl::md(digest)) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), ossl::md(digest)) != 1 ||
      EVP_PKEY_decrypt(ctx.get(), nullptr, &len, ciphertext.data(), ciphertext.size()) != 1) {
    return ossl::error("decrypt_failed", "RSA-OAEP decryption failed");
  }
  Bytes out(len);
  if (EVP_PKEY_decrypt(ctx.get(), out.data(), &len, ciphertext.data(), ciphertext.size()) != 1) {
    ossl::last_error();
    return make_error("decrypt_failed", "RSA-OAEP decryption failed: wrong key or tampered data");
  }
  out.resize(len);
  return out;
}

Result<Bytes> ecdsa_der_to_raw(ByteView der, std::size_t field_size) {
  const unsigned char* p = der.data();
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (!sig || p != der.data() + der.size())
    return make_error("signature_invalid", "malformed DER ECDSA signature");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  if (static_cast<std::size_t>(BN_num_bytes(r)) > field_size ||
      static_cast<std::size_t>(BN_num_bytes(s)) > field_size) {
    return make_error("signature_invalid", "ECDSA signature component too large");
  }
  Bytes out = bn_to_bytes(r, field_size);
  Bytes sb = bn_to_bytes(s, field_size);
  out.insert(out.end(), sb.begin(), sb.end());
  return out;
}

Result<Bytes> ecdsa_raw_to_der(ByteView raw) {
  if (raw.empty() || raw.size() % 2 != 0)
    return make_error("signature_invalid", "raw ECDSA signature has odd length");
  std::size_t half = raw.size() / 2;
  EcdsaSigPtr sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(raw.data(), static_cast<int>(half), nullptr);
  BIGNUM* s = BN_bin2bn(raw.data() + half, static_cast<int>(half), nullptr);
  if (!sig || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return ossl::error("signature_invalid", "cannot build ECDSA signature");
  }
  unsigned char* buf = nullptr;
  int len = i2d_ECDSA_SIG(sig.get(), &buf);
  if (len <= 0) return ossl::error("signature_invalid", "cannot encode ECDSA signature");
  Bytes out(buf, buf + len);
  OPENSSL_free(buf);
  return out;
}

}  // namespace coffer::crypto
