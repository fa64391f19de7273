// Intel DCAP quote verification (SGX quote v3, TDX quote v4/v5) as a straight sequence of
// numbered steps, each failing with its own error code. Trust anchors, the collateral source and
// the verification time come from the caller.
//
// What does not change between quotes is verified once and cached, keyed by its exact bytes
// (hashed by the cache's map, compared in full on lookup): the PCK intermediate/root chain, PCK
// leaves whose signature by that intermediate verified (with their extensions), CRLs (with their
// signature by a given issuer), TCB infos and QE identities (with their signing chain and
// signature), and attestation keys with the QE report, its signature by the PCK key and the QE
// auth data that vouched for them. Every call still checks every validity window against `now`,
// revocation, the collateral's freshness, the QE identity and TCB, and the quote's own signature.
// The verifier is thread-safe; copies share the caches.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/error.h"
#include "crypto/x509.h"
#include "evidence/sgx/quote.h"
#include "evidence/tdx/quote.h"
#include "verifier/dcap/collateral.h"
#include "verifier/dcap/collateral_source.h"
#include "verifier/dcap/pck_extensions.h"
#include "verifier/dcap/tcb.h"

namespace coffer::verifier::dcap {

struct DcapOptions {
  // Accept collateral (TCB info, QE identity, CRLs) past its nextUpdate, reporting
  // collateral_expiration_status "1" instead of failing. Certificates must always be valid.
  bool allow_expired_collateral = false;
  // Bound of each verified-object cache (PCK issuer chains, PCK leaves, CRLs, TCB infos, QE
  // identities, attestation keys).
  std::size_t cache_capacity = 256;
};

// How many verified objects the verifier holds (for tests and metrics).
struct DcapCacheSizes {
  std::size_t issuer_chains = 0, pck_leaves = 0, crls = 0, tcb_infos = 0, qe_identities = 0;
};

struct DcapResult {
  bool chain_only = false;  // no collateral: signatures and chain only, no TCB status
  std::optional<TcbEvaluation> tcb;
  bool collateral_expired = false;
  bool crls_checked = false;
  std::optional<int> tcb_evaluation_data_number;
  PckExtensions pck;
  std::string pck_ca;  // "platform" or "processor"
  std::string root_subject;
  Bytes root_fingerprint;  // SHA-256 of the anchoring root's DER
};

class DcapVerifier {
 public:
  // `source` may be null: every quote is then verified in chain-only mode.
  DcapVerifier(std::vector<crypto::Certificate> trust_anchors,
               std::shared_ptr<const CollateralSource> source, DcapOptions options = {});
  // The Intel SGX Root CA (embedded) as the only trust anchor.
  static DcapVerifier with_intel_root(std::shared_ptr<const CollateralSource> source,
                                      DcapOptions options = {});

  Result<DcapResult> verify_tdx(const evidence::tdx::Quote& quote, TimePoint now) const;
  Result<DcapResult> verify_sgx(const evidence::sgx::Quote& quote, TimePoint now) const;

  // What the steps need from either quote kind.
  struct QuoteView {
    TeeKind tee = TeeKind::kTdx;
    Bytes signed_region;
    const evidence::sgx::QuoteHeader* header = nullptr;
    const evidence::sgx::QuoteSignatureData* signature = nullptr;
    std::optional<TdxTcbInput> tdx;
  };
  // With explicit collateral (null: chain only), bypassing the source.
  Result<DcapResult> verify(const QuoteView& quote, const Collateral* collateral,
                            TimePoint now) const;

  [[nodiscard]] DcapCacheSizes cache_sizes() const;
  [[nodiscard]] const std::vector<crypto::Certificate>& trust_anchors() const { return anchors_; }

  struct Caches;

 private:
  std::vector<crypto::Certificate> anchors_;
  std::shared_ptr<const CollateralSource> source_;
  DcapOptions options_;
  std::shared_ptr<Caches> caches_;
};

}  // namespace coffer::verifier::dcap
