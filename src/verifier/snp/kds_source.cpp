#include "verifier/snp/kds_source.h"

#include <cctype>

#include "core/file.h"

namespace coffer::verifier::snp {
namespace {

namespace esnp = evidence::snp;

constexpr std::size_t kMaxCertificate = 1 << 20;
constexpr std::string_view kNotFoundMarker = "coffer:kds:404";

std::string file_name(const std::string& key) {
  std::string out;
  for (char c : key) out.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  return out;
}

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

KdsVekSource::KdsVekSource(KdsOptions options) : options_(std::move(options)) {
  while (!options_.base_url.empty() && options_.base_url.back() == '/') {
    options_.base_url.pop_back();
  }
}

KdsVekSource::~KdsVekSource() = default;

std::size_t KdsVekSource::requests_made() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

Result<std::optional<std::string>> KdsVekSource::get(
    const std::string& path, std::optional<std::chrono::seconds> max_age) const {
  std::lock_guard lock(mutex_);
  auto now = std::filesystem::file_time_type::clock::now();
  auto fresh = [&](std::filesystem::file_time_type fetched) {
    return !max_age || now - fetched <= *max_age;
  };
  // an answer too old to be used while KDS answers, but better than none while it does not (the
  // verifier still checks a CRL's nextUpdate)
  std::optional<std::optional<std::string>> stale;
  if (auto it = cache_.find(path); it != cache_.end()) {
    if (fresh(it->second.fetched)) return it->second.body;
    stale = it->second.body;
  }
  std::filesystem::path file;
  if (!options_.cache_dir.empty()) {
    file = options_.cache_dir / file_name(path);
    std::error_code ec;
    auto written = std::filesystem::last_write_time(file, ec);
    auto cached = ec ? Result<std::string>(std::unexpected(Error{"not_found", ""}))
                     : read_text_file(file, kMaxCertificate);
    if (cached) {
      std::optional<std::string> value;
      if (*cached != kNotFoundMarker) value = std::move(*cached);
      if (fresh(written)) {
        cache_.insert_or_assign(path, Entry{value, written});
        return value;
      }
      stale = std::move(value);
    }
  }
  if (!client_) client_ = std::make_unique<net::HttpClient>(options_.http);
  ++requests_;
  std::string url = options_.base_url + "/" + path;
  auto response = client_->request({.method = "GET", .url = url});
  if (response && response->status != 200 && response->status != 404) {
    // rate limiting (429) and server errors are transient: not cached
    if (stale) return *stale;
    return make_error("vek_fetch_failed", url + ": HTTP " + std::to_string(response->status));
  }
  if (!response) {
    if (stale) return *stale;
    return make_error("vek_fetch_failed", url + ": " + response.error().to_string());
  }
  std::optional<std::string> value;
  if (response->status == 200) value = std::move(response->body);
  if (!file.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options_.cache_dir, ec);
    (void)write_file_atomic(file, as_bytes(value ? *value : std::string(kNotFoundMarker)));
  }
  cache_.insert_or_assign(path, Entry{value, now});
  return value;
}

Result<Vek> KdsVekSource::fetch(Product product, const esnp::Report& report) const {
  if (report.signing_key() != 0) {
    return make_error("vek_unavailable", "KDS serves VCEKs only; this report is signed by a VLEK");
  }
  if (product == Product::kUnknown) {
    return make_error("vek_unavailable", "the product is needed to ask KDS for a VCEK");
  }
  auto body = COFFER_TRY(get(kds_vcek_path(product, report)));
  if (!body) return make_error("vek_unavailable", "KDS has no VCEK for this chip and TCB");
  return Vek{VekType::kVcek, to_bytes(*body)};
}

Result<std::string> KdsVekSource::cert_chain(Product product) const {
  auto body = COFFER_TRY(
      get("vcek/v1/" + std::string(evidence::snp::product_name(product)) + "/cert_chain"));
  if (!body) return make_error("vek_unavailable", "KDS has no certificate chain for this product");
  return *body;
}

Result<Bytes> KdsVekSource::fetch_crl(Product product) const {
  if (product == Product::kUnknown) {
    return make_error("crl_unavailable", "the product is needed to ask KDS for a CRL");
  }
  auto body = get("vcek/v1/" + std::string(evidence::snp::product_name(product)) + "/crl",
                  options_.crl_max_age);
  if (!body) return make_error("crl_fetch_failed", body.error().message);
  // AMD publishes a CRL for every product KDS serves: a 404 is a failure, not "no CRL"
  if (!*body) {
    return make_error(
        "amd_crl_not_found",
        "KDS answered 404 for the " + std::string(evidence::snp::product_name(product)) + " CRL");
  }
  return to_bytes(**body);
}

}  // namespace coffer::verifier::snp
