#include "trustee/as/verifiers.h"

#include "core/file.h"
#include "core/log.h"
#include "crypto/x509.h"
#include "verifier/dcap/dcap_verifier.h"
#include "verifier/dcap/intel_root.h"
#include "verifier/dcap/pcs_source.h"
#include "verifier/sgx/sgx_verifier.h"
#include "verifier/snp/amd_roots.h"
#include "verifier/snp/kds_source.h"
#include "verifier/snp/snp_verifier.h"
#include "verifier/tdx/tdx_verifier.h"

namespace coffer::trustee::as {
namespace {

namespace dcap = verifier::dcap;
namespace vsnp = verifier::snp;

std::filesystem::path resolve(const std::filesystem::path& base, const std::string& p) {
  std::filesystem::path path(p);
  return path.is_relative() && !base.empty() ? base / path : path;
}

std::unexpected<Error> bad(const config::Section& s, const std::string& message) {
  return make_error("bad_config", "[" + s.name() + "] " + message);
}

Result<std::string> read_pem(const config::Section& s, const std::filesystem::path& path) {
  auto pem = read_text_file(path, 1 << 20);
  if (!pem) return bad(s, "trusted root '" + path.string() + "': " + pem.error().message);
  return *pem;
}

// A DCAP TEE configured without a collateral source: its evidence is refused, naming the settings
// that would make it verifiable (chain-only checks no CRL, QE identity or TCB).
class NoCollateralVerifier final : public verifier::Verifier {
 public:
  NoCollateralVerifier(std::string tee, std::string section)
      : tee_(std::move(tee)), section_(std::move(section)) {}
  [[nodiscard]] std::string_view tee() const override { return tee_; }
  Result<Json> verify(const verifier::VerifyInput& /*input*/) const override {
    return make_error("collateral_source_missing",
                      "[" + section_ +
                          "] sets neither collateral_dir nor pccs_url: without collateral (CRLs, "
                          "QE identity, TCB info) " +
                          tee_ +
                          " evidence is refused; set one of them, or allow_chain_only = true to "
                          "verify the PCK chain only");
  }

 private:
  std::string tee_;
  std::string section_;
};

Result<std::unique_ptr<verifier::Verifier>> build_dcap(const config::Section& s, bool tdx,
                                                       const std::shared_ptr<const Clock>& clock,
                                                       const std::filesystem::path& base) {
  COFFER_TRY_STATUS(
      s.reject_unknown({"enabled", "trusted_roots", "collateral_dir", "pccs_url", "cache_dir",
                        "allow_expired_collateral", "allow_chain_only"}));
  std::vector<crypto::Certificate> anchors;
  for (const auto& p : COFFER_TRY(s.string_array("trusted_roots"))) {
    auto certs = crypto::Certificate::chain_from_pem(COFFER_TRY(read_pem(s, resolve(base, p))));
    if (!certs || certs->empty()) return bad(s, "trusted root '" + p + "' holds no certificate");
    anchors.insert(anchors.end(), certs->begin(), certs->end());
  }
  if (anchors.empty()) anchors.push_back(*crypto::Certificate::from_pem(dcap::kIntelSgxRootCaPem));

  auto collateral_dir = COFFER_TRY(s.optional_string("collateral_dir"));
  auto pccs_url = COFFER_TRY(s.optional_string("pccs_url"));
  if (collateral_dir && pccs_url) return bad(s, "set collateral_dir or pccs_url, not both");
  bool allow_chain_only = COFFER_TRY(s.boolean("allow_chain_only", false));
  if (allow_chain_only && (collateral_dir || pccs_url)) {
    return bad(s, "allow_chain_only applies only without collateral_dir and pccs_url");
  }
  std::string tee = tdx ? "tdx" : "sgx";
  if (!collateral_dir && !pccs_url && !allow_chain_only) {
    return std::make_unique<NoCollateralVerifier>(tee, s.name());
  }
  if (allow_chain_only) {
    spdlog::warn(
        "[{}] allow_chain_only = true: {} quotes are verified up to the PCK chain only, without "
        "CRLs, QE identity or TCB status (claims verification_mode = \"chain_only\")",
        s.name(), tee);
  }
  std::shared_ptr<const dcap::CollateralSource> source;
  if (collateral_dir) {
    auto dir = dcap::DirectoryCollateralSource::open(resolve(base, *collateral_dir));
    if (!dir) return bad(s, dir.error().message);
    source = std::make_shared<dcap::DirectoryCollateralSource>(std::move(*dir));
  } else if (pccs_url) {
    dcap::PcsOptions options;
    options.base_url = *pccs_url;
    options.clock = clock;
    if (auto cache = COFFER_TRY(s.optional_string("cache_dir"))) {
      options.cache_dir = resolve(base, *cache);
    }
    source = std::make_shared<dcap::PcsCollateralSource>(options);
  }
  dcap::DcapOptions options;
  options.allow_expired_collateral = COFFER_TRY(s.boolean("allow_expired_collateral", false));
  auto engine = std::make_shared<const dcap::DcapVerifier>(std::move(anchors), source, options);
  if (tdx) return std::make_unique<verifier::tdx::TdxVerifier>(engine);
  return std::make_unique<verifier::sgx::SgxVerifier>(engine);
}

// Tries each VEK source in turn (offline directory first, then KDS).
class FirstOfVekSources final : public vsnp::VekSource {
 public:
  explicit FirstOfVekSources(std::vector<std::shared_ptr<const vsnp::VekSource>> sources)
      : sources_(std::move(sources)) {}
  Result<vsnp::Vek> fetch(vsnp::Product product,
                          const evidence::snp::Report& report) const override {
    Error last{"vek_unavailable", "no VEK source"};
    for (const auto& s : sources_) {
      auto v = s->fetch(product, report);
      if (v) return v;
      last = v.error();
    }
    return std::unexpected(last);
  }

 private:
  std::vector<std::shared_ptr<const vsnp::VekSource>> sources_;
};

// The SNP verifier's claims plus the configuration's revocation setting, for the policy:
// `unchecked_revocation_allowed` is true only with allow_unchecked_revocation = true.
class SnpWithRevocationSetting final : public verifier::Verifier {
 public:
  SnpWithRevocationSetting(std::unique_ptr<verifier::Verifier> inner, bool allow_unchecked)
      : inner_(std::move(inner)), allow_unchecked_(allow_unchecked) {}
  [[nodiscard]] std::string_view tee() const override { return inner_->tee(); }
  Result<Json> verify(const verifier::VerifyInput& input) const override {
    Json claims = COFFER_TRY(inner_->verify(input));
    claims["unchecked_revocation_allowed"] = allow_unchecked_;
    return claims;
  }

 private:
  std::unique_ptr<verifier::Verifier> inner_;
  bool allow_unchecked_;
};

Result<std::unique_ptr<verifier::Verifier>> build_snp(const config::Section& s,
                                                      const std::filesystem::path& base) {
  COFFER_TRY_STATUS(s.reject_unknown({"enabled", "trusted_roots", "vek_dir", "kds_url", "cache_dir",
                                      "crl_dir", "allow_unchecked_revocation"}));
  bool allow_unchecked = COFFER_TRY(s.boolean("allow_unchecked_revocation", false));
  std::map<vsnp::Product, vsnp::VendorChain> vendors;
  auto roots = COFFER_TRY(s.string_array("trusted_roots"));
  std::vector<std::string> pems;
  for (const auto& p : roots) pems.push_back(COFFER_TRY(read_pem(s, resolve(base, p))));
  bool configured = !pems.empty();
  if (!configured) {
    pems = {std::string(vsnp::kAmdMilanChainPem), std::string(vsnp::kAmdGenoaChainPem),
            std::string(vsnp::kAmdTurinChainPem)};
  }
  for (const auto& pem : pems) {
    auto chain = vsnp::vendor_chain_from_pem(pem);
    if (!chain) return bad(s, "trusted root: " + chain.error().message);
    std::string cn = chain->ark.subject_common_name();  // "ARK-<product>"
    auto product = evidence::snp::product_from_name(cn.substr(cn.find('-') + 1));
    if (!product) return bad(s, "trusted root: unknown product in '" + cn + "'");
    vendors.insert_or_assign(*product, std::move(*chain));
  }

  std::vector<std::shared_ptr<const vsnp::VekSource>> sources;
  std::shared_ptr<const vsnp::AmdCrlSource> crl_source;  // AMD's CRLs: crl_dir, else KDS
  if (auto dir = COFFER_TRY(s.optional_string("crl_dir"))) {
    crl_source = std::make_shared<vsnp::DirectoryCrlSource>(resolve(base, *dir).string());
  }
  if (auto dir = COFFER_TRY(s.optional_string("vek_dir"))) {
    sources.push_back(std::make_shared<vsnp::DirectoryVekSource>(resolve(base, *dir).string()));
  }
  if (auto url = COFFER_TRY(s.optional_string("kds_url"))) {
    vsnp::KdsOptions options;
    options.base_url = *url;
    if (auto cache = COFFER_TRY(s.optional_string("cache_dir"))) {
      options.cache_dir = resolve(base, *cache);
    }
    auto kds = std::make_shared<vsnp::KdsVekSource>(options);
    if (!crl_source) crl_source = kds;
    sources.push_back(std::move(kds));
  }
  std::shared_ptr<const vsnp::VekSource> source;
  if (sources.size() == 1) source = sources.front();
  if (sources.size() > 1) source = std::make_shared<FirstOfVekSources>(std::move(sources));

  if (allow_unchecked) {
    spdlog::warn(
        "[{}] allow_unchecked_revocation = true: the default policy affirms SNP hardware even "
        "when AMD's CRL was not checked (a revoked ASK/ASVK would go unnoticed)",
        s.name());
  } else if (!crl_source) {
    spdlog::warn(
        "[{}] has neither crl_dir nor kds_url: AMD's CRL cannot be checked, so the default policy "
        "affirms no SNP hardware",
        s.name());
  }
  vsnp::SnpChainVerifier::Options options;
  // explicitly listed roots are trusted even when they are not AMD's (claims then say so)
  options.trust_configured_arks = configured;
  options.crl_source = std::move(crl_source);
  auto chain = std::make_shared<const vsnp::SnpChainVerifier>(std::move(vendors), source, options);
  return std::make_unique<SnpWithRevocationSetting>(std::make_unique<vsnp::SnpVerifier>(chain),
                                                    allow_unchecked);
}

}  // namespace

Result<std::vector<std::unique_ptr<verifier::Verifier>>> build_tee_verifiers(
    const config::Section& verifier_section, std::shared_ptr<const Clock> clock,
    const std::filesystem::path& base_dir) {
  if (!clock) clock = system_clock();
  std::vector<std::unique_ptr<verifier::Verifier>> out;
  for (const char* tee : {"tdx", "sgx", "snp"}) {
    auto s = verifier_section.section(tee);
    if (!COFFER_TRY(s.boolean("enabled", true))) continue;
    if (std::string_view(tee) == "snp") {
      out.push_back(COFFER_TRY(build_snp(s, base_dir)));
    } else {
      out.push_back(COFFER_TRY(build_dcap(s, std::string_view(tee) == "tdx", clock, base_dir)));
    }
  }
  return out;
}

Status register_tee_verifiers(AttestationService& as, const config::Section& verifier_section,
                              std::shared_ptr<const Clock> clock,
                              const std::filesystem::path& base_dir) {
  auto verifiers = COFFER_TRY(build_tee_verifiers(verifier_section, std::move(clock), base_dir));
  for (auto& v : verifiers) as.register_verifier(std::move(v));
  return ok();
}

}  // namespace coffer::trustee::as
