// SEV-SNP endorsement: ARK (pinned) -> ASK (VCEK) or ASVK (VLEK) -> VEK -> attestation report.
// AMD SEV-SNP Firmware ABI Specification (#56860), "Attestation"; AMD Versioned Chip
// Endorsement Key (VCEK) Certificate and KDS Interface Specification (#57230) for the
// certificate profile and TCB extensions (1.3.6.1.4.1.3704.1.3.x, hwID 1.3.6.1.4.1.3704.1.4).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/error.h"
#include "crypto/x509.h"
#include "evidence/snp/report.h"

namespace coffer::verifier::snp {

using evidence::snp::Product;

// The AMD root and signing keys of one product generation.
struct VendorChain {
  crypto::Certificate ark;
  std::optional<crypto::Certificate> ask;   // signs VCEKs
  std::optional<crypto::Certificate> asvk;  // signs VLEKs
};

// Classifies certificates (ASK, ARK, ASVK in any order, PEM bundle or files) by CN:
// "ARK-<product>", "SEV-<product>", "SEV-VLEK-<product>". "vendor_chain_invalid" otherwise.
Result<VendorChain> vendor_chain_from_pem(std::string_view pem);

// SHA-256 of the SubjectPublicKeyInfo of AMD's ARKs (AMD KDS /vcek/v1/<product>/cert_chain).
std::optional<std::string_view> pinned_ark_spki_sha256(Product p);

enum class VekType { kVcek, kVlek };
std::string_view vek_type_name(VekType t);  // "VCEK", "VLEK"

// A VEK certificate from a source (cert table, directory, KDS).
struct Vek {
  VekType type = VekType::kVcek;
  Bytes der;
  // Certificates that came with the VEK (a bundle VEK, ASK, ARK), DER. Untrusted: an ASK/ASVK
  // among them is used only when none is configured, and only if the configured ARK signed it.
  std::vector<Bytes> intermediates;
};

// The kind of VEK a certificate is by its subject CN ("SEV-VCEK", "SEV-VLEK"); nullopt for any
// other certificate (an ASK, ARK, ...).
std::optional<VekType> vek_type_of(const crypto::Certificate& cert);

class VekSource {
 public:
  virtual ~VekSource() = default;
  // The VEK that signed `report` ("vek_unavailable" if the source has none).
  virtual Result<Vek> fetch(Product product, const evidence::snp::Report& report) const = 0;
};

// Offline: every *.der / *.pem / *.cer / *.testcer file in a directory; returns the one whose
// hwID and TCB extensions match the report (VCEK) or whose TCB matches (VLEK). A PEM file may be
// a bundle (VEK, then ASK, then ARK, as Azure's THIM/HCL and AMD's tools hand it out): its first
// certificate must be the VEK, the others come along as untrusted intermediates.
class DirectoryVekSource final : public VekSource {
 public:
  explicit DirectoryVekSource(std::string dir) : dir_(std::move(dir)) {}
  Result<Vek> fetch(Product product, const evidence::snp::Report& report) const override;

 private:
  std::string dir_;
};

// AMD's certificate revocation list of a product: KDS GET /vcek/v1/<product>/crl, a DER CRL
// signed by the ARK (RSASSA-PSS SHA-384) that lists revoked ASK and ASVK serial numbers (KDS
// Interface Specification #57230).
class AmdCrlSource {
 public:
  virtual ~AmdCrlSource() = default;
  // The CRL (DER or PEM); "crl_unavailable" when the source has none for this product (then
  // revocation is not checked), other codes when the source failed (the verification fails).
  virtual Result<Bytes> fetch_crl(Product product) const = 0;
};

// Offline: <dir>/<product>.crl (e.g. Milan.crl, Genoa.crl, Turin.crl), as KDS serves it.
class DirectoryCrlSource final : public AmdCrlSource {
 public:
  explicit DirectoryCrlSource(std::string dir) : dir_(std::move(dir)) {}
  Result<Bytes> fetch_crl(Product product) const override;

 private:
  std::string dir_;
};

struct VekTcb {
  evidence::snp::TcbVersion tcb;
  std::optional<Bytes> hw_id;  // VCEK only, 64 bytes
};
// Reads the TCB extensions (and hwID); "vek_extensions_invalid" on malformed values.
Result<VekTcb> read_vek_extensions(const crypto::Certificate& vek, Product product);

struct SnpEndorsement {
  Product product = Product::kUnknown;
  bool amd_root = true;  // the ARK is AMD's pinned ARK (false: a configured, simulated one)
  VekType vek_type = VekType::kVcek;
  evidence::snp::TcbVersion reported_tcb;
  bool crl_checked = false;  // AMD's CRL for the product was available, verified and current
};

// Verifies report signature chains. A VEK whose chain (ARK pinned and self-signed, ASK/ASVK by the
// ARK, VEK by the ASK/ASVK) verified once is cached by its exact DER, with its parsed
// TCB extensions; every call still checks every validity window, the TCB, the chip ID and the
// report signature. With a CRL source, every call also checks that AMD's CRL (its signature by the
// ARK verified once per exact CRL bytes and cached) is current and does not list the ASK/ASVK.
// Thread-safe; the caches are bounded.
class SnpChainVerifier {
 public:
  // `source` may be null (then the evidence must carry the VEK).
  struct Options {
    // Accept configured ARKs that are not AMD's (the simulated TEE's); endorsements then say
    // amd_root = false. Off: only AMD's pinned ARKs anchor a chain.
    bool trust_configured_arks = false;
    std::size_t cache_capacity = 256;
    // AMD's CRLs (null: revocation is not checked). Errors: "amd_crl_invalid",
    // "amd_crl_signature_invalid", "amd_crl_expired", "ask_revoked", "asvk_revoked".
    std::shared_ptr<const AmdCrlSource> crl_source;
  };
  SnpChainVerifier(std::map<Product, VendorChain> vendors, std::shared_ptr<const VekSource> source)
      : SnpChainVerifier(std::move(vendors), std::move(source), Options{}) {}
  SnpChainVerifier(std::map<Product, VendorChain> vendors, std::shared_ptr<const VekSource> source,
                   Options options);

  // Verifies the report's signature chain at `now`. `vek_from_evidence` is the VCEK/VLEK of the
  // evidence's certificate table, if any.
  Result<SnpEndorsement> verify(const evidence::snp::Report& report,
                                const std::optional<Vek>& vek_from_evidence, TimePoint now) const;

  [[nodiscard]] std::size_t cached_veks() const;
  [[nodiscard]] const std::map<Product, VendorChain>& vendors() const { return vendors_; }

  struct Caches;

 private:
  std::map<Product, VendorChain> vendors_;
  std::shared_ptr<const VekSource> source_;
  Options options_;
  std::shared_ptr<Caches> caches_;
};

}  // namespace coffer::verifier::snp
