#include "verifier/dcap/pcs_source.h"

#include <cctype>

#include "core/file.h"
#include "core/json.h"
#include "crypto/x509.h"
#include "verifier/dcap/collateral.h"

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

// A file name for a cache key ("tdx/certification/v4/tcb?fmspc=..." -> safe characters only).
std::string file_name(const std::string& key) {
  std::string out;
  for (char c : key) out.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  return out;
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
      return make_error("bad_encoding", "truncated percent escape");
    }
    int hi = hex_value(text[i + 1]);
    int lo = hex_value(text[i + 2]);
    if (hi < 0 || lo < 0) return make_error("bad_encoding", "bad percent escape");
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

PcsCollateralSource::PcsCollateralSource(PcsOptions options) : options_(std::move(options)) {
  while (!options_.base_url.empty() && options_.base_url.back() == '/') {
    options_.base_url.pop_back();
  }
  if (!options_.clock) options_.clock = system_clock();
}

PcsCollateralSource::~PcsCollateralSource() = default;

std::size_t PcsCollateralSource::requests_made() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

Result<PcsCollateralSource::Document> PcsCollateralSource::download(
    const std::string& path, const char* chain_header) const {
  if (!client_) client_ = std::make_unique<net::HttpClient>(options_.http);
  ++requests_;
  std::string url = options_.base_url + "/" + path;
  auto response = client_->request({.method = "GET", .url = url});
  if (!response) {
    return make_error("collateral_fetch_failed", url + ": " + response.error().to_string());
  }
  if (response->status != 200) {
    return make_error("collateral_fetch_failed",
                      url + ": HTTP " + std::to_string(response->status));
  }
  Document doc;
  doc.body = std::move(response->body);
  if (chain_header) {
    auto chain = response->headers.get(chain_header);
    // PCS v3 spelled the TCB info chain header with an "SGX-" prefix
    if (!chain) chain = response->headers.get(std::string("SGX-") + chain_header);
    if (!chain) return make_error("collateral_fetch_failed", url + ": no " + chain_header);
    auto decoded = percent_decode(*chain);
    if (!decoded) return make_error("collateral_fetch_failed", url + ": bad " + chain_header);
    doc.issuer_chain = std::move(*decoded);
  }
  doc.next_update = next_update_of(doc.body);
  return doc;
}

Result<PcsCollateralSource::Document> PcsCollateralSource::get(const std::string& path,
                                                               const char* chain_header) const {
  std::lock_guard lock(mutex_);
  TimePoint now = options_.clock->now();
  auto it = cache_.find(path);
  // first use: the on-disk copy, if any
  if (it == cache_.end() && !options_.cache_dir.empty()) {
    auto base = options_.cache_dir / file_name(path);
    auto body = read_text_file(base.string() + ".body", kMaxDocument);
    auto chain = read_text_file(base.string() + ".chain", kMaxDocument);
    if (body && (chain || !chain_header)) {
      Document doc{*body, chain ? *chain : "", next_update_of(*body)};
      it = cache_.emplace(path, std::move(doc)).first;
    }
  }
  if (it != cache_.end() && now <= it->second.next_update) return it->second;
  auto fresh = download(path, chain_header);
  if (!fresh) {
    if (it != cache_.end()) return it->second;  // stale: the verifier judges its expiry
    return std::unexpected(fresh.error());
  }
  if (!options_.cache_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options_.cache_dir, ec);
    auto base = options_.cache_dir / file_name(path);
    // a failed disk write only costs a later download
    (void)write_file_atomic(base.string() + ".body", as_bytes(fresh->body));
    (void)write_file_atomic(base.string() + ".chain", as_bytes(fresh->issuer_chain));
  }
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
