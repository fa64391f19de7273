// AMD's CRL in the SNP chain verifier, with the simulated AMD PKI (test ARK -> ASK -> VCEK) and
// CRLs issued by the test ARK as KDS serves AMD's (DER, RSASSA-PSS SHA-384): each case asserts
// the exact error.
#include <gtest/gtest.h>

#include "core/file.h"
#include "core/test/temp_dir.h"
#include "crypto/x509_issue.h"
#include "evidence/sim/sim_pki.h"
#include "evidence/sim/sim_tee.h"
#include "evidence/sim/test/sim_test_util.h"
#include "net/http_server.h"
#include "verifier/snp/kds_source.h"
#include "verifier/snp/vek_chain.h"

namespace coffer::verifier::snp {
namespace {

namespace sim = evidence::sim;
using std::chrono::hours;

const sim::SimPki& pki() { return sim::testing::shared_pki(); }

// The CRL source of a test: whatever bytes it holds, or none.
class FixedCrlSource final : public AmdCrlSource {
 public:
  explicit FixedCrlSource(std::optional<Bytes> crl) : crl_(std::move(crl)) {}
  Result<Bytes> fetch_crl(Product) const override {
    if (!crl_) return make_error("crl_unavailable", "none");
    return *crl_;
  }
  void set(Bytes crl) { crl_ = std::move(crl); }

 private:
  std::optional<Bytes> crl_;
};

struct Fixture {
  TimePoint now = std::chrono::system_clock::now();
  evidence::snp::Report report = [] {
    auto raw = sim::make_snp_report(pki(), {}, Bytes(64, 0x42));
    if (!raw) std::abort();
    return *evidence::snp::parse_report(*raw);
  }();
  Vek vek{VekType::kVcek, pki().vcek.der()};

  SnpChainVerifier verifier(std::shared_ptr<const AmdCrlSource> crls) const {
    std::map<Product, VendorChain> vendors{
        {pki().platform.product, *vendor_chain_from_pem(pki().amd_vendor_chain_pem())}};
    SnpChainVerifier::Options options;
    options.trust_configured_arks = true;
    options.crl_source = std::move(crls);
    return SnpChainVerifier(std::move(vendors), nullptr, options);
  }

  // A CRL as AMD issues it: by the ARK, RSASSA-PSS with SHA-384.
  Bytes crl(std::vector<Bytes> revoked, TimePoint next_update,
            const crypto::Key* key = nullptr) const {
    crypto::CrlSpec spec{.this_update = now - hours(1),
                         .next_update = next_update,
                         .revoked_serials = std::move(revoked),
                         .digest = crypto::DigestAlg::kSha384,
                         .rsa_pss = true};
    return *crypto::issue_crl(spec, pki().ark, key ? *key : pki().ark_key);
  }

  std::string code(const SnpChainVerifier& v) const {
    auto r = v.verify(report, vek, now);
    return r ? "ok" : r.error().code;
  }
};

TEST(SnpCrl, WithoutACrlRevocationIsNotChecked) {
  Fixture f;
  auto r =
      f.verifier(std::make_shared<FixedCrlSource>(std::nullopt)).verify(f.report, f.vek, f.now);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_FALSE(r->crl_checked);
  r = f.verifier(nullptr).verify(f.report, f.vek, f.now);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_FALSE(r->crl_checked);
}

// KDS without the product's CRL (404): the verification fails; revocation is never silently
// skipped because KDS has no CRL.
TEST(SnpCrl, KdsAnswering404ForTheCrlFailsTheVerification) {
  net::HttpServerConfig config;
  config.sockets = {"127.0.0.1:0"};
  net::HttpServer server(config,
                         [](const net::Request&) { return net::Response::text(404, "not found"); });
  ASSERT_TRUE(server.start());
  KdsOptions options;
  options.base_url = "http://127.0.0.1:" + std::to_string(server.bound_ports()[0]);
  Fixture f;
  auto r = f.verifier(std::make_shared<KdsVekSource>(options)).verify(f.report, f.vek, f.now);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "amd_crl_not_found");
  EXPECT_EQ(r.error().message, "KDS answered 404 for the Genoa CRL");
  server.stop();
}

TEST(SnpCrl, CurrentCrlNotListingTheAskAccepts) {
  Fixture f;
  Bytes other_serial = {0x01, 0x02, 0x03};
  auto v = f.verifier(std::make_shared<FixedCrlSource>(f.crl({other_serial}, f.now + hours(24))));
  auto r = v.verify(f.report, f.vek, f.now);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_TRUE(r->crl_checked);
}

TEST(SnpCrl, RevokedAskIsRefusedEvenWithTheChainCached) {
  Fixture f;
  auto source = std::make_shared<FixedCrlSource>(f.crl({}, f.now + hours(24)));
  auto v = f.verifier(source);
  ASSERT_EQ(f.code(v), "ok");
  ASSERT_EQ(v.cached_veks(), 1u);
  // AMD publishes a new CRL that revokes the ASK: the cached chain does not hide it
  source->set(f.crl({pki().ask.serial()}, f.now + hours(24)));
  EXPECT_EQ(f.code(v), "ask_revoked");
  // and a fresh verifier refuses it too
  EXPECT_EQ(f.code(f.verifier(source)), "ask_revoked");
}

TEST(SnpCrl, CrlWithABadSignatureIsRefused) {
  Fixture f;
  // issued in the ARK's name, signed with another key
  Bytes forged = f.crl({}, f.now + hours(24), &pki().ask_key);
  EXPECT_EQ(f.code(f.verifier(std::make_shared<FixedCrlSource>(forged))),
            "amd_crl_signature_invalid");
  // a genuine CRL with one signature byte changed
  Bytes tampered = f.crl({}, f.now + hours(24));
  tampered[tampered.size() - 5] ^= 0x01;
  EXPECT_EQ(f.code(f.verifier(std::make_shared<FixedCrlSource>(tampered))),
            "amd_crl_signature_invalid");
}

TEST(SnpCrl, ExpiredCrlIsRefusedAtEveryCall) {
  Fixture f;
  auto source = std::make_shared<FixedCrlSource>(f.crl({}, f.now + hours(1)));
  auto v = f.verifier(source);
  ASSERT_EQ(f.code(v), "ok");
  auto later = f.now + hours(2);
  auto r = v.verify(f.report, f.vek, later);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "amd_crl_expired");
  source->set(f.crl({}, f.now - hours(1)));
  EXPECT_EQ(f.code(f.verifier(source)), "amd_crl_expired");
}

TEST(SnpCrl, MalformedOrForeignCrlIsRefused) {
  Fixture f;
  EXPECT_EQ(f.code(f.verifier(std::make_shared<FixedCrlSource>(Bytes{0x30, 0x03, 0x02, 0x01}))),
            "amd_crl_invalid");
  // issued by the ASK, not the ARK
  crypto::CrlSpec spec{.this_update = f.now - hours(1), .next_update = f.now + hours(24)};
  Bytes by_ask = *crypto::issue_crl(spec, pki().ask, pki().ask_key);
  EXPECT_EQ(f.code(f.verifier(std::make_shared<FixedCrlSource>(by_ask))), "amd_crl_invalid");
}

TEST(SnpCrl, DirectoryCrlSourceReadsProductFiles) {
  Fixture f;
  coffer::testing::TempDir dir;
  auto source = std::make_shared<DirectoryCrlSource>(dir.path().string());
  auto missing = source->fetch_crl(Product::kGenoa);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, "crl_unavailable");
  std::string name = std::string(evidence::snp::product_name(pki().platform.product)) + ".crl";
  ASSERT_TRUE(write_file_atomic(dir.path() / name, f.crl({pki().ask.serial()}, f.now + hours(24))));
  EXPECT_EQ(f.code(f.verifier(source)), "ask_revoked");
}

}  // namespace
}  // namespace coffer::verifier::snp
