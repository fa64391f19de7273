// The SNP chain verifier's checks against the simulated AMD PKI (sim ARK -> ASK -> VCEK): each
// altered copy (re-signed by the sim VCEK where the change is inside the signed region) asserts
// the exact error of the step that must catch it. Also VEK bundles (VEK, ASK, ARK in one PEM) in
// the directory VEK source.
#include <gtest/gtest.h>

#include "core/file.h"
#include "core/test/temp_dir.h"
#include "crypto/x509_issue.h"
#include "evidence/sim/sim_pki.h"
#include "evidence/sim/sim_tee.h"
#include "evidence/sim/test/sim_test_util.h"
#include "verifier/snp/vek_chain.h"

namespace coffer::verifier::snp {
namespace {

namespace sim = evidence::sim;
namespace esnp = evidence::snp;

const sim::SimPki& pki() { return sim::testing::shared_pki(); }

// Another vendor PKI for the same platform (an attacker's ARK -> ASK -> VCEK).
const sim::SimPki& foreign_pki() {
  static const sim::SimPki p = [] {
    sim::SimPkiOptions o;
    o.rsa_bits = 2048;
    auto made = sim::generate_sim_pki(o, pki().platform);
    if (!made) std::abort();
    return std::move(*made);
  }();
  return p;
}

esnp::Report report_of(const sim::SimPki& p) {
  auto raw = sim::make_snp_report(p, {}, Bytes(64, 0x42));
  if (!raw) std::abort();
  return *esnp::parse_report(*raw);
}

// ECDSA scalar, 48 bytes big-endian -> the report's 72 bytes little-endian.
evidence::Fixed<72> le72(ByteView be) {
  evidence::Fixed<72> out{};
  std::copy(be.rbegin(), be.rend(), out.begin());
  return out;
}

// Signs `r` again with `key` (as the firmware signs with the VEK): a change made to the signed
// region then reaches the check that is meant to catch it instead of the signature check.
esnp::Report resigned(esnp::Report r, const crypto::Key& key = pki().vcek_key) {
  Bytes region = esnp::serialize_report(r);
  region.resize(esnp::kSignedSize);
  Bytes sig = *key.sign(region, {crypto::DigestAlg::kSha384, crypto::SignatureFormat::kRaw});
  r.signature_r = le72(ByteView(sig).first(48));
  r.signature_s = le72(ByteView(sig).subspan(48, 48));
  return r;
}

VendorChain sim_vendor() { return *vendor_chain_from_pem(pki().amd_vendor_chain_pem()); }

SnpChainVerifier verifier_with(VendorChain chain, std::shared_ptr<const VekSource> source = {}) {
  std::map<Product, VendorChain> vendors{{pki().platform.product, std::move(chain)}};
  SnpChainVerifier::Options options;
  options.trust_configured_arks = true;
  return SnpChainVerifier(std::move(vendors), std::move(source), options);
}

// The DER with one byte of its signature value (the last bytes of a certificate) changed.
crypto::Certificate with_broken_signature(const crypto::Certificate& cert) {
  Bytes der = cert.der();
  der[der.size() - 3] ^= 0x01;
  return *crypto::Certificate::from_der(der);
}

const TimePoint kNow = std::chrono::system_clock::now();
const Vek kSimVcek{VekType::kVcek, pki().vcek.der(), {}};

std::string code(const SnpChainVerifier& v, const esnp::Report& r,
                 const std::optional<Vek>& vek = kSimVcek) {
  auto e = v.verify(r, vek, kNow);
  return e ? "ok" : e.error().code;
}

TEST(SnpSimMutations, GenuineReportVerifies) {
  EXPECT_EQ(code(verifier_with(sim_vendor()), report_of(pki())), "ok");
  // the re-signing helper itself keeps a report valid
  EXPECT_EQ(code(verifier_with(sim_vendor()), resigned(report_of(pki()))), "ok");
}

TEST(SnpSimMutations, CertificateValidityWindows) {
  // 7. before the VEK's notBefore, and after its notAfter
  auto v = verifier_with(sim_vendor());
  auto early = v.verify(report_of(pki()), kSimVcek, kNow - std::chrono::hours(48));
  ASSERT_FALSE(early);
  EXPECT_EQ(early.error().code, "vek_not_yet_valid");
  auto late = v.verify(report_of(pki()), kSimVcek, kNow + std::chrono::hours(24 * 365 * 11));
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, "vek_expired");
}

TEST(SnpSimMutations, ChipIdMismatch) {
  // 9. a VCEK is issued for one chip: a report from another chip signed with it is refused
  esnp::Report r = report_of(pki());
  r.chip_id[0] ^= 0x01;
  EXPECT_EQ(code(verifier_with(sim_vendor()), resigned(r)), "chip_id_mismatch");
}

TEST(SnpSimMutations, ArkSignatureInvalid) {
  // 4. the configured ARK must be self-signed
  VendorChain chain = sim_vendor();
  chain.ark = with_broken_signature(chain.ark);
  EXPECT_EQ(code(verifier_with(chain), report_of(pki())), "ark_signature_invalid");
}

TEST(SnpSimMutations, AskSignatureInvalid) {
  // 5. the ASK must be signed by the ARK: a tampered one, and another vendor's
  VendorChain chain = sim_vendor();
  chain.ask = with_broken_signature(*chain.ask);
  EXPECT_EQ(code(verifier_with(chain), report_of(pki())), "ask_signature_invalid");
  chain = sim_vendor();
  chain.ask = foreign_pki().ask;
  EXPECT_EQ(code(verifier_with(chain), report_of(pki())), "ask_signature_invalid");
}

TEST(SnpSimMutations, VekSignatureInvalid) {
  // 6. a VEK signed by another ASK
  Vek foreign{VekType::kVcek, foreign_pki().vcek.der(), {}};
  EXPECT_EQ(code(verifier_with(sim_vendor()), report_of(foreign_pki()), foreign),
            "vek_signature_invalid");
}

TEST(SnpSimMutations, VekTypeMismatch) {
  // 2. SIGNING_KEY 1 says a VLEK signed the report, the certificate is a VCEK
  esnp::Report r = report_of(pki());
  r.flags = (r.flags & ~0x1cU) | (1U << 2);
  ASSERT_EQ(r.signing_key(), 1U);
  EXPECT_EQ(code(verifier_with(sim_vendor()), resigned(r)), "vek_type_mismatch");
}

TEST(SnpSimMutations, ProductMismatch) {
  // 3. CPUID says Milan, the VEK was issued by the Genoa ASK
  ASSERT_EQ(pki().platform.product, Product::kGenoa);
  esnp::Report r = report_of(pki());
  r.cpuid_fam_id = 0x19;
  r.cpuid_mod_id = 0x01;
  ASSERT_EQ(r.product_from_cpuid(), Product::kMilan);
  EXPECT_EQ(code(verifier_with(sim_vendor()), resigned(r)), "product_mismatch");
}

TEST(SnpSimMutations, UnsignedReport) {
  // 1. SIGNING_KEY 7: no VEK signed the report
  esnp::Report r = report_of(pki());
  r.flags |= 7U << 2;
  ASSERT_EQ(r.signing_key(), 7U);
  EXPECT_EQ(code(verifier_with(sim_vendor()), r), "report_unsigned");
}

// ---- VEK bundles in the directory VEK source

std::shared_ptr<const VekSource> directory_with(const coffer::testing::TempDir& dir,
                                                const std::string& name, const std::string& pem) {
  EXPECT_TRUE(write_file_atomic(dir.path() / name, as_bytes(pem)));
  return std::make_shared<DirectoryVekSource>(dir.path().string());
}

TEST(SnpVekBundle, DirectorySourceReadsTheVekOfABundle) {
  coffer::testing::TempDir dir;
  auto source = directory_with(dir, "vcek.pem", pki().vcek.pem() + pki().amd_vendor_chain_pem());
  auto vek = source->fetch(pki().platform.product, report_of(pki()));
  ASSERT_TRUE(vek) << vek.error().to_string();
  EXPECT_EQ(vek->type, VekType::kVcek);
  EXPECT_EQ(vek->der, pki().vcek.der());
  ASSERT_EQ(vek->intermediates.size(), 2u);
  EXPECT_EQ(vek->intermediates[0], pki().ask.der());
  // with the configured ARK and ASK
  EXPECT_EQ(code(verifier_with(sim_vendor(), source), report_of(pki()), std::nullopt), "ok");
}

TEST(SnpVekBundle, BundledAskIsUsedWhenOnlyTheArkIsConfigured) {
  coffer::testing::TempDir dir;
  auto source = directory_with(dir, "vcek.pem", pki().vcek.pem() + pki().amd_vendor_chain_pem());
  VendorChain ark_only{pki().ark, std::nullopt, std::nullopt};
  auto v = verifier_with(ark_only, source);
  auto r = v.verify(report_of(pki()), std::nullopt, kNow);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->vek_type, VekType::kVcek);
  // cached: the second call takes the same (verified) ASK
  EXPECT_EQ(code(v, report_of(pki()), std::nullopt), "ok");
  // without a bundle there is no ASK
  EXPECT_EQ(code(verifier_with(ark_only), report_of(pki())), "ask_unavailable");
}

TEST(SnpVekBundle, TheBundlesArkDoesNotAnchorTheChain) {
  // an attacker's VEK, ASK and ARK bundled together: the configured ARK did not sign that ASK
  coffer::testing::TempDir dir;
  const sim::SimPki& evil = foreign_pki();
  auto source = directory_with(dir, "vcek.pem", evil.vcek.pem() + evil.amd_vendor_chain_pem());
  esnp::Report r = report_of(evil);
  EXPECT_EQ(code(verifier_with({pki().ark, std::nullopt, std::nullopt}, source), r, std::nullopt),
            "ask_signature_invalid");
  // with the ASK configured, the VEK must be signed by it
  EXPECT_EQ(code(verifier_with(sim_vendor(), source), r, std::nullopt), "vek_signature_invalid");
}

TEST(SnpVekBundle, ABundleMustStartWithTheVek) {
  coffer::testing::TempDir dir;
  auto source = directory_with(dir, "chain.pem", pki().amd_vendor_chain_pem() + pki().vcek.pem());
  auto vek = source->fetch(pki().platform.product, report_of(pki()));
  ASSERT_FALSE(vek);
  EXPECT_EQ(vek.error().code, "vek_unavailable");
}

}  // namespace
}  // namespace coffer::verifier::snp
