#include "crypto/x509.h"

#include <cstring>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "crypto/digest.h"
#include "crypto/ossl.h"

namespace coffer::crypto {
namespace {

using AsnIntPtr = std::unique_ptr<BIGNUM, ossl::Deleter<BIGNUM, BN_free>>;
using Asn1ObjPtr = std::unique_ptr<ASN1_OBJECT, ossl::Deleter<ASN1_OBJECT, ASN1_OBJECT_free>>;

TimePoint asn1_time_to_point(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return TimePoint{};
  return from_unix_seconds(timegm(&tm));
}

std::string name_to_string(const X509_NAME* name) {
  ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

Bytes asn1_int_bytes(const ASN1_INTEGER* i) {
  AsnIntPtr bn(ASN1_INTEGER_to_BN(i, nullptr));
  if (!bn) return {};
  Bytes out(static_cast<std::size_t>(BN_num_bytes(bn.get())));
  BN_bn2bin(bn.get(), out.data());
  return out;
}

std::string_view trim_nul(std::string_view pem) {
  while (!pem.empty() && pem.back() == '\0') pem.remove_suffix(1);
  return pem;
}

}  // namespace

struct Certificate::Impl {
  ossl::X509Ptr x509;
};

Certificate::Certificate(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Certificate::Certificate(const Certificate& o) : impl_(std::make_unique<Impl>()) {
  X509_up_ref(o.impl_->x509.get());
  impl_->x509.reset(o.impl_->x509.get());
}
Certificate& Certificate::operator=(const Certificate& o) {
  if (this != &o) {
    Certificate c(o);
    *this = std::move(c);
  }
  return *this;
}
Certificate::Certificate(Certificate&&) noexcept = default;
Certificate& Certificate::operator=(Certificate&&) noexcept = default;
Certificate::~Certificate() = default;

Result<Certificate> Certificate::from_der(ByteView der) {
  const unsigned char* p = der.data();
  ossl::X509Ptr x(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!x || p != der.data() + der.size())
    return ossl::error("bad_certificate", "not a DER X.509 certificate");
  auto impl = std::make_unique<Impl>();
  impl->x509 = std::move(x);
  return Certificate(std::move(impl));
}

Result<Certificate> Certificate::from_pem(std::string_view pem) {
  auto chain = COFFER_TRY(chain_from_pem(pem));
  if (chain.size() != 1)
    return make_error("bad_certificate", "expected exactly one PEM certificate");
  return std::move(chain.front());
}

Result<std::vector<Certificate>> Certificate::chain_from_pem(std::string_view pem) {
  pem = trim_nul(pem);
  ossl::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::vector<Certificate> out;
  for (;;) {
    X509* raw = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (raw == nullptr) {
      unsigned long err = ERR_peek_last_error();
      ERR_clear_error();
      if (ERR_GET_REASON(err) == PEM_R_NO_START_LINE && !out.empty()) break;
      return make_error(
          "bad_certificate",
          out.empty() ? "no PEM certificate found"
                      : "PEM certificate " + std::to_string(out.size() + 1) + " does not parse");
    }
    auto impl = std::make_unique<Impl>();
    impl->x509.reset(raw);
    out.push_back(Certificate(std::move(impl)));
  }
  return out;
}

Bytes Certificate::der() const {
  unsigned char* buf = nullptr;
  int len = i2d_X509(impl_->x509.get(), &buf);
  if (len <= 0) std::abort();
  Bytes out(buf, buf + len);
  OPENSSL_free(buf);
  return out;
}

std::string Certificate::pem() const {
  ossl::BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), impl_->x509.get());
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

std::string Certificate::subject() const {
  return name_to_string(X509_get_subject_name(impl_->x509.get()));
}
std::string Certificate::issuer() const {
  return name_to_string(X509_get_issuer_name(impl_->x509.get()));
}

std::string Certificate::subject_common_name() const {
  char buf[256] = {};
  int n = X509_NAME_get_text_by_NID(X509_get_subject_name(impl_->x509.get()), NID_commonName, buf,
                                    sizeof buf);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

Bytes Certificate::serial() const {
  return asn1_int_bytes(X509_get0_serialNumber(impl_->x509.get()));
}
TimePoint Certificate::not_before() const {
  return asn1_time_to_point(X509_get0_notBefore(impl_->x509.get()));
}
TimePoint Certificate::not_after() const {
  return asn1_time_to_point(X509_get0_notAfter(impl_->x509.get()));
}
bool Certificate::is_ca() const { return X509_check_ca(impl_->x509.get()) != 0; }
bool Certificate::self_issued() const {
  return X509_NAME_cmp(X509_get_subject_name(impl_->x509.get()),
                       X509_get_issuer_name(impl_->x509.get())) == 0;
}
Bytes Certificate::sha256_fingerprint() const { return sha256(der()); }

Result<Key> Certificate::public_key() const {
  EVP_PKEY* k = X509_get_pubkey(impl_->x509.get());
  if (k == nullptr) return ossl::error("bad_certificate", "certificate public key does not parse");
  return Key::adopt_native(k);
}

Status Certificate::verify_signed_by(const Key& issuer_key) const {
  if (X509_verify(impl_->x509.get(), static_cast<EVP_PKEY*>(issuer_key.native_handle())) != 1) {
    ERR_clear_error();
    return make_error("cert_signature_invalid",
                      "certificate '" + subject() + "' is not signed by the issuer key");
  }
  return ok();
}

Status Certificate::check_validity(TimePoint at) const {
  if (at < not_before()) {
    return make_error("cert_not_yet_valid", "certificate '" + subject() + "' is not valid before " +
                                                format_rfc3339(not_before()));
  }
  if (at > not_after()) {
    return make_error("cert_expired",
                      "certificate '" + subject() + "' expired at " + format_rfc3339(not_after()));
  }
  return ok();
}

std::optional<Bytes> Certificate::extension_value(std::string_view oid) const {
  Asn1ObjPtr obj(OBJ_txt2obj(std::string(oid).c_str(), 1));
  if (!obj) return std::nullopt;
  int idx = X509_get_ext_by_OBJ(impl_->x509.get(), obj.get(), -1);
  if (idx < 0) return std::nullopt;
  X509_EXTENSION* ext = X509_get_ext(impl_->x509.get(), idx);
  ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(ext);
  return Bytes(ASN1_STRING_get0_data(data), ASN1_STRING_get0_data(data) + ASN1_STRING_length(data));
}

void* Certificate::native_handle() const { return impl_->x509.get(); }

struct Crl::Impl {
  ossl::X509CrlPtr crl;
};

Crl::Crl(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Crl::Crl(const Crl& o) : impl_(std::make_unique<Impl>()) {
  X509_CRL_up_ref(o.impl_->crl.get());
  impl_->crl.reset(o.impl_->crl.get());
}
Crl& Crl::operator=(const Crl& o) {
  if (this != &o) {
    Crl c(o);
    *this = std::move(c);
  }
  return *this;
}
Crl::Crl(Crl&&) noexcept = default;
Crl& Crl::operator=(Crl&&) noexcept = default;
Crl::~Crl() = default;

Result<Crl> Crl::from_der(ByteView der) {
  const unsigned char* p = der.data();
  ossl::X509CrlPtr c(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
  if (!c || p != der.data() + der.size()) return ossl::error("bad_crl", "not a DER CRL");
  auto impl = std::make_unique<Impl>();
  impl->crl = std::move(c);
  return Crl(std::move(impl));
}

Result<Crl> Crl::from_pem(std::string_view pem) {
  pem = trim_nul(pem);
  ossl::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  ossl::X509CrlPtr c(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
  if (!c) return ossl::error("bad_crl", "not a PEM CRL");
  auto impl = std::make_unique<Impl>();
  impl->crl = std::move(c);
  return Crl(std::move(impl));
}

Result<Crl> Crl::parse_any(ByteView data) {
  std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
  if (text.find("-----BEGIN X509 CRL-----") != std::string_view::npos) return from_pem(text);
  if (!data.empty() && data[0] == 0x30) return from_der(data);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == '\0'))
    text.remove_suffix(1);
  auto der = hex_decode(text);
  if (!der) return make_error("bad_crl", "CRL is neither DER, PEM nor hex");
  return from_der(*der);
}

std::string Crl::issuer() const { return name_to_string(X509_CRL_get_issuer(impl_->crl.get())); }
TimePoint Crl::this_update() const {
  return asn1_time_to_point(X509_CRL_get0_lastUpdate(impl_->crl.get()));
}
std::optional<TimePoint> Crl::next_update() const {
  const ASN1_TIME* t = X509_CRL_get0_nextUpdate(impl_->crl.get());
  if (t == nullptr) return std::nullopt;
  return asn1_time_to_point(t);
}

Status Crl::verify_signed_by(const Key& issuer_key) const {
  if (X509_CRL_verify(impl_->crl.get(), static_cast<EVP_PKEY*>(issuer_key.native_handle())) != 1) {
    ERR_clear_error();
    return make_error("crl_signature_invalid",
                      "CRL of '" + issuer() + "' is not signed by the issuer key");
  }
  return ok();
}

bool Crl::is_revoked(ByteView serial) const {
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(impl_->crl.get());
  for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
    Bytes s = asn1_int_bytes(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, i)));
    if (s.size() == serial.size() && std::equal(s.begin(), s.end(), serial.begin())) return true;
  }
  return false;
}

}  // namespace coffer::crypto
