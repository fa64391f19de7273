// DCAP collateral from the Intel PCS or a PCCS (Intel SGX and TDX PCS API v4):
//   GET {base}/{sgx|tdx}/certification/v4/tcb?fmspc=<hex>  -> TCB info, TCB-Info-Issuer-Chain
//   GET {base}/{sgx|tdx}/certification/v4/qe/identity      -> QE / TD_QE identity,
//                                                             SGX-Enclave-Identity-Issuer-Chain
//   GET {base}/sgx/certification/v4/pckcrl?ca=<processor|platform>&encoding=der
//                                                          -> PCK CRL, SGX-PCK-CRL-Issuer-Chain
//   GET {base}/sgx/certification/v4/rootcacrl              -> root CA CRL (DER, or hex from PCCS)
// Issuer chains come URL-encoded in the response headers. Every document is cached in memory
// and, with a cache directory, on disk; a cached document is used until its nextUpdate (TCB
// info, QE identity, CRLs) and then fetched again. When a refresh fails the stale copy is
// returned, so that the verifier reports expired collateral instead of "unavailable".
// Downloads run outside the source's lock, one per document in flight (verifier/source_cache.h):
// a slow answer for one document does not hold up verifications that need others.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/clock.h"
#include "net/http_client.h"
#include "verifier/dcap/collateral_source.h"
#include "verifier/source_cache.h"

namespace coffer::verifier::dcap {

struct PcsOptions {
  // Intel PCS ("https://api.trustedservices.intel.com") or a PCCS ("https://pccs:8081").
  std::string base_url = "https://api.trustedservices.intel.com";
  net::HttpClientOptions http;
  std::filesystem::path cache_dir;  // empty: memory only
  std::shared_ptr<const Clock> clock = system_clock();
};

// Percent-decoding of an issuer chain header ("%2B" -> '+'; '+' stays '+').
Result<std::string> percent_decode(std::string_view text);

class PcsCollateralSource final : public CollateralSource {
 public:
  explicit PcsCollateralSource(PcsOptions options);
  ~PcsCollateralSource() override;
  // Errors: "collateral_fetch_failed" (network, non-200 status, missing issuer chain header).
  Result<Collateral> fetch(const CollateralRequest& request) const override;
  // HTTP requests made so far (cache hits make none).
  [[nodiscard]] std::size_t requests_made() const;
  // For tests: blocks until `n` callers in total have waited for a download another caller
  // started for the same document.
  void wait_for_joined_fetches(std::size_t n) const { flights_.wait_for_joined(n); }

  struct Document {
    std::string body;
    std::string issuer_chain;
    TimePoint next_update;
  };

 private:
  Result<Document> get(const std::string& path, const char* chain_header) const;
  Result<Document> refresh(const std::string& path, const char* chain_header, TimePoint now) const;
  Result<Document> download(const std::string& path, const char* chain_header) const;

  PcsOptions options_;
  DiskCache disk_;
  mutable HttpFetcher http_;
  mutable SingleFlight<Document> flights_;
  mutable std::mutex mutex_;  // guards cache_ only (never held across a download)
  mutable std::map<std::string, Document> cache_;
};

}  // namespace coffer::verifier::dcap
