#include "verifier/dcap/pcs_source.h"

#include "core/json.h"
#include "crypto/x509.h"
#include "verifier/dcap/collateral.h"
#include "verifier/dcap/errors.h"

namespace coffer::verifier::dcap {
namespace {

constexpr std::size_t kMaxDocument = 4 * 1024 * 1024;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// When a document must be fetched again: its nextUpdate (JSON member of the signed body, or
// the CRL's nextUpdate); documents without one are kept until the process restarts.
TimePoint next_update_of(const std::string& body) {
  if (auto doc = parse_json(body); doc && doc->is_object()) {
    for (const char* member : {"tcbInfo", "enclaveIdentity"}) {
      auto it = doc->find(member);
      if (it == doc->end() || !it->is_object() || !it->contains("nextUpdate")) continue;
      if (!(*it)["nextUpdate"].is_string()) continue;
      if (auto t = parse_rfc3339((*it)["nextUpdate"].get<std::string>())) return *t;
    }
  }
  if (auto crl = crypto::Crl::parse_any(as_bytes(body)); crl && crl->next_update()) {
    return *crl->next_update();
  }
  return TimePoint::max();
}

}  // namespace

Result<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) {
      return make_error(DcapError::kBadEncoding, "truncated percent escape");
    }
    int hi = hex_value(text[i + 1]);
    int lo = hex_value(text[i + 2]);
    if (hi < 0 || lo < 0) return make_error(DcapError::kBadEncoding, "bad percent escape");
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

PcsCollateralSource::PcsCollateralSource(PcsOptions options)
    : options_(std::move(options)), disk_(options_.cache_dir, kMaxDocument), http_(options_.http) {
  while (!options_.base_url.empty() && options_.base_url.back() == '/') {
    options_.base_url.pop_back();
  }
  if (!options_.clock) options_.clock = system_clock();
}

PcsCollateralSource::~PcsCollateralSource() = default;

std::size_t PcsCollateralSource::requests_made() const { return http_.requests_made(); }

Result<PcsCollateralSource::Document> PcsCollateralSource::download(
    const std::string& path, const char* chain_header) const {
  std::string url = options_.base_url + "/" + path;
  auto response = http_.get(url);
  if (!response) {
    return make_error(DcapError::kCollateralFetchFailed, url + ": " + response.error().to_string());
  }
  if (response->status != 200) {
    return make_error(DcapError::kCollateralFetchFailed,
                      url + ": HTTP " + std::to_string(response->status));
  }
  Document doc;
  doc.body = std::move(response->body);
  if (chain_header) {
    auto chain = response->headers.get(chain_header);
    // PCS v3 spelled the TCB info chain header with an "SGX-" prefix
    if (!chain) chain = response->headers.get(std::string("SGX-") + chain_header);
    if (!chain) return make_error(DcapError::kCollateralFetchFailed, url + ": no " + chain_header);
    auto decoded = percent_decode(*chain);
    if (!decoded)
      return make_error(DcapError::kCollateralFetchFailed, url + ": bad " + chain_header);
    doc.issuer_chain = std::move(*decoded);
  }
  doc.next_update = next_update_of(doc.body);
  return doc;
}

Result<PcsCollateralSource::Document> PcsCollateralSource::get(const std::string& path,
                                                               const char* chain_header) const {
  TimePoint now = options_.clock->now();
  {
    std::lock_guard lock(mutex_);
    if (auto it = cache_.find(path); it != cache_.end() && now <= it->second.next_update) {
      return it->second;
    }
  }
  return flights_.run(path, [&] { return refresh(path, chain_header, now); });
}

// One caller per path at a time (SingleFlight); the lock is taken only around cache_.
Result<PcsCollateralSource::Document> PcsCollateralSource::refresh(const std::string& path,
                                                                   const char* chain_header,
                                                                   TimePoint now) const {
  std::optional<Document> known;
  {
    std::lock_guard lock(mutex_);
    if (auto it = cache_.find(path); it != cache_.end()) known = it->second;
  }
  // a download that finished just before this one started
  if (known && now <= known->next_update) return *known;
  // first use: the on-disk copy, if any
  if (!known) {
    auto body = disk_.read(path, ".body");
    auto chain = disk_.read(path, ".chain");
    if (body && (chain || !chain_header)) {
      known = Document{body->data, chain ? chain->data : "", next_update_of(body->data)};
      std::lock_guard lock(mutex_);
      cache_.emplace(path, *known);
    }
    if (known && now <= known->next_update) return *known;
  }
  auto fresh = download(path, chain_header);
  if (!fresh) {
    if (known) return *known;  // stale: the verifier judges its expiry
    return std::unexpected(fresh.error());
  }
  disk_.write(path, ".body", fresh->body);
  disk_.write(path, ".chain", fresh->issuer_chain);
  std::lock_guard lock(mutex_);
  cache_[path] = *fresh;
  return fresh;
}

Result<Collateral> PcsCollateralSource::fetch(const CollateralRequest& request) const {
  std::string tee = request.tee == TeeKind::kTdx ? "tdx" : "sgx";
  Collateral c;
  auto tcb = COFFER_TRY(get(tee + "/certification/v4/tcb?fmspc=" + hex_encode(request.fmspc),
                            "TCB-Info-Issuer-Chain"));
  c.tcb_info = std::move(tcb.body);
  c.tcb_info_issuer_chain = std::move(tcb.issuer_chain);
  auto qe =
      COFFER_TRY(get(tee + "/certification/v4/qe/identity", "SGX-Enclave-Identity-Issuer-Chain"));
  c.qe_identity = std::move(qe.body);
  c.qe_identity_issuer_chain = std::move(qe.issuer_chain);
  std::string ca = request.pck_ca.empty() ? "processor" : request.pck_ca;
  auto pck_crl = COFFER_TRY(
      get("sgx/certification/v4/pckcrl?ca=" + ca + "&encoding=der", "SGX-PCK-CRL-Issuer-Chain"));
  c.pck_crl = to_bytes(pck_crl.body);
  c.pck_crl_issuer_chain = std::move(pck_crl.issuer_chain);
  auto root_crl = COFFER_TRY(get("sgx/certification/v4/rootcacrl", nullptr));
  c.root_ca_crl = to_bytes(root_crl.body);
  return c;
}

}  // namespace coffer::verifier::dcap
