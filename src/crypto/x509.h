// X.509 certificates and CRLs: parsing, signatures, validity, extensions.
// Verifiers (src/verifier) build their numbered checks from these primitives.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "core/clock.h"
#include "core/error.h"
#include "crypto/pkey.h"

namespace coffer::crypto {

class Certificate {
 public:
  static Result<Certificate> from_der(ByteView der);
  static Result<Certificate> from_pem(std::string_view pem);
  // All certificates in a PEM bundle, in order (a trailing NUL byte is tolerated).
  static Result<std::vector<Certificate>> chain_from_pem(std::string_view pem);

  Certificate(const Certificate&);
  Certificate& operator=(const Certificate&);
  Certificate(Certificate&&) noexcept;
  Certificate& operator=(Certificate&&) noexcept;
  ~Certificate();

  [[nodiscard]] Bytes der() const;
  [[nodiscard]] std::string pem() const;
  [[nodiscard]] std::string subject() const;  // RFC 2253 form, e.g. "CN=Intel SGX Root CA,O=..."
  [[nodiscard]] std::string issuer() const;
  [[nodiscard]] std::string subject_common_name() const;
  [[nodiscard]] Bytes serial() const;  // big-endian magnitude
  [[nodiscard]] TimePoint not_before() const;
  [[nodiscard]] TimePoint not_after() const;
  [[nodiscard]] bool is_ca() const;
  [[nodiscard]] bool self_issued() const;  // subject == issuer
  [[nodiscard]] Bytes sha256_fingerprint() const;
  Result<Key> public_key() const;

  // "cert_signature_invalid" unless `issuer_key` signed this certificate (any algorithm OpenSSL
  // supports, RSASSA-PSS included).
  Status verify_signed_by(const Key& issuer_key) const;
  // "cert_expired" / "cert_not_yet_valid" relative to `at`.
  Status check_validity(TimePoint at) const;
  // The DER contents (the OCTET STRING value) of an extension by dotted OID, if present.
  [[nodiscard]] std::optional<Bytes> extension_value(std::string_view oid) const;

  [[nodiscard]] void* native_handle() const;  // X509*, for src/crypto internals only

 private:
  struct Impl;
  explicit Certificate(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class Crl {
 public:
  static Result<Crl> from_der(ByteView der);
  static Result<Crl> from_pem(std::string_view pem);
  // Accepts DER or PEM, or hex of DER (Intel PCS returns CRLs hex-encoded in some APIs).
  static Result<Crl> parse_any(ByteView data);

  Crl(const Crl&);
  Crl& operator=(const Crl&);
  Crl(Crl&&) noexcept;
  Crl& operator=(Crl&&) noexcept;
  ~Crl();

  [[nodiscard]] std::string issuer() const;
  [[nodiscard]] TimePoint this_update() const;
  [[nodiscard]] std::optional<TimePoint> next_update() const;
  Status verify_signed_by(const Key& issuer_key) const;  // "crl_signature_invalid"
  [[nodiscard]] bool is_revoked(ByteView serial) const;

 private:
  struct Impl;
  explicit Crl(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace coffer::crypto
