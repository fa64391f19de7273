// Simulated SGX beyond quotes (docs/simulated-tee.md, "Simulated SGX"): the enclave's signature
// (a SIGSTRUCT-like file giving MRSIGNER, ISVPRODID and ISVSVN), and what the simulated CPU gives
// an enclave about itself only: REPORTs for local attestation (EREPORT) and their verification by
// the target, and sealing keys (EGETKEY). Every key derives from the platform secret
// (SimPki::platform_secret) with HKDF-SHA256:
//
//   report key(target, keyid) = HKDF(ikm = platform secret, salt = "coffer-sim-sgx-v1",
//       info = "report" 0x00 || target MRENCLAVE || KEYID)                          32 bytes
//   REPORT = body (384) || KEYID (32, random) || MAC (16)
//       MAC = HMAC-SHA256(report key(target, KEYID), body || KEYID)[0:16]
//   seal key = HKDF(ikm = platform secret, salt = "coffer-sim-sgx-v1",
//       info = "seal" 0x00 || u8 policy (1 MRENCLAVE, 2 MRSIGNER) || MRENCLAVE or MRSIGNER
//              || u16le ISVPRODID || u16le ISVSVN || u64le ATTRIBUTES.FLAGS & (INIT|DEBUG|MODE64)
//              || KEYID (32))                                                       32 bytes
#pragma once

#include <cstdint>
#include <string>

#include "core/bytes.h"
#include "core/error.h"
#include "core/json.h"
#include "crypto/pkey.h"
#include "evidence/sgx/report.h"
#include "evidence/sim/sim_tee.h"

namespace coffer::evidence::sim {

// ---- the enclave signature (SIGSTRUCT-like)

inline constexpr std::string_view kSigstructFormat = "coffer-sim-sgx-sigstruct-v1";
inline constexpr std::size_t kMaxSigstructBytes = 64 * 1024;

// MRSIGNER of a signer key: RSA (SGX signs with RSA-3072): SHA-256 of the modulus in little-endian
// byte order, as many bytes as the key (SGX's SIGSTRUCT.MODULUS); EC P-256 (our equivalent):
// SHA-256 of x || y, each 32 bytes big-endian. Other keys: "bad_signer_key".
Result<Fixed<32>> sgx_mr_signer(const crypto::Key& key);

struct SgxSigstruct {
  Fixed<32> mr_enclave{};
  std::uint16_t isv_prod_id = 0;
  std::uint16_t isv_svn = 0;
  std::uint64_t flags = kSgxFlagsInit | kSgxFlagsMode64;  // ATTRIBUTES.FLAGS the enclave gets
  std::uint64_t xfrm = kDefaultSgxXfrm;
};

// The bytes the signer signs: "coffer-sim-sgx-sigstruct-v1" 0x00 || MRENCLAVE || u16le ISVPRODID
// || u16le ISVSVN || u64le FLAGS || u64le XFRM.
Bytes sigstruct_signed_bytes(const SgxSigstruct& s);

// The signature file's text (JSON): {"format", "mr_enclave" (hex), "isv_prod_id", "isv_svn",
// "flags" (hex u64), "xfrm" (hex u64), "signer" (public key PEM), "signature" (base64;
// RSA PKCS#1 v1.5 or ECDSA r||s, SHA-256)}. "bad_signer_key" for a key that is not RSA or
// P-256 or has no private part.
Result<std::string> sign_sigstruct(const SgxSigstruct& s, const crypto::Key& signer);

// Checks a signature file against the MRENCLAVE measured at launch and returns the identity it
// gives (MRSIGNER from its signer key). Errors: "enclave_signature_invalid" (malformed, another
// MRENCLAVE, FLAGS without INIT or with bits other than INIT|DEBUG|MODE64, a signer key that is
// not RSA/P-256, or a signature that does not verify).
Result<SgxIdentity> verify_sigstruct(std::string_view text, const Fixed<32>& measured_mr_enclave);

// The SGX reference values of an identity, named as the SGX verifier's claims and the policies
// use them: sgx.mr_enclave, sgx.mr_signer (hex), sgx.isv_prod_id, sgx.isv_svn (hex of the
// little-endian u16, as the claims body.isv_prod_id / body.isv_svn carry them).
Json sgx_reference_values(const SgxIdentity& identity);

// ---- local attestation (EREPORT / EGETKEY(REPORT_KEY))

inline constexpr std::size_t kSgxReportSize = 384 + 32 + 16;

// A REPORT by `self` for the enclave whose MRENCLAVE is `target`. "bad_report_data" if
// report_data is longer than 64 bytes (shorter is zero-padded); "sgx_unavailable" without a
// platform secret.
Result<Bytes> make_sgx_report(const SimPki& pki, const SgxIdentity& self, const Fixed<32>& target,
                              ByteView report_data);

// The target `self` checks a REPORT with its own report key: the report body when the MAC
// verifies. "bad_report" (size), "report_mac_mismatch" (made for another target, or altered).
Result<sgx::EnclaveReport> verify_sgx_report(const SimPki& pki, const SgxIdentity& self,
                                             ByteView report);

// ---- sealing (EGETKEY(SEAL_KEY))

enum class SealPolicy : std::uint8_t { kMrEnclave = 1, kMrSigner = 2 };

// The 32-byte sealing key of `self` for `policy`, ISVSVN `isv_svn` (at most the enclave's own:
// "svn_too_high" otherwise; an older SVN is allowed, as SGX allows, to unseal old data) and
// `key_id` (32 bytes, "bad_key_id").
Result<Bytes> sgx_seal_key(const SimPki& pki, const SgxIdentity& self, SealPolicy policy,
                           std::uint16_t isv_svn, ByteView key_id);

}  // namespace coffer::evidence::sim
