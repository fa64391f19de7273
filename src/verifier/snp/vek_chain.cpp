#include "verifier/snp/vek_chain.h"

#include <filesystem>

#include "core/file.h"
#include "crypto/der.h"
#include "crypto/digest.h"
#include "verifier/cache.h"
#include "verifier/snp/errors.h"

namespace coffer::verifier::snp {
namespace {

using crypto::Certificate;
namespace esnp = evidence::snp;

// VEK certificate extensions (KDS Interface Specification, Table "VCEK Certificate Extensions").
constexpr std::string_view kBlSplOid = "1.3.6.1.4.1.3704.1.3.1";
constexpr std::string_view kTeeSplOid = "1.3.6.1.4.1.3704.1.3.2";
constexpr std::string_view kSnpSplOid = "1.3.6.1.4.1.3704.1.3.3";
constexpr std::string_view kUcodeSplOid = "1.3.6.1.4.1.3704.1.3.8";
constexpr std::string_view kFmcSplOid = "1.3.6.1.4.1.3704.1.3.9";
constexpr std::string_view kHwIdOid = "1.3.6.1.4.1.3704.1.4";

Result<std::uint8_t> spl(const Certificate& vek, std::string_view oid) {
  auto v = vek.extension_value(oid);
  if (!v)
    return make_error(SnpError::kVekExtensionsInvalid, "VEK lacks extension " + std::string(oid));
  crypto::DerReader r(*v);
  auto i = r.expect(crypto::der_tag::kInteger);
  if (!i)
    return make_error(SnpError::kVekExtensionsInvalid, std::string(oid) + " is not an INTEGER");
  auto n = crypto::der_to_uint(*i);
  if (!n || *n > 0xff)
    return make_error(SnpError::kVekExtensionsInvalid, std::string(oid) + " > 255");
  return static_cast<std::uint8_t>(*n);
}

// "SEV-Milan", "SEV-VLEK-Genoa", "ARK-Turin" -> product.
Product product_of_cn(const std::string& cn) {
  auto dash = cn.rfind('-');
  if (dash == std::string::npos) return Product::kUnknown;
  auto p = esnp::product_from_name(cn.substr(dash + 1));
  return p ? *p : Product::kUnknown;
}

std::string issuer_common_name(const Certificate& cert) {
  std::string issuer = cert.issuer();
  auto at = issuer.find("CN=");
  if (at == std::string::npos) return "";
  auto end = issuer.find(',', at);
  return issuer.substr(at + 3, end == std::string::npos ? std::string::npos : end - at - 3);
}

Status signed_by(const Certificate& cert, const Certificate& issuer, SnpError code) {
  auto key = issuer.public_key();
  if (!key || !cert.verify_signed_by(*key)) {
    return make_error(
        code, cert.subject_common_name() + " is not signed by " + issuer.subject_common_name());
  }
  return ok();
}

// The certificate's validity window holds `now`: `expired` past it, `not_yet_valid` before it.
Status valid_at(const Certificate& cert, TimePoint now, SnpError expired, SnpError not_yet_valid) {
  auto st = cert.check_validity(now);
  if (st) return st;
  return make_error(now < cert.not_before() ? not_yet_valid : expired,
                    cert.subject_common_name() + ": " + st.error().message);
}

// ECDSA r or s: 72 bytes little-endian in the report -> 48 bytes big-endian.
Result<Bytes> p384_scalar(ByteView le72) {
  for (std::size_t i = 48; i < 72; ++i) {
    if (le72[i] != 0)
      return make_error(SnpError::kReportSignatureInvalid, "signature scalar too large");
  }
  return Bytes(std::make_reverse_iterator(le72.begin() + 48),
               std::make_reverse_iterator(le72.begin()));
}

// A VEK whose chain to the pinned ARK verified, with its parsed extensions and the ASK/ASVK that
// signed it (the configured one, or one from the VEK's bundle that the configured ARK signed).
struct VerifiedVek {
  Certificate cert;
  Certificate signer;
  crypto::Key key;
  Product product = Product::kUnknown;
  VekType type = VekType::kVcek;
  VekTcb ext;
  bool amd_root = true;
};

// Per call: AMD's CRL for the product, if the source has one, is signed by the ARK (verified once
// per exact CRL bytes and product, then cached), current, and does not list `signer`.
Status check_amd_crl(const AmdCrlSource& source, BoundedCache<crypto::Crl>& cache, Product product,
                     const VendorChain& chain, const Certificate& signer, VekType type,
                     TimePoint now, bool& checked) {
  auto data = source.fetch_crl(product);
  if (!data) {
    if (has_code(data.error(), SnpError::kCrlUnavailable)) return ok();
    return std::unexpected(data.error());
  }
  std::string key = cache_key(*data) + std::string(esnp::product_name(product));
  std::shared_ptr<const crypto::Crl> crl = cache.find(key);
  if (!crl) {
    auto parsed = crypto::Crl::parse_any(*data);
    if (!parsed) return make_error(SnpError::kAmdCrlInvalid, "AMD CRL: " + parsed.error().message);
    if (parsed->issuer() != chain.ark.subject()) {
      return make_error(SnpError::kAmdCrlInvalid, "the AMD CRL is issued by '" + parsed->issuer() +
                                                      "', not by " +
                                                      chain.ark.subject_common_name());
    }
    auto ark_key = COFFER_TRY(chain.ark.public_key());
    if (!parsed->verify_signed_by(ark_key)) {
      return make_error(SnpError::kAmdCrlSignatureInvalid,
                        "the AMD CRL is not signed by " + chain.ark.subject_common_name());
    }
    crl = cache.insert(key, std::make_shared<const crypto::Crl>(std::move(*parsed)));
  }
  // a CRL past its nextUpdate no longer vouches that nothing else was revoked
  if (auto next = crl->next_update(); next && now > *next) {
    return make_error(SnpError::kAmdCrlExpired,
                      "the AMD CRL for " + std::string(esnp::product_name(product)) +
                          " expired at " + format_rfc3339(*next) + "; fetch the current one");
  }
  if (crl->is_revoked(signer.serial())) {
    bool vcek = type == VekType::kVcek;
    return make_error(vcek ? SnpError::kAskRevoked : SnpError::kAsvkRevoked,
                      signer.subject_common_name() + " (serial " + hex_encode(signer.serial()) +
                          ") is revoked by AMD's CRL");
  }
  checked = true;
  return ok();
}

// The ASK (VCEK) or ASVK (VLEK) of `product` among the certificates that came with a VEK; the
// caller still checks that the configured ARK signed it.
std::optional<Certificate> bundled_signer(const Vek& vek, VekType type, Product product) {
  std::string want =
      (type == VekType::kVcek ? "SEV-" : "SEV-VLEK-") + std::string(esnp::product_name(product));
  for (const Bytes& der : vek.intermediates) {
    auto cert = Certificate::from_der(der);
    if (cert && cert->subject_common_name() == want) return std::move(*cert);
  }
  return std::nullopt;
}

}  // namespace

struct SnpChainVerifier::Caches {
  explicit Caches(std::size_t n) : veks(n), crls(n) {}
  BoundedCache<VerifiedVek> veks;
  BoundedCache<crypto::Crl> crls;  // AMD CRLs whose signature by the product's ARK verified
};

std::string_view vek_type_name(VekType t) { return t == VekType::kVcek ? "VCEK" : "VLEK"; }

std::optional<VekType> vek_type_of(const Certificate& cert) {
  std::string cn = cert.subject_common_name();
  if (cn == "SEV-VCEK") return VekType::kVcek;
  if (cn == "SEV-VLEK") return VekType::kVlek;
  return std::nullopt;
}

std::optional<std::string_view> pinned_ark_spki_sha256(Product p) {
  switch (p) {
    case Product::kMilan:
      return "9f056bee44377e29308cb5ffa895bdfb62d18881fa6bed8d6f075b0204089cb9";
    case Product::kGenoa:
      return "429a69c9422aa258ee4d8db5fcda9c6470ef15f8cd5a9cebd6cbc7d90b863831";
    case Product::kTurin:
      return "4f125410563a2ab9a50356f9243f6fe0b6f73de98603f53f90339c70e9d7ad08";
    case Product::kUnknown:
      break;
  }
  return std::nullopt;
}

Result<VendorChain> vendor_chain_from_pem(std::string_view pem) {
  auto certs = Certificate::chain_from_pem(pem);
  if (!certs) return make_error(SnpError::kVendorChainInvalid, certs.error().message);
  std::optional<Certificate> ark, ask, asvk;
  for (auto& c : *certs) {
    std::string cn = c.subject_common_name();
    if (cn.rfind("ARK-", 0) == 0) {
      ark = c;
    } else if (cn.rfind("SEV-VLEK-", 0) == 0) {
      asvk = c;
    } else if (cn.rfind("SEV-", 0) == 0) {
      ask = c;
    }
  }
  if (!ark) return make_error(SnpError::kVendorChainInvalid, "no ARK-<product> certificate");
  return VendorChain{*ark, ask, asvk};
}

Result<VekTcb> read_vek_extensions(const Certificate& vek, Product product) {
  VekTcb out;
  out.tcb.bootloader = COFFER_TRY(spl(vek, kBlSplOid));
  out.tcb.tee = COFFER_TRY(spl(vek, kTeeSplOid));
  out.tcb.snp = COFFER_TRY(spl(vek, kSnpSplOid));
  out.tcb.microcode = COFFER_TRY(spl(vek, kUcodeSplOid));
  if (product == Product::kTurin) out.tcb.fmc = COFFER_TRY(spl(vek, kFmcSplOid));
  if (auto hw = vek.extension_value(kHwIdOid)) {
    // Older KDS certificates carry the 64 raw bytes, newer ones an OCTET STRING around them.
    if (hw->size() == 64) {
      out.hw_id = *hw;
    } else {
      crypto::DerReader r(*hw);
      auto inner = r.expect(crypto::der_tag::kOctetString);
      if (!inner || inner->size() != 64 || !r.empty()) {
        return make_error(SnpError::kVekExtensionsInvalid,
                          "hwID is neither 64 bytes nor an OCTET STRING of 64");
      }
      out.hw_id = Bytes(inner->begin(), inner->end());
    }
  }
  return out;
}

Result<Bytes> DirectoryCrlSource::fetch_crl(Product product) const {
  std::filesystem::path file =
      std::filesystem::path(dir_) / (std::string(esnp::product_name(product)) + ".crl");
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) {
    return make_error(SnpError::kCrlUnavailable, "no " + file.string());
  }
  auto data = read_file(file, 1 << 22);
  if (!data)
    return make_error(SnpError::kAmdCrlInvalid, file.string() + ": " + data.error().message);
  return std::move(*data);
}

Result<Vek> DirectoryVekSource::fetch(Product product, const esnp::Report& report) const {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    auto ext = entry.path().extension().string();
    if (ext != ".der" && ext != ".pem" && ext != ".cer" && ext != ".testcer") continue;
    auto data = read_file(entry.path(), 1 << 20);
    if (!data) continue;
    // one DER certificate, or PEM: one certificate or a bundle whose first certificate is the VEK
    std::vector<Certificate> certs;
    if (auto der = Certificate::from_der(*data)) {
      certs.push_back(std::move(*der));
    } else if (auto pem = Certificate::chain_from_pem(to_string(*data))) {
      certs = std::move(*pem);
    }
    if (certs.empty()) continue;
    const Certificate& cert = certs.front();
    auto type = vek_type_of(cert);
    if (!type) continue;
    auto tcb = read_vek_extensions(cert, product);
    if (!tcb || tcb->tcb != esnp::decode_tcb(report.reported_tcb, product)) continue;
    if (*type == VekType::kVcek &&
        (!tcb->hw_id || *tcb->hw_id != Bytes(report.chip_id.begin(), report.chip_id.end()))) {
      continue;
    }
    Vek vek{*type, cert.der(), {}};
    for (std::size_t i = 1; i < certs.size(); ++i) vek.intermediates.push_back(certs[i].der());
    return vek;
  }
  return make_error(SnpError::kVekUnavailable, "no VEK for this chip and TCB in " + dir_);
}

SnpChainVerifier::SnpChainVerifier(std::map<Product, VendorChain> vendors,
                                   std::shared_ptr<const VekSource> source, Options options)
    : vendors_(std::move(vendors)),
      source_(std::move(source)),
      options_(std::move(options)),
      caches_(std::make_shared<Caches>(options_.cache_capacity)) {}

std::size_t SnpChainVerifier::cached_veks() const { return caches_->veks.size(); }

Result<SnpEndorsement> SnpChainVerifier::verify(const esnp::Report& report,
                                                const std::optional<Vek>& vek_from_evidence,
                                                TimePoint now) const {
  SnpEndorsement out;
  // 1. signing key: the report says which kind of VEK signed it (0 VCEK, 1 VLEK)
  if (report.signing_key() > 1) {
    return make_error(SnpError::kReportUnsigned, "SIGNING_KEY " +
                                                     std::to_string(report.signing_key()) +
                                                     ": the report carries no VEK signature");
  }
  out.vek_type = report.signing_key() == 0 ? VekType::kVcek : VekType::kVlek;

  // 2. the VEK: from the evidence's certificate table, else from the VEK source
  Product product = report.product_from_cpuid();
  std::optional<Vek> vek = vek_from_evidence;
  if (!vek) {
    if (!source_)
      return make_error(SnpError::kVekUnavailable, "no VEK in the evidence and no VEK source");
    std::vector<Product> candidates;
    if (product != Product::kUnknown) {
      candidates.push_back(product);
    } else {
      for (const auto& [p, _] : vendors_) candidates.push_back(p);
    }
    Error last{std::string(code_string(SnpError::kVekUnavailable)), "no product configured"};
    for (Product p : candidates) {
      auto v = source_->fetch(p, report);
      if (v) {
        vek = std::move(*v);
        break;
      }
      last = v.error();
    }
    if (!vek) return std::unexpected(last);
  }
  std::string vek_key = cache_key(vek->der);
  std::shared_ptr<const VerifiedVek> verified = caches_->veks.find(vek_key);
  if (verified && (verified->type != out.vek_type ||
                   (product != Product::kUnknown && product != verified->product))) {
    verified = nullptr;  // verified for another use: take the full path (and its errors)
  }
  if (!verified) {
    auto vek_cert = Certificate::from_der(vek->der);
    if (!vek_cert) return make_error(SnpError::kVekInvalid, vek_cert.error().message);
    std::string vek_cn = vek_cert->subject_common_name();
    if (vek_cn.find(vek_type_name(out.vek_type)) == std::string::npos) {
      return make_error(SnpError::kVekTypeMismatch, "the report is signed by a " +
                                                        std::string(vek_type_name(out.vek_type)) +
                                                        ", the certificate is " + vek_cn);
    }

    // 3. product: from CPUID (v3+) and the VEK's issuer; they must agree
    Product issuer_product = product_of_cn(issuer_common_name(*vek_cert));
    if (product == Product::kUnknown) product = issuer_product;
    if (product == Product::kUnknown ||
        (issuer_product != Product::kUnknown && issuer_product != product)) {
      return make_error(SnpError::kProductMismatch,
                        "cannot tell the product, or CPUID and VEK issuer disagree");
    }
    auto vendor = vendors_.find(product);
    if (vendor == vendors_.end()) {
      return make_error(SnpError::kProductUnsupported,
                        "no AMD chain configured for " + std::string(esnp::product_name(product)));
    }
    const VendorChain& chain = vendor->second;

    // 4. ARK: self-signed and pinned to AMD's key for this product (or explicitly configured)
    COFFER_TRY_STATUS(signed_by(chain.ark, chain.ark, SnpError::kArkSignatureInvalid));
    auto ark_key = COFFER_TRY(chain.ark.public_key());
    auto pin = pinned_ark_spki_sha256(product);
    bool amd_root = pin && hex_encode(crypto::sha256(ark_key.public_der())) == *pin;
    if (!amd_root && !options_.trust_configured_arks) {
      return make_error(SnpError::kArkUntrusted, "the ARK is not AMD's pinned ARK-" +
                                                     std::string(esnp::product_name(product)));
    }

    // 5. ASK (VCEK) or ASVK (VLEK) signed by the ARK (RSASSA-PSS SHA-384): the configured one,
    // else one that came with the VEK (untrusted until the configured ARK's signature verifies)
    std::optional<Certificate> signer = out.vek_type == VekType::kVcek ? chain.ask : chain.asvk;
    if (!signer) signer = bundled_signer(*vek, out.vek_type, product);
    if (!signer) {
      return make_error(SnpError::kAskUnavailable,
                        "no ASK/ASVK configured for this product or sent with the VEK");
    }
    COFFER_TRY_STATUS(signed_by(*signer, chain.ark, SnpError::kAskSignatureInvalid));

    // 6. VEK signed by the ASK/ASVK
    COFFER_TRY_STATUS(signed_by(*vek_cert, *signer, SnpError::kVekSignatureInvalid));
    auto ext = COFFER_TRY(read_vek_extensions(*vek_cert, product));
    auto vek_key_pub = COFFER_TRY(vek_cert->public_key());
    verified = caches_->veks.insert(
        vek_key, std::make_shared<const VerifiedVek>(
                     VerifiedVek{std::move(*vek_cert), std::move(*signer), std::move(vek_key_pub),
                                 product, out.vek_type, ext, amd_root}));
  }
  product = verified->product;
  out.product = product;
  out.amd_root = verified->amd_root;
  const VendorChain& chain = vendors_.at(product);
  const Certificate& signer = verified->signer;

  // 7. every certificate valid at the verification time
  COFFER_TRY_STATUS(
      valid_at(verified->cert, now, SnpError::kVekExpired, SnpError::kVekNotYetValid));
  COFFER_TRY_STATUS(valid_at(signer, now, SnpError::kAskExpired, SnpError::kAskNotYetValid));
  COFFER_TRY_STATUS(valid_at(chain.ark, now, SnpError::kArkExpired, SnpError::kArkNotYetValid));

  // 8. revocation: AMD's CRL (when the source has one) is current and does not list the ASK/ASVK
  if (options_.crl_source) {
    COFFER_TRY_STATUS(check_amd_crl(*options_.crl_source, caches_->crls, product, chain, signer,
                                    out.vek_type, now, out.crl_checked));
  }

  // 9. the VEK was issued for the TCB the report claims, and (VCEK) for this chip
  const VekTcb& ext = verified->ext;
  out.reported_tcb = esnp::decode_tcb(report.reported_tcb, product);
  if (ext.tcb != out.reported_tcb) {
    return make_error(SnpError::kVekTcbMismatch, "VEK TCB extensions differ from REPORTED_TCB");
  }
  if (out.vek_type == VekType::kVcek &&
      (!ext.hw_id || !std::equal(ext.hw_id->begin(), ext.hw_id->end(), report.chip_id.begin(),
                                 report.chip_id.end()))) {
    return make_error(SnpError::kChipIdMismatch, "VCEK hwID differs from the report's CHIP_ID");
  }

  // 10. report signature: ECDSA P-384 / SHA-384 over bytes 0x000-0x29F
  Bytes sig = COFFER_TRY(p384_scalar(report.signature_r));
  Bytes s = COFFER_TRY(p384_scalar(report.signature_s));
  sig.insert(sig.end(), s.begin(), s.end());
  Bytes signed_region = esnp::serialize_report(report);
  signed_region.resize(esnp::kSignedSize);
  if (!verified->key.verify(signed_region, sig,
                            {crypto::DigestAlg::kSha384, crypto::SignatureFormat::kRaw})) {
    return make_error(SnpError::kReportSignatureInvalid, "the report signature does not verify");
  }
  return out;
}

}  // namespace coffer::verifier::snp
