#include "verifier/snp/kds_source.h"

#include "verifier/snp/errors.h"

namespace coffer::verifier::snp {
namespace {

namespace esnp = evidence::snp;

constexpr std::size_t kMaxCertificate = 1 << 20;
constexpr std::string_view kNotFoundMarker = "coffer:kds:404";

}  // namespace

std::string kds_vcek_path(Product product, const esnp::Report& report) {
  auto tcb = esnp::decode_tcb(report.reported_tcb, product);
  // Turin VCEKs are keyed by the first 8 bytes of the chip ID (KDS spec, "hwID")
  ByteView chip(report.chip_id);
  if (product == Product::kTurin) chip = chip.first(8);
  std::string path =
      "vcek/v1/" + std::string(esnp::product_name(product)) + "/" + hex_encode(chip) + "?";
  if (product == Product::kTurin) path += "fmcSPL=" + std::to_string(tcb.fmc) + "&";
  path += "blSPL=" + std::to_string(tcb.bootloader) + "&teeSPL=" + std::to_string(tcb.tee) +
          "&snpSPL=" + std::to_string(tcb.snp) + "&ucodeSPL=" + std::to_string(tcb.microcode);
  return path;
}

KdsVekSource::KdsVekSource(KdsOptions options)
    : options_(std::move(options)),
      disk_(options_.cache_dir, kMaxCertificate),
      http_(options_.http) {
  while (!options_.base_url.empty() && options_.base_url.back() == '/') {
    options_.base_url.pop_back();
  }
}

KdsVekSource::~KdsVekSource() = default;

std::size_t KdsVekSource::requests_made() const { return http_.requests_made(); }

namespace {

bool fresh_at(std::filesystem::file_time_type fetched, std::filesystem::file_time_type now,
              std::optional<std::chrono::seconds> max_age) {
  return !max_age || now - fetched <= *max_age;
}

}  // namespace

Result<std::optional<std::string>> KdsVekSource::get(
    const std::string& path, std::optional<std::chrono::seconds> max_age) const {
  {
    std::lock_guard lock(mutex_);
    auto now = std::filesystem::file_time_type::clock::now();
    if (auto it = cache_.find(path);
        it != cache_.end() && fresh_at(it->second.fetched, now, max_age)) {
      return it->second.body;
    }
  }
  return flights_.run(path, [&] { return refresh(path, max_age); });
}

// One caller per path at a time (SingleFlight); the lock is taken only around cache_.
Result<std::optional<std::string>> KdsVekSource::refresh(
    const std::string& path, std::optional<std::chrono::seconds> max_age) const {
  auto now = std::filesystem::file_time_type::clock::now();
  // an answer too old to be used while KDS answers, but better than none while it does not (the
  // verifier still checks a CRL's nextUpdate)
  std::optional<std::optional<std::string>> stale;
  {
    std::lock_guard lock(mutex_);
    if (auto it = cache_.find(path); it != cache_.end()) {
      // a download that finished just before this one started
      if (fresh_at(it->second.fetched, now, max_age)) return it->second.body;
      stale = it->second.body;
    }
  }
  if (auto cached = disk_.read(path)) {
    std::optional<std::string> value;
    if (cached->data != kNotFoundMarker) value = std::move(cached->data);
    if (fresh_at(cached->written, now, max_age)) {
      std::lock_guard lock(mutex_);
      cache_.insert_or_assign(path, Entry{value, cached->written});
      return value;
    }
    stale = std::move(value);
  }
  std::string url = options_.base_url + "/" + path;
  auto response = http_.get(url);
  if (response && response->status != 200 && response->status != 404) {
    // rate limiting (429) and server errors are transient: not cached
    if (stale) return *stale;
    return make_error(SnpError::kVekFetchFailed,
                      url + ": HTTP " + std::to_string(response->status));
  }
  if (!response) {
    if (stale) return *stale;
    return make_error(SnpError::kVekFetchFailed, url + ": " + response.error().to_string());
  }
  std::optional<std::string> value;
  if (response->status == 200) value = std::move(response->body);
  disk_.write(path, {}, value ? *value : std::string(kNotFoundMarker));
  std::lock_guard lock(mutex_);
  cache_.insert_or_assign(path, Entry{value, now});
  return value;
}

Result<Vek> KdsVekSource::fetch(Product product, const esnp::Report& report) const {
  if (report.signing_key() != 0) {
    return make_error(SnpError::kVekUnavailable,
                      "KDS serves VCEKs only; this report is signed by a VLEK");
  }
  if (product == Product::kUnknown) {
    return make_error(SnpError::kVekUnavailable, "the product is needed to ask KDS for a VCEK");
  }
  auto body = COFFER_TRY(get(kds_vcek_path(product, report)));
  if (!body) return make_error(SnpError::kVekUnavailable, "KDS has no VCEK for this chip and TCB");
  return Vek{VekType::kVcek, to_bytes(*body)};
}

Result<std::string> KdsVekSource::cert_chain(Product product) const {
  auto body = COFFER_TRY(
      get("vcek/v1/" + std::string(evidence::snp::product_name(product)) + "/cert_chain"));
  if (!body)
    return make_error(SnpError::kVekUnavailable, "KDS has no certificate chain for this product");
  return *body;
}

Result<Bytes> KdsVekSource::fetch_crl(Product product) const {
  if (product == Product::kUnknown) {
    return make_error(SnpError::kCrlUnavailable, "the product is needed to ask KDS for a CRL");
  }
  auto body = get("vcek/v1/" + std::string(evidence::snp::product_name(product)) + "/crl",
                  options_.crl_max_age);
  if (!body) return make_error(SnpError::kCrlFetchFailed, body.error().message);
  // AMD publishes a CRL for every product KDS serves: a 404 is a failure, not "no CRL"
  if (!*body) {
    return make_error(
        SnpError::kAmdCrlNotFound,
        "KDS answered 404 for the " + std::string(evidence::snp::product_name(product)) + " CRL");
  }
  return to_bytes(**body);
}

}  // namespace coffer::verifier::snp
