// DCAP checks that real evidence cannot reach, with the simulated Intel-like PKI (sim root CA ->
// PCK Platform CA -> PCK -> QE attestation key; TCB signing certificate; CRLs): each altered copy
// of the collateral is signed again by the sim TCB signing key (or the altered quote again by the
// attestation key), so that it reaches the step meant to catch it, and the exact error is
// asserted with a fresh verifier and again with caches warmed by the genuine quote.
#include <gtest/gtest.h>

#include <functional>

#include "core/json.h"
#include "crypto/x509_issue.h"
#include "evidence/sim/sim_pki.h"
#include "evidence/sim/sim_tee.h"
#include "evidence/sim/test/sim_test_util.h"
#include "evidence/tdx/quote.h"
#include "verifier/dcap/dcap_verifier.h"

namespace coffer::verifier::dcap {
namespace {

namespace sim = evidence::sim;
namespace tdx = evidence::tdx;
using std::chrono::hours;

const sim::SimPki& pki() { return sim::testing::shared_pki(); }

const TimePoint kNow = std::chrono::system_clock::now();

tdx::Quote sim_quote() {
  sim::TdMeasurements td;
  td.mr_td.fill(0x11);
  auto raw = sim::make_tdx_quote(pki(), td, Bytes(64, 0x5a));
  if (!raw) std::abort();
  return *tdx::parse_quote(*raw);
}

// The quote signed again by the sim QE attestation key after a change to its signed region.
tdx::Quote resigned(tdx::Quote q) {
  Bytes sig = *pki().attestation_key.sign(
      tdx::serialize_signed_region(q), {crypto::DigestAlg::kSha256, crypto::SignatureFormat::kRaw});
  std::copy(sig.begin(), sig.end(), q.signature_data.signature.begin());
  return q;
}

Collateral sim_collateral() {
  Collateral c;
  c.tcb_info = pki().tcb_info_json;
  c.tcb_info_issuer_chain = pki().tcb_signing_chain_pem();
  c.qe_identity = pki().qe_identity_json;
  c.qe_identity_issuer_chain = pki().tcb_signing_chain_pem();
  c.pck_crl = pki().pck_crl;
  c.pck_crl_issuer_chain = pki().pck_crl_chain_pem();
  c.root_ca_crl = pki().root_ca_crl;
  return c;
}

// {"<member>": <body>, "signature": "<hex>"} with `change` applied to the body and the body
// signed again by the sim TCB signing key, as Intel PCS signs collateral.
std::string altered(const std::string& doc, const char* member,
                    const std::function<void(Json&)>& change) {
  Json body = (*parse_json(doc))[member];
  change(body);
  std::string text = body.dump();
  Bytes sig = *pki().tcb_signing_key.sign(
      as_bytes(text), {crypto::DigestAlg::kSha256, crypto::SignatureFormat::kRaw});
  return "{\"" + std::string(member) + "\":" + text + ",\"signature\":\"" + hex_encode(sig) + "\"}";
}

std::string altered_tcb_info(const std::function<void(Json&)>& change) {
  return altered(pki().tcb_info_json, "tcbInfo", change);
}
std::string altered_qe_identity(const std::function<void(Json&)>& change) {
  return altered(pki().qe_identity_json, "enclaveIdentity", change);
}

DcapVerifier sim_verifier() { return DcapVerifier({pki().root_ca}, nullptr); }

std::string code_with(const DcapVerifier& v, const tdx::Quote& q, const Collateral& c,
                      TimePoint now = kNow) {
  DcapVerifier::QuoteView view;
  view.tee = TeeKind::kTdx;
  view.signed_region = tdx::serialize_signed_region(q);
  view.header = &q.header;
  view.signature = &q.signature_data;
  view.tdx = TdxTcbInput{q.body.tee_tcb_svn, q.body.mrsigner_seam, q.body.seam_attributes};
  auto r = v.verify(view, &c, now);
  return r ? "ok" : r.error().code;
}

// The code of a fresh verifier, checked to be the same with caches the genuine quote warmed.
std::string code(const Collateral& c, const tdx::Quote& q = sim_quote()) {
  static const DcapVerifier warm = [] {
    DcapVerifier v = sim_verifier();
    if (code_with(v, sim_quote(), sim_collateral()) != "ok") std::abort();
    return v;
  }();
  std::string fresh = code_with(sim_verifier(), q, c);
  EXPECT_EQ(code_with(warm, q, c), fresh) << "warm caches change the outcome";
  return fresh;
}

TEST(DcapSimMutations, GenuineQuoteAndCollateralVerify) {
  EXPECT_EQ(code(sim_collateral()), "ok");
  EXPECT_EQ(code(sim_collateral(), resigned(sim_quote())), "ok");
  Collateral c = sim_collateral();
  c.tcb_info = altered_tcb_info([](Json&) {});
  EXPECT_EQ(code(c), "ok");  // re-signing alone changes nothing
}

TEST(DcapSimMutations, CertificateValidityWindows) {
  // 2. before the PCK chain's notBefore, and after its notAfter
  EXPECT_EQ(code_with(sim_verifier(), sim_quote(), sim_collateral(), kNow - hours(48)),
            "pck_not_yet_valid");
  EXPECT_EQ(code_with(sim_verifier(), sim_quote(), sim_collateral(), kNow + hours(24 * 365 * 11)),
            "pck_expired");
}

TEST(DcapSimMutations, UnsupportedQeVendor) {
  // 1. only Intel's QE produces DCAP quotes
  tdx::Quote q = sim_quote();
  q.header.qe_vendor_id[0] ^= 0x01;
  EXPECT_EQ(code(sim_collateral(), resigned(q)), "quote_unsupported_qe_vendor");
}

TEST(DcapSimMutations, PckCrlIssuerMismatch) {
  // 3. a PCK CRL issued (and signed) by the root, not by the PCK's issuer
  Collateral c = sim_collateral();
  crypto::CrlSpec spec{.this_update = kNow - hours(1), .next_update = kNow + hours(24)};
  c.pck_crl = *crypto::issue_crl(spec, pki().root_ca, pki().root_key);
  EXPECT_EQ(code(c), "pck_crl_issuer_mismatch");
}

TEST(DcapSimMutations, TcbSigningCertificateRevoked) {
  // 4. the root CA CRL lists the TCB signing certificate
  Collateral c = sim_collateral();
  crypto::CrlSpec spec{.this_update = kNow - hours(1),
                       .next_update = kNow + hours(24),
                       .revoked_serials = {pki().tcb_signing.serial()}};
  c.root_ca_crl = *crypto::issue_crl(spec, pki().root_ca, pki().root_key);
  EXPECT_EQ(code(c), "tcb_signing_cert_revoked");
}

TEST(DcapSimMutations, TcbInfoForAnotherFmspcOrPce) {
  // 4. TCB info for another platform
  Collateral c = sim_collateral();
  c.tcb_info = altered_tcb_info([](Json& b) { b["fmspc"] = "00906ED50001"; });
  EXPECT_EQ(code(c), "tcb_info_mismatch");
  c.tcb_info = altered_tcb_info([](Json& b) { b["pceId"] = "0100"; });
  EXPECT_EQ(code(c), "tcb_info_mismatch");
  // SGX TCB info for a TDX quote
  c.tcb_info = altered_tcb_info([](Json& b) { b["id"] = "SGX"; });
  EXPECT_EQ(code(c), "tcb_info_mismatch");
}

TEST(DcapSimMutations, TcbInfoNotYetValid) {
  // 4. TCB info issued after the verification time
  Collateral c = sim_collateral();
  c.tcb_info = altered_tcb_info([](Json& b) {
    b["issueDate"] = format_rfc3339(std::chrono::floor<std::chrono::seconds>(kNow + hours(2)));
  });
  EXPECT_EQ(code(c), "tcb_info_not_yet_valid");
}

TEST(DcapSimMutations, QeIdentityMismatch) {
  // 9. the QE report's MRSIGNER is not the one the QE identity names
  Collateral c = sim_collateral();
  c.qe_identity = altered_qe_identity([](Json& b) {
    std::string m = b["mrsigner"].get<std::string>();
    m[0] = m[0] == '0' ? '1' : '0';
    b["mrsigner"] = m;
  });
  EXPECT_EQ(code(c), "qe_identity_mismatch");
  // ISVPRODID
  c.qe_identity = altered_qe_identity([](Json& b) { b["isvprodid"] = 3; });
  EXPECT_EQ(code(c), "qe_identity_mismatch");
  // 5. the identity of the SGX QE for a TDX quote
  c.qe_identity = altered_qe_identity([](Json& b) { b["id"] = "QE"; });
  EXPECT_EQ(code(c), "qe_identity_mismatch");
}

TEST(DcapSimMutations, QeTcbLevelNotFound) {
  // 9. the QE's ISVSVN is below every level of the QE identity
  Collateral c = sim_collateral();
  c.qe_identity = altered_qe_identity(
      [](Json& b) { b["tcbLevels"][0]["tcb"]["isvsvn"] = pki().platform.qe_isv_svn + 1; });
  EXPECT_EQ(code(c), "qe_tcb_level_not_found");
}

TEST(DcapSimMutations, TdxModuleMismatch) {
  // 10. the TDX module identity names another signer
  Collateral c = sim_collateral();
  c.tcb_info = altered_tcb_info(
      [](Json& b) { b["tdxModuleIdentities"][0]["mrsigner"] = std::string(95, '0') + "1"; });
  EXPECT_EQ(code(c), "tdx_module_mismatch");
  // no identity for the quote's module major version (TDX_01)
  c.tcb_info = altered_tcb_info([](Json& b) { b["tdxModuleIdentities"][0]["id"] = "TDX_02"; });
  EXPECT_EQ(code(c), "tdx_module_mismatch");
  // SEAMATTRIBUTES outside the identity's mask
  c.tcb_info = altered_tcb_info(
      [](Json& b) { b["tdxModuleIdentities"][0]["attributes"] = "0100000000000000"; });
  EXPECT_EQ(code(c), "tdx_module_mismatch");
}

}  // namespace
}  // namespace coffer::verifier::dcap
