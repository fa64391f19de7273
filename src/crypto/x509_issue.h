// Issuing X.509 certificates and CRLs: for simulated vendor PKIs (src/evidence/sim) and tests.
// Production code verifies certificates (x509.h); only the simulated TEE issues them.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/bytes.h"
#include "core/clock.h"
#include "core/error.h"
#include "crypto/digest.h"
#include "crypto/pkey.h"
#include "crypto/x509.h"

namespace coffer::crypto {

struct CertificateExtension {
  std::string oid;  // dotted, e.g. "1.2.840.113741.1.13.1"
  Bytes der_value;  // the DER carried in the extension's OCTET STRING
  bool critical = false;
};

struct CertificateSpec {
  // Subject attributes in order, e.g. {{"CN", "Intel SGX PCK Certificate"}, {"O", "..."}}.
  std::vector<std::pair<std::string, std::string>> subject;
  Bytes serial;  // big-endian; empty: 16 random bytes
  TimePoint not_before;
  TimePoint not_after;
  bool ca = false;
  std::optional<int> path_len;  // basicConstraints pathLenConstraint (CA only)
  // keyUsage: CAs get keyCertSign + cRLSign, leaves digitalSignature (+ nonRepudiation).
  bool key_usage = true;
  bool subject_key_id = true;
  std::vector<CertificateExtension> extensions;
  DigestAlg digest = DigestAlg::kSha256;
  // RSA issuers: RSASSA-PSS (salt = digest length, MGF1 with the same digest) instead of PKCS#1.
  bool rsa_pss = false;
};

// Issues a certificate for `subject_key` (its public part), signed by `issuer_key`. `issuer`
// null means self-signed (issuer name = subject name). "x509_issue_failed" on OpenSSL errors.
Result<Certificate> issue_certificate(const CertificateSpec& spec, const Key& subject_key,
                                      const Key& issuer_key, const Certificate* issuer);

struct CrlSpec {
  TimePoint this_update;
  TimePoint next_update;
  std::vector<Bytes> revoked_serials;  // big-endian
  long crl_number = 1;
  DigestAlg digest = DigestAlg::kSha256;
  bool rsa_pss = false;  // RSA issuers: RSASSA-PSS as in CertificateSpec (AMD's CRLs)
};

// A v2 CRL in DER, issued by `issuer` with `issuer_key`.
Result<Bytes> issue_crl(const CrlSpec& spec, const Certificate& issuer, const Key& issuer_key);

}  // namespace coffer::crypto
