#include "crypto/x509_issue.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "crypto/ossl.h"
#include "crypto/random.h"

namespace coffer::crypto {
namespace {

using AsnIntPtr = std::unique_ptr<ASN1_INTEGER, ossl::Deleter<ASN1_INTEGER, ASN1_INTEGER_free>>;
using AsnTimePtr = std::unique_ptr<ASN1_TIME, ossl::Deleter<ASN1_TIME, ASN1_TIME_free>>;
using AsnObjPtr = std::unique_ptr<ASN1_OBJECT, ossl::Deleter<ASN1_OBJECT, ASN1_OBJECT_free>>;
using AsnOctetPtr =
    std::unique_ptr<ASN1_OCTET_STRING, ossl::Deleter<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, ossl::Deleter<X509_EXTENSION, X509_EXTENSION_free>>;
using NamePtr = std::unique_ptr<X509_NAME, ossl::Deleter<X509_NAME, X509_NAME_free>>;
using BnPtr = std::unique_ptr<BIGNUM, ossl::Deleter<BIGNUM, BN_free>>;
using RevokedPtr = std::unique_ptr<X509_REVOKED, ossl::Deleter<X509_REVOKED, X509_REVOKED_free>>;

EVP_PKEY* pkey(const Key& k) { return static_cast<EVP_PKEY*>(k.native_handle()); }

AsnIntPtr asn1_integer(ByteView big_endian) {
  BnPtr bn(BN_bin2bn(big_endian.data(), static_cast<int>(big_endian.size()), nullptr));
  if (!bn) return nullptr;
  return AsnIntPtr(BN_to_ASN1_INTEGER(bn.get(), nullptr));
}

AsnTimePtr asn1_time(TimePoint t) {
  return AsnTimePtr(ASN1_TIME_set(nullptr, static_cast<time_t>(unix_seconds(t))));
}

Status add_ext_conf(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1)
    return ossl::error("x509_issue_failed", "adding extension " + value);
  return ok();
}

Status add_ext_der(X509* cert, const CertificateExtension& e) {
  AsnObjPtr obj(OBJ_txt2obj(e.oid.c_str(), 1));
  if (!obj) return ossl::error("x509_issue_failed", "bad extension OID " + e.oid);
  AsnOctetPtr value(ASN1_OCTET_STRING_new());
  if (!value || ASN1_OCTET_STRING_set(value.get(), e.der_value.data(),
                                      static_cast<int>(e.der_value.size())) != 1)
    return ossl::error("x509_issue_failed", "extension value");
  ExtPtr ext(X509_EXTENSION_create_by_OBJ(nullptr, obj.get(), e.critical ? 1 : 0, value.get()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1)
    return ossl::error("x509_issue_failed", "adding extension " + e.oid);
  return ok();
}

// Signs with a digest context so that RSASSA-PSS parameters can be set.
template <typename SignCtx>
Status sign_with(const Key& key, DigestAlg digest, bool rsa_pss, SignCtx sign_ctx) {
  ossl::MdCtxPtr md(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  const EVP_MD* alg = key.type() == KeyType::kEd25519 ? nullptr : ossl::md(digest);
  if (!md || EVP_DigestSignInit(md.get(), &pctx, alg, nullptr, pkey(key)) != 1)
    return ossl::error("x509_issue_failed", "signature init");
  if (rsa_pss && key.type() == KeyType::kRsa) {
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, ossl::md(digest)) != 1)
      return ossl::error("x509_issue_failed", "RSASSA-PSS parameters");
  }
  if (sign_ctx(md.get()) <= 0) return ossl::error("x509_issue_failed", "signing");
  return ok();
}

}  // namespace

Result<Certificate> issue_certificate(const CertificateSpec& spec, const Key& subject_key,
                                      const Key& issuer_key, const Certificate* issuer) {
  if (!issuer_key.has_private())
    return make_error("x509_issue_failed", "the issuer key has no private part");
  ossl::X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1)
    return ossl::error("x509_issue_failed", "X509_new");
  Bytes serial = spec.serial;
  if (serial.empty()) {
    serial = random_bytes(16);
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
  }
  AsnIntPtr sn = asn1_integer(serial);
  if (!sn || X509_set_serialNumber(cert.get(), sn.get()) != 1)
    return ossl::error("x509_issue_failed", "serial");

  NamePtr name(X509_NAME_new());
  for (const auto& [k, v] : spec.subject) {
    if (X509_NAME_add_entry_by_txt(name.get(), k.c_str(), MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(v.c_str()), -1, -1,
                                   0) != 1)
      return ossl::error("x509_issue_failed", "subject attribute " + k);
  }
  X509* issuer_x509 = issuer ? static_cast<X509*>(issuer->native_handle()) : cert.get();
  if (X509_set_subject_name(cert.get(), name.get()) != 1 ||
      X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer_x509) : name.get()) !=
          1)
    return ossl::error("x509_issue_failed", "names");
  AsnTimePtr nb = asn1_time(spec.not_before), na = asn1_time(spec.not_after);
  if (!nb || !na || X509_set1_notBefore(cert.get(), nb.get()) != 1 ||
      X509_set1_notAfter(cert.get(), na.get()) != 1)
    return ossl::error("x509_issue_failed", "validity");
  if (X509_set_pubkey(cert.get(), pkey(subject_key)) != 1)
    return ossl::error("x509_issue_failed", "public key");

  if (spec.ca) {
    std::string bc = "critical,CA:TRUE";
    if (spec.path_len) bc += ",pathlen:" + std::to_string(*spec.path_len);
    COFFER_TRY_STATUS(add_ext_conf(cert.get(), issuer_x509, NID_basic_constraints, bc));
  } else {
    COFFER_TRY_STATUS(
        add_ext_conf(cert.get(), issuer_x509, NID_basic_constraints, "critical,CA:FALSE"));
  }
  if (spec.key_usage) {
    COFFER_TRY_STATUS(add_ext_conf(
        cert.get(), issuer_x509, NID_key_usage,
        spec.ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,nonRepudiation"));
  }
  if (spec.subject_key_id) {
    COFFER_TRY_STATUS(add_ext_conf(cert.get(), issuer_x509, NID_subject_key_identifier, "hash"));
    if (issuer) {
      COFFER_TRY_STATUS(
          add_ext_conf(cert.get(), issuer_x509, NID_authority_key_identifier, "keyid:always"));
    }
  }
  for (const auto& e : spec.extensions) COFFER_TRY_STATUS(add_ext_der(cert.get(), e));

  COFFER_TRY_STATUS(sign_with(issuer_key, spec.digest, spec.rsa_pss,
                              [&](EVP_MD_CTX* md) { return X509_sign_ctx(cert.get(), md); }));
  unsigned char* der = nullptr;
  int n = i2d_X509(cert.get(), &der);
  if (n <= 0) return ossl::error("x509_issue_failed", "encoding");
  Bytes out(der, der + n);
  OPENSSL_free(der);
  return Certificate::from_der(out);
}

Result<Bytes> issue_crl(const CrlSpec& spec, const Certificate& issuer, const Key& issuer_key) {
  ossl::X509CrlPtr crl(X509_CRL_new());
  auto* issuer_x509 = static_cast<X509*>(issuer.native_handle());
  if (!crl || X509_CRL_set_version(crl.get(), 1) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer_x509)) != 1)
    return ossl::error("x509_issue_failed", "CRL header");
  AsnTimePtr tu = asn1_time(spec.this_update), nu = asn1_time(spec.next_update);
  if (!tu || !nu || X509_CRL_set1_lastUpdate(crl.get(), tu.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), nu.get()) != 1)
    return ossl::error("x509_issue_failed", "CRL times");
  for (const auto& serial : spec.revoked_serials) {
    RevokedPtr rev(X509_REVOKED_new());
    AsnIntPtr sn = asn1_integer(serial);
    if (!rev || !sn || X509_REVOKED_set_serialNumber(rev.get(), sn.get()) != 1 ||
        X509_REVOKED_set_revocationDate(rev.get(), tu.get()) != 1 ||
        X509_CRL_add0_revoked(crl.get(), rev.get()) != 1)
      return ossl::error("x509_issue_failed", "CRL entry");
    X509_REVOKED* owned_by_crl = rev.release();
    static_cast<void>(owned_by_crl);
  }
  AsnIntPtr number(ASN1_INTEGER_new());
  if (!number || ASN1_INTEGER_set(number.get(), spec.crl_number) != 1 ||
      X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, 0) != 1)
    return ossl::error("x509_issue_failed", "CRL number");
  X509_CRL_sort(crl.get());
  COFFER_TRY_STATUS(sign_with(issuer_key, spec.digest, spec.rsa_pss,
                              [&](EVP_MD_CTX* md) { return X509_CRL_sign_ctx(crl.get(), md); }));
  unsigned char* der = nullptr;
  int n = i2d_X509_CRL(crl.get(), &der);
  if (n <= 0) return ossl::error("x509_issue_failed", "CRL encoding");
  Bytes out(der, der + n);
  OPENSSL_free(der);
  return out;
}

}  // namespace coffer::crypto
