// Altered copies of real quotes and a constructed PKI (test root -> PCK CA -> PCK, with a CRL
// that revokes the PCK), each asserting the exact error of the step that must catch it.
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <gtest/gtest.h>

#include "core/file.h"
#include "core/test/evidence_files.h"
#include "crypto/digest.h"
#include "crypto/ossl.h"
#include "evidence/tdx/ccel.h"
#include "verifier/dcap/dcap_verifier.h"
#include "verifier/tdx/tdx_verifier.h"

namespace coffer::verifier::dcap {
namespace {

namespace tdx = evidence::tdx;
using crypto::ossl::X509CrlPtr;
using crypto::ossl::X509Ptr;

const std::string kEvidence = std::string(COFFER_SOURCE_DIR) + "/testdata/evidence/";
TimePoint at(const char* t) { return *parse_rfc3339(t); }
Bytes load(const std::string& rel) { return coffer::testing::evidence_bytes(rel); }

DcapVerifier go_tdx_guest_verifier() {
  return DcapVerifier::with_intel_root(std::make_shared<DirectoryCollateralSource>(
      DirectoryCollateralSource::go_tdx_guest_layout(kEvidence + "tdx/go-tdx-guest")));
}

std::string code_of(const DcapVerifier& v, const Bytes& raw, TimePoint now) {
  auto q = tdx::parse_quote(raw);
  if (!q) return q.error().code;
  auto r = v.verify_tdx(*q, now);
  return r ? "ok" : r.error().code;
}

// Replaces a base64 character of the embedded PEM with another valid one.
Bytes swap_base64(Bytes raw, std::size_t offset) {
  raw[offset] = raw[offset] == 'A' ? 'B' : 'A';
  return raw;
}

const TimePoint kSprTime = at("2023-07-01T01:00:00Z");

TEST(DcapMutations, ReadmeListOnSprE4) {
  // SPR_E4 has no TCB level in this collateral, so verify up to the signatures (chain only).
  DcapVerifier v = DcapVerifier::with_intel_root(nullptr);
  Bytes raw = load("tdx/go-tdx-guest/tdx_prod_quote_SPR_E4.dat");
  ASSERT_EQ(code_of(v, raw, kSprTime), "ok");
  auto set = [&](std::size_t off, std::uint8_t value) {
    Bytes m = raw;
    m[off] = value;
    return m;
  };
  EXPECT_EQ(code_of(v, set(0x00, 3), kSprTime), "quote_unsupported_version");
  EXPECT_EQ(code_of(v, set(0x278, 0x10), kSprTime), "quote_signature_data_size_mismatch");
  EXPECT_EQ(code_of(v, set(0x1E, 0x32), kSprTime), "quote_signature_invalid");
  EXPECT_EQ(code_of(v, set(0x3C, 0x32), kSprTime), "quote_signature_invalid");
  EXPECT_EQ(code_of(v, swap_base64(raw, 0xB77), kSprTime), "pck_signature_invalid");
  EXPECT_EQ(code_of(v, swap_base64(raw, 0xF5F), kSprTime), "intermediate_signature_invalid");
  EXPECT_EQ(code_of(v, swap_base64(raw, 0x1329), kSprTime), "root_signature_invalid");
  EXPECT_EQ(code_of(v, set(0x1343, 'x'), kSprTime), "pck_chain_invalid");
  // the same mutations with full collateral fail at the same step
  EXPECT_EQ(code_of(go_tdx_guest_verifier(), set(0x1E, 0x32), kSprTime), "quote_signature_invalid");
}

TEST(DcapMutations, FlippingSignedRegionBytesIsRejected) {
  DcapVerifier v = go_tdx_guest_verifier();
  Bytes raw = load("tdx/trustee/tdx_quote_4.dat");
  ASSERT_EQ(code_of(v, raw, kSprTime), "ok");
  for (std::size_t i = 0; i < 0x278; i += 7) {
    Bytes m = raw;
    m[i] ^= 0x01;
    std::string code = code_of(v, m, kSprTime);
    EXPECT_NE(code, "ok") << i;
    if (i >= 0x30) {
      EXPECT_EQ(code, "quote_signature_invalid") << i;
    }
  }
}

TEST(DcapMutations, QeReportAndBindingTampering) {
  DcapVerifier v = DcapVerifier::with_intel_root(nullptr);
  Bytes raw = load("tdx/trustee/tdx_quote_4.dat");
  Bytes m = raw;
  m[0x302 + 64] ^= 1;  // QE report MRENCLAVE
  EXPECT_EQ(code_of(v, m, kSprTime), "qe_report_signature_invalid");
  m = raw;
  m[0x2BC] ^= 1;  // attestation key: no longer bound by the QE report
  EXPECT_EQ(code_of(v, m, kSprTime), "qe_report_data_mismatch");
  m = raw;
  m[0x27C] ^= 1;  // quote signature
  EXPECT_EQ(code_of(v, m, kSprTime), "quote_signature_invalid");
}

// The verifier caches a PCK leaf verified under its intermediate and the attestation key a verified
// QE report vouches for, keyed by their exact bytes: once the genuine quote warmed those caches,
// altered copies must still fail at the same step.
TEST(DcapMutations, WarmCachesRejectTheSameTampering) {
  DcapVerifier v = DcapVerifier::with_intel_root(nullptr);
  Bytes raw = load("tdx/go-tdx-guest/tdx_prod_quote_SPR_E4.dat");
  ASSERT_EQ(code_of(v, raw, kSprTime), "ok");
  ASSERT_EQ(code_of(v, raw, kSprTime), "ok");
  EXPECT_EQ(code_of(v, swap_base64(raw, 0xB77), kSprTime), "pck_signature_invalid");
  Bytes quote4 = load("tdx/trustee/tdx_quote_4.dat");
  ASSERT_EQ(code_of(v, quote4, kSprTime), "ok");
  Bytes m = quote4;
  m[0x302 + 64] ^= 1;  // QE report MRENCLAVE
  EXPECT_EQ(code_of(v, m, kSprTime), "qe_report_signature_invalid");
  m = quote4;
  m[0x302 + 384] ^= 1;  // QE report signature
  EXPECT_EQ(code_of(v, m, kSprTime), "qe_report_signature_invalid");
  m = quote4;
  m[0x2BC] ^= 1;  // attestation key
  EXPECT_EQ(code_of(v, m, kSprTime), "qe_report_data_mismatch");
  m = quote4;
  m[0x4C4] ^= 1;  // QE authentication data
  EXPECT_EQ(code_of(v, m, kSprTime), "qe_report_data_mismatch");
  m = quote4;
  m[0x27C] ^= 1;  // quote signature
  EXPECT_EQ(code_of(v, m, kSprTime), "quote_signature_invalid");
  EXPECT_EQ(code_of(v, quote4, kSprTime), "ok");
  EXPECT_EQ(v.cache_sizes().pck_leaves, 2u);
}

TEST(DcapMutations, WrongTrustAnchor) {
  auto amd = crypto::Certificate::chain_from_pem(
      coffer::testing::evidence_text("snp/amd_roots/trustee/milan_ask_ark_asvk.pem"));
  DcapVerifier v({(*amd)[1]}, nullptr);
  EXPECT_EQ(code_of(v, load("tdx/trustee/tdx_quote_4.dat"), kSprTime), "untrusted_root");
}

TEST(DcapMutations, ExpiredAndTamperedCollateral) {
  auto dir = kEvidence + "tdx/dcap-qvl/tdx_quote_collateral.split";
  Bytes raw = load("tdx/dcap-qvl/tdx_quote");
  auto files = DirectoryCollateralSource::split_layout(dir);
  DcapVerifier strict({*crypto::Certificate::from_der(load("intel_roots/Intel_SGX_Root_CA.der"))},
                      std::make_shared<DirectoryCollateralSource>(files));
  std::string late = code_of(strict, raw, at("2025-09-01T00:00:00Z"));
  EXPECT_TRUE(late == "pck_crl_expired" || late == "root_ca_crl_expired" ||
              late == "tcb_info_expired")
      << late;
  // TCB info alone expired: drop the CRLs
  auto no_crl = files;
  no_crl.pck_crl.clear();
  no_crl.root_ca_crl.clear();
  DcapVerifier tcb_only =
      DcapVerifier::with_intel_root(std::make_shared<DirectoryCollateralSource>(no_crl));
  EXPECT_EQ(code_of(tcb_only, raw, at("2025-07-20T00:00:00Z")), "tcb_info_expired");
  // a tampered TCB info signature (one body byte changed, still valid JSON)
  Collateral c = *DirectoryCollateralSource(files).fetch({});
  auto pos = c.tcb_info.find("\"UpToDate\"");
  ASSERT_NE(pos, std::string::npos);
  c.tcb_info.replace(pos, 10, "\"OutOfDate\"");
  auto q = tdx::parse_quote(raw);
  DcapVerifier::QuoteView view;
  view.signed_region = tdx::serialize_signed_region(*q);
  view.header = &q->header;
  view.signature = &q->signature_data;
  view.tdx = TdxTcbInput{q->body.tee_tcb_svn, q->body.mrsigner_seam, q->body.seam_attributes};
  EXPECT_EQ(strict.verify(view, &c, at("2025-07-01T00:00:00Z")).error().code,
            "tcb_info_signature_invalid");
  // collateral for another FMSPC
  Collateral other = *DirectoryCollateralSource(DirectoryCollateralSource::go_tdx_guest_layout(
                                                    kEvidence + "tdx/go-tdx-guest"))
                          .fetch({});
  other.pck_crl.reset();
  other.root_ca_crl.reset();
  DcapVerifier lenient = DcapVerifier::with_intel_root(nullptr, {.allow_expired_collateral = true});
  EXPECT_EQ(lenient.verify(view, &other, at("2025-07-01T00:00:00Z")).error().code,
            "tcb_signing_cert_expired");
}

// ---- A constructed PKI: test root -> "PCK CA" -> PCK (with a real PCK's SGX extensions).

X509Ptr make_cert(const crypto::Key& subject_key, const std::string& cn, X509* issuer,
                  const crypto::Key& issuer_key, long serial, bool ca,
                  X509_EXTENSION* sgx_ext = nullptr) {
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600L * 24 * 365 * 40);
  X509_set_pubkey(cert.get(), static_cast<EVP_PKEY*>(subject_key.native_handle()));
  if (ca) {
    X509_EXTENSION* bc =
        X509V3_EXT_conf_nid(nullptr, nullptr, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(cert.get(), bc, -1);
    X509_EXTENSION_free(bc);
  }
  if (sgx_ext) X509_add_ext(cert.get(), sgx_ext, -1);
  X509_sign(cert.get(), static_cast<EVP_PKEY*>(issuer_key.native_handle()), EVP_sha256());
  return cert;
}

std::string pem_of(X509* cert) {
  auto c = crypto::Certificate::from_der([&] {
    unsigned char* der = nullptr;
    int n = i2d_X509(cert, &der);
    Bytes b(der, der + n);
    OPENSSL_free(der);
    return b;
  }());
  return c->pem();
}

Bytes revoking_crl(X509* issuer, const crypto::Key& issuer_key, long revoked_serial) {
  X509CrlPtr crl(X509_CRL_new());
  X509_CRL_set_version(crl.get(), 1);
  X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer));
  crypto::ossl::Deleter<ASN1_TIME, ASN1_TIME_free> free_time;
  ASN1_TIME* now = ASN1_TIME_adj(nullptr, time(nullptr), -1, 0);
  ASN1_TIME* next = ASN1_TIME_adj(nullptr, time(nullptr), 30, 0);
  X509_CRL_set1_lastUpdate(crl.get(), now);
  X509_CRL_set1_nextUpdate(crl.get(), next);
  X509_REVOKED* rev = X509_REVOKED_new();
  ASN1_INTEGER* serial = ASN1_INTEGER_new();
  ASN1_INTEGER_set(serial, revoked_serial);
  X509_REVOKED_set_serialNumber(rev, serial);
  X509_REVOKED_set_revocationDate(rev, now);
  X509_CRL_add0_revoked(crl.get(), rev);
  ASN1_INTEGER_free(serial);
  free_time(now);
  free_time(next);
  X509_CRL_sort(crl.get());
  X509_CRL_sign(crl.get(), static_cast<EVP_PKEY*>(issuer_key.native_handle()), EVP_sha256());
  unsigned char* der = nullptr;
  int n = i2d_X509_CRL(crl.get(), &der);
  Bytes out(der, der + n);
  OPENSSL_free(der);
  return out;
}

struct TestPki {
  crypto::Key root_key = *crypto::Key::generate(crypto::KeyType::kEcP256);
  crypto::Key ca_key = *crypto::Key::generate(crypto::KeyType::kEcP256);
  crypto::Key pck_key = *crypto::Key::generate(crypto::KeyType::kEcP256);
  crypto::Key att_key = *crypto::Key::generate(crypto::KeyType::kEcP256);
  X509Ptr root, ca, pck;
  static constexpr long kPckSerial = 0x1234;

  explicit TestPki(const crypto::Certificate& real_pck) {
    auto* real = static_cast<X509*>(real_pck.native_handle());
    ASN1_OBJECT* oid = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
    X509_EXTENSION* sgx_ext = X509_get_ext(real, X509_get_ext_by_OBJ(real, oid, -1));
    ASN1_OBJECT_free(oid);
    root = make_cert(root_key, "Test SGX Root CA", nullptr, root_key, 1, true);
    ca = make_cert(ca_key, "Test SGX PCK Platform CA", root.get(), root_key, 2, true);
    pck = make_cert(pck_key, "Test SGX PCK Certificate", ca.get(), ca_key, kPckSerial, false,
                    sgx_ext);
  }

  // Re-signs a real quote with this PKI: QE report by the PCK key, quote by a new attestation key.
  Bytes resign(tdx::Quote q) const {
    auto point = *att_key.ec_point();
    auto& sig = q.signature_data;
    std::copy(point.x.begin(), point.x.end(), sig.attestation_key.begin());
    std::copy(point.y.begin(), point.y.end(), sig.attestation_key.begin() + 32);
    Bytes bound(sig.attestation_key.begin(), sig.attestation_key.end());
    bound.insert(bound.end(), sig.qe.qe_auth_data.begin(), sig.qe.qe_auth_data.end());
    Bytes rd = crypto::sha256(bound);
    rd.resize(64, 0);
    std::copy(rd.begin(), rd.end(), sig.qe.qe_report.report_data.begin());
    crypto::SignatureParams raw{crypto::DigestAlg::kSha256, crypto::SignatureFormat::kRaw};
    Bytes qe_sig = *pck_key.sign(evidence::sgx::serialize_enclave_report(sig.qe.qe_report), raw);
    std::copy(qe_sig.begin(), qe_sig.end(), sig.qe.qe_report_signature.begin());
    sig.qe.certification_data = to_bytes(pem_of(pck.get()) + pem_of(ca.get()) + pem_of(root.get()));
    Bytes quote_sig = *att_key.sign(tdx::serialize_signed_region(q), raw);
    std::copy(quote_sig.begin(), quote_sig.end(), sig.signature.begin());
    return tdx::serialize_quote(q);
  }
  crypto::Certificate root_cert() const {
    return *crypto::Certificate::from_pem(pem_of(root.get()));
  }
};

TEST(DcapConstructedPki, ChainOnlyAcceptsAndCrlRevokes) {
  Bytes real = load("tdx/trustee/tdx_quote_4.dat");
  auto q = tdx::parse_quote(real);
  auto chain =
      crypto::Certificate::chain_from_pem(to_string(q->signature_data.qe.certification_data));
  TestPki pki(chain->front());
  Bytes quote = pki.resign(*q);
  TimePoint now = std::chrono::system_clock::now();

  DcapVerifier chain_only({pki.root_cert()}, nullptr);
  EXPECT_EQ(code_of(chain_only, quote, now), "ok");
  // the Intel root does not anchor the test PKI
  EXPECT_EQ(code_of(DcapVerifier::with_intel_root(nullptr), quote, now), "untrusted_root");

  auto parsed = tdx::parse_quote(quote);
  DcapVerifier::QuoteView view;
  view.signed_region = tdx::serialize_signed_region(*parsed);
  view.header = &parsed->header;
  view.signature = &parsed->signature_data;
  Collateral c;
  c.pck_crl = revoking_crl(pki.ca.get(), pki.ca_key, TestPki::kPckSerial);
  EXPECT_EQ(chain_only.verify(view, &c, now).error().code, "pck_revoked");
  // a CRL listing another serial passes the CRL step (and stops at the missing TCB chain)
  c.pck_crl = revoking_crl(pki.ca.get(), pki.ca_key, 99);
  EXPECT_EQ(chain_only.verify(view, &c, now).error().code, "tcb_signing_chain_invalid");
  // a CRL signed by another key is rejected
  c.pck_crl = revoking_crl(pki.ca.get(), pki.root_key, 99);
  EXPECT_EQ(chain_only.verify(view, &c, now).error().code, "pck_crl_signature_invalid");
  // the root CA CRL revoking the PCK CA
  Collateral r;
  r.root_ca_crl = revoking_crl(pki.root.get(), pki.root_key, 2);
  EXPECT_EQ(chain_only.verify(view, &r, now).error().code, "intermediate_revoked");
}

TEST(DcapConstructedPki, ConfiguredNonIntelRootIsReportedAsSimulated) {
  auto q = tdx::parse_quote(load("tdx/trustee/tdx_quote_4.dat"));
  auto chain =
      crypto::Certificate::chain_from_pem(to_string(q->signature_data.qe.certification_data));
  TestPki pki(chain->front());
  Bytes quote = pki.resign(*q);
  auto engine = std::make_shared<const DcapVerifier>(
      std::vector<crypto::Certificate>{pki.root_cert()}, nullptr);
  verifier::tdx::TdxVerifier v(engine);
  Json evidence = {{"quote", base64_encode(quote)}};
  auto claims = v.verify(
      {evidence, ByteView(q->body.report_data), std::nullopt, std::chrono::system_clock::now()});
  ASSERT_TRUE(claims) << claims.error().to_string();
  EXPECT_EQ((*claims)["tee_root"], "simulated");
}

// A quote whose RTMRs are what CCEL_data replays to (re-signed by the test PKI): the log is
// accepted and becomes uefi_event_logs; any change to it is eventlog_rtmr_mismatch.
TEST(DcapConstructedPki, EventLogReplayingToTheQuoteRtmrs) {
  auto q = tdx::parse_quote(load("tdx/trustee/tdx_quote_4.dat"));
  auto chain =
      crypto::Certificate::chain_from_pem(to_string(q->signature_data.qe.certification_data));
  TestPki pki(chain->front());
  Bytes ccel = load("tdx/trustee/CCEL_data");
  auto log = *evidence::tdx::parse_event_log(ccel);
  q->body.rtmr = *evidence::tdx::replay_rtmrs(log);
  Bytes quote = pki.resign(*q);
  verifier::tdx::TdxVerifier v(std::make_shared<const DcapVerifier>(
      std::vector<crypto::Certificate>{pki.root_cert()}, nullptr));
  TimePoint now = std::chrono::system_clock::now();
  auto verify_with = [&](const Bytes& log_bytes) {
    Json evidence = {{"quote", base64_encode(quote)}, {"cc_eventlog", base64_encode(log_bytes)}};
    return v.verify({evidence, ByteView(q->body.report_data), std::nullopt, now});
  };
  auto claims = verify_with(ccel);
  ASSERT_TRUE(claims) << claims.error().to_string();
  EXPECT_EQ((*claims)["uefi_event_logs"].size(), 5u);
  EXPECT_EQ((*claims)["uefi_event_logs"][4]["details"]["string"],
            "td_payload_info root=/dev/vda1 console=hvc0 rw");

  auto changed = log;
  changed.events[4].digests[0].digest[0] ^= 1;  // another kernel command line
  EXPECT_EQ(verify_with(evidence::tdx::serialize_event_log(changed)).error().code,
            "eventlog_rtmr_mismatch");
  changed = log;
  changed.events.pop_back();  // an event hidden from the verifier
  EXPECT_EQ(verify_with(evidence::tdx::serialize_event_log(changed)).error().code,
            "eventlog_rtmr_mismatch");
  changed = log;
  changed.events[1].mr_index = 3;  // moved to another register
  EXPECT_EQ(verify_with(evidence::tdx::serialize_event_log(changed)).error().code,
            "eventlog_rtmr_mismatch");
  EXPECT_EQ(verify_with(Bytes{1, 2, 3}).error().code, "eventlog_truncated");
}

}  // namespace
}  // namespace coffer::verifier::dcap
