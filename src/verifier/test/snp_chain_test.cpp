#include <gtest/gtest.h>

#include "core/file.h"
#include "core/test/evidence_files.h"
#include "verifier/snp/vek_chain.h"

namespace coffer::verifier::snp {
namespace {

namespace esnp = evidence::snp;

const std::string kSnp = std::string(COFFER_SOURCE_DIR) + "/testdata/evidence/snp/";

TimePoint at(const char* t) { return *parse_rfc3339(t); }

std::map<Product, VendorChain> amd_vendors() {
  std::map<Product, VendorChain> out;
  for (auto [p, f] : {std::pair{Product::kMilan, "milan"}, std::pair{Product::kGenoa, "genoa"},
                      std::pair{Product::kTurin, "turin"}}) {
    auto pem = coffer::testing::evidence_text(std::string("snp/amd_roots/trustee/") + f +
                                              "_ask_ark_asvk.pem");
    auto chain = vendor_chain_from_pem(pem);
    EXPECT_TRUE(chain) << chain.error().to_string();
    out.emplace(p, *chain);
  }
  return out;
}

esnp::Report report(const std::string& rel) {
  auto r = esnp::parse_report(coffer::testing::evidence_bytes(std::string("snp/") + rel));
  EXPECT_TRUE(r) << rel;
  return *r;
}

Vek vek(const std::string& rel, VekType t = VekType::kVcek) {
  return Vek{t, coffer::testing::evidence_bytes(std::string("snp/") + rel)};
}

TEST(SnpChain, GoSevGuestMilanReport) {
  SnpChainVerifier v(amd_vendors(), nullptr);
  auto r = v.verify(report("go-sev-guest/attestation.bin"), vek("go-sev-guest/vcek.testcer"),
                    at("2025-01-01T00:00:00Z"));
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->product, Product::kMilan);
  EXPECT_EQ(r->vek_type, VekType::kVcek);
  EXPECT_EQ(r->reported_tcb, (esnp::TcbVersion{0, 2, 0, 5, 68}));
}

TEST(SnpChain, TrusteeReportAndByte42) {
  SnpChainVerifier v(amd_vendors(), nullptr);
  auto rep = report("trustee/test-report.bin");
  EXPECT_TRUE(v.verify(rep, vek("trustee/test-vcek.der"), at("2025-01-01T00:00:00Z")));
  Bytes raw = coffer::testing::evidence_bytes("snp/trustee/test-report.bin");
  raw[42]++;
  auto mutated = esnp::parse_report(raw);
  ASSERT_TRUE(mutated);
  EXPECT_EQ(
      v.verify(*mutated, vek("trustee/test-vcek.der"), at("2025-01-01T00:00:00Z")).error().code,
      "report_signature_invalid");
}

TEST(SnpChain, InvalidVceksRejected) {
  SnpChainVerifier v(amd_vendors(), nullptr);
  auto rep = report("trustee/test-report.bin");
  for (const char* f :
       {"trustee/test-vcek-invalid-legacy.der", "trustee/test-vcek-invalid-new.der"}) {
    auto r = v.verify(rep, vek(f), at("2025-01-01T00:00:00Z"));
    ASSERT_FALSE(r) << f;
    EXPECT_EQ(r.error().code, "vek_signature_invalid") << f << " " << r.error().to_string();
    // both hwID encodings (raw 64 bytes, OCTET STRING) parse
    auto cert =
        crypto::Certificate::from_der(coffer::testing::evidence_bytes(std::string("snp/") + f));
    ASSERT_TRUE(cert);
    auto ext = read_vek_extensions(*cert, Product::kMilan);
    ASSERT_TRUE(ext) << ext.error().to_string();
    ASSERT_TRUE(ext->hw_id);
    EXPECT_EQ(hex_encode(ByteView(*ext->hw_id).first(4)), "00010203");
  }
  // the go-sev-guest VCEK is for another chip and TCB
  EXPECT_EQ(
      v.verify(rep, vek("go-sev-guest/vcek.testcer"), at("2025-01-01T00:00:00Z")).error().code,
      "vek_tcb_mismatch");
}

TEST(SnpChain, VlekReportSignedViaAsvk) {
  SnpChainVerifier v(amd_vendors(), nullptr);
  auto rep = report("trustee/test-vlek-report.bin");
  auto r = v.verify(rep, vek("trustee/test-vlek.der", VekType::kVlek), at("2025-06-01T00:00:00Z"));
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->vek_type, VekType::kVlek);
  EXPECT_EQ(r->product, Product::kMilan);
  EXPECT_EQ(v.verify(rep, vek("trustee/test-vlek.der", VekType::kVlek), at("2026-01-01T00:00:00Z"))
                .error()
                .code,
            "vek_expired");
}

TEST(SnpChain, FlippingAnySignedByteIsRejected) {
  SnpChainVerifier v(amd_vendors(), nullptr);
  Bytes raw = coffer::testing::evidence_bytes("snp/go-sev-guest/attestation.bin");
  auto good = vek("go-sev-guest/vcek.testcer");
  for (std::size_t i = 0; i < esnp::kSignedSize + 144; i += 5) {
    Bytes m = raw;
    m[i] ^= 0x20;
    auto rep = esnp::parse_report(m);
    if (!rep) continue;  // version / algorithm bytes fail parsing already
    EXPECT_FALSE(v.verify(*rep, good, at("2025-01-01T00:00:00Z"))) << i;
  }
}

TEST(SnpChain, UntrustedArkAndMissingVek) {
  auto vendors = amd_vendors();
  // swap in Genoa's ARK for Milan: signature over the ASK fails or the pin fails
  vendors.at(Product::kMilan).ark = vendors.at(Product::kGenoa).ark;
  SnpChainVerifier v(vendors, nullptr);
  auto r = v.verify(report("go-sev-guest/attestation.bin"), vek("go-sev-guest/vcek.testcer"),
                    at("2025-01-01T00:00:00Z"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "ark_untrusted");
  SnpChainVerifier none(amd_vendors(), nullptr);
  EXPECT_EQ(
      none.verify(report("go-sev-guest/attestation.bin"), std::nullopt, at("2025-01-01T00:00:00Z"))
          .error()
          .code,
      "vek_unavailable");
}

TEST(SnpChain, DirectoryVekSource) {
  SnpChainVerifier v(amd_vendors(), std::make_shared<DirectoryVekSource>(kSnp + "go-sev-guest"));
  auto r =
      v.verify(report("go-sev-guest/attestation.bin"), std::nullopt, at("2025-01-01T00:00:00Z"));
  ASSERT_TRUE(r) << r.error().to_string();
  SnpChainVerifier t(amd_vendors(), std::make_shared<DirectoryVekSource>(kSnp + "trustee"));
  auto rt = t.verify(report("trustee/test-report.bin"), std::nullopt, at("2025-01-01T00:00:00Z"));
  ASSERT_TRUE(rt) << rt.error().to_string();
}

}  // namespace
}  // namespace coffer::verifier::snp
