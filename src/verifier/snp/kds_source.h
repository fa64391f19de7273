// VCEKs from AMD's Key Distribution Service (VCEK Certificate and KDS Interface Specification
// #57230, "VCEK Certificate"):
//   GET {base}/vcek/v1/<product>/<hwid>?blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..  -> VCEK (DER)
//   GET {base}/vcek/v1/<product>/cert_chain                                     -> ASK, ARK (PEM)
//   GET {base}/vcek/v1/<product>/crl                                            -> CRL (DER)
// Turin: hwid is the first 8 bytes of CHIP_ID and the query adds fmcSPL. KDS rate-limits hard, so
// every answer (certificate or "not found") is cached in memory and, with a cache directory, on
// disk: KDS is never asked twice for the same key, except for CRLs, which are fetched again once
// older than `crl_max_age`. VLEKs are not on KDS ("vek_unavailable"). Downloads run outside the
// source's lock, one per key in flight (verifier/source_cache.h): concurrent callers for one key
// share its download, callers for other keys are not held up.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "net/http_client.h"
#include "verifier/snp/vek_chain.h"
#include "verifier/source_cache.h"

namespace coffer::verifier::snp {

struct KdsOptions {
  std::string base_url = "https://kdsintf.amd.com";
  net::HttpClientOptions http;
  std::filesystem::path cache_dir;  // empty: memory only
  std::chrono::seconds crl_max_age{std::chrono::hours(24)};
};

// The KDS path of the VCEK for a report ("vcek/v1/Milan/<hwid>?blSPL=..").
std::string kds_vcek_path(Product product, const evidence::snp::Report& report);

class KdsVekSource final : public VekSource, public AmdCrlSource {
 public:
  explicit KdsVekSource(KdsOptions options);
  ~KdsVekSource() override;
  // Errors: "vek_unavailable" (VLEK report, KDS answered 404), "vek_fetch_failed" (network,
  // other statuses; not cached, so a later call retries).
  Result<Vek> fetch(Product product, const evidence::snp::Report& report) const override;
  // The ASK/ARK chain of a product (PEM), cached like VCEKs.
  Result<std::string> cert_chain(Product product) const;
  // AMD's CRL of a product. Errors: "amd_crl_not_found" (KDS answered 404: the verification
  // fails), "crl_fetch_failed"; "crl_unavailable" only when the report names no product.
  Result<Bytes> fetch_crl(Product product) const override;
  [[nodiscard]] std::size_t requests_made() const;
  // For tests: blocks until `n` callers in total have waited for a download another caller
  // started for the same key.
  void wait_for_joined_fetches(std::size_t n) const { flights_.wait_for_joined(n); }

 private:
  struct Entry {
    std::optional<std::string> body;  // nullopt: KDS answered 404
    std::filesystem::file_time_type fetched;
  };
  // The body of a cached or fetched KDS answer; nullopt for a cached/received 404. Cached answers
  // older than `max_age` (if given) are fetched again.
  Result<std::optional<std::string>> get(const std::string& path,
                                         std::optional<std::chrono::seconds> max_age = {}) const;
  Result<std::optional<std::string>> refresh(const std::string& path,
                                             std::optional<std::chrono::seconds> max_age) const;

  KdsOptions options_;
  DiskCache disk_;
  mutable HttpFetcher http_;
  mutable SingleFlight<std::optional<std::string>> flights_;
  mutable std::mutex mutex_;  // guards cache_ only (never held across a download)
  mutable std::map<std::string, Entry> cache_;
};

}  // namespace coffer::verifier::snp
