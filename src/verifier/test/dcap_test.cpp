#include <cstring>

#include <gtest/gtest.h>

#include "core/file.h"
#include "core/json.h"
#include "core/test/evidence_files.h"
#include "verifier/dcap/dcap_verifier.h"
#include "verifier/dcap/intel_root.h"

namespace coffer::verifier::dcap {
namespace {

namespace tdx = evidence::tdx;
namespace sgx = evidence::sgx;

const std::string kEvidence = std::string(COFFER_SOURCE_DIR) + "/testdata/evidence/";

TimePoint at(const char* t) { return *parse_rfc3339(t); }

Bytes load(const std::string& rel) {
  auto b = read_file(kEvidence + rel);
  EXPECT_TRUE(b) << rel;
  return b ? *b : Bytes{};
}

crypto::Certificate intel_root() {
  return *crypto::Certificate::from_pem(
      coffer::testing::evidence_text("intel_roots/Intel_SGX_Root_CA.pem"));
}

DcapVerifier offline(DirectoryCollateralSource::Files files, DcapOptions options = {}) {
  return DcapVerifier({intel_root()}, std::make_shared<DirectoryCollateralSource>(files), options);
}

DirectoryCollateralSource::Files split(const std::string& rel) {
  return DirectoryCollateralSource::split_layout(kEvidence + rel);
}

DirectoryCollateralSource::Files go_tdx_guest() {
  return DirectoryCollateralSource::go_tdx_guest_layout(kEvidence + "tdx/go-tdx-guest");
}

Result<DcapResult> verify_tdx(const DcapVerifier& v, ByteView raw, TimePoint now) {
  auto q = tdx::parse_quote(raw);
  if (!q) return std::unexpected(q.error());
  return v.verify_tdx(*q, now);
}

TEST(IntelRoot, EmbeddedConstantMatchesTheEvidenceRoot) {
  auto root = crypto::Certificate::from_pem(kIntelSgxRootCaPem);
  ASSERT_TRUE(root);
  EXPECT_EQ(root->der(), load("intel_roots/Intel_SGX_Root_CA.der"));
  EXPECT_EQ(hex_encode(root->sha256_fingerprint()), kIntelSgxRootCaSha256);
}

TEST(PckExtensions, ParsedFromRealPck) {
  auto q = tdx::parse_quote(load("tdx/trustee/tdx_quote_4.dat"));
  auto chain =
      crypto::Certificate::chain_from_pem(to_string(q->signature_data.qe.certification_data));
  ASSERT_TRUE(chain);
  auto ext = parse_pck_extensions(chain->front());
  ASSERT_TRUE(ext) << ext.error().to_string();
  EXPECT_EQ(hex_encode(ext->fmspc), "50806f000000");
  EXPECT_EQ(hex_encode(ext->pce_id), "0000");
  ASSERT_TRUE(ext->platform_instance_id);
  // DER order; Trustee's claims print it byte-reversed (see tdx_verifier.cpp)
  EXPECT_EQ(hex_encode(*ext->platform_instance_id), "021ac64d355ba904e2d5948d228d5482");
  EXPECT_EQ(parse_pck_extensions(chain->back()).error().code, "pck_extensions_invalid");
}

TEST(Collateral, RawMemberIsByteExact) {
  std::string text = R"({"a" : [1,{"x":"}"}] , "tcbInfo":{"k":"v\"}","n":[1,2]},"signature":"00"})";
  auto raw = raw_json_member(text, "tcbInfo");
  ASSERT_TRUE(raw);
  EXPECT_EQ(*raw, R"({"k":"v\"}","n":[1,2]})");
  EXPECT_FALSE(raw_json_member(text, "missing"));
  EXPECT_FALSE(raw_json_member("[1]", "a"));
}

// The scanner that finds the signed bytes reads member names as JSON does and refuses a repeat,
// and it answers only for a whole object.
TEST(Collateral, RawMemberRefusesRepeatedAndEscapedNames) {
  auto code = [](std::string_view text) {
    auto r = raw_json_member(text, "tcbInfo");
    return r ? "ok: " + std::string(*r) : r.error().code;
  };
  EXPECT_EQ(code(R"({"tcbInfo":{"a":1},"tcbInfo":{"a":2}})"), "bad_json");
  EXPECT_EQ(code(R"({"tcbInfo":{"a":1},"tcb\u0049nfo":{"a":2}})"), "bad_json");
  EXPECT_EQ(code(R"({"tcb\u0049nfo":{"a":2},"tcbInfo":{"a":1}})"), "bad_json");
  // a repeat of another member refuses the document too
  EXPECT_EQ(code(R"({"tcbInfo":{},"signature":"00","signature":"01"})"), "bad_json");
  // an escaped spelling alone is the member
  EXPECT_EQ(code(R"({"tcb\u0049nfo":{"a":2}})"), R"(ok: {"a":2})");
  EXPECT_EQ(code(R"({"tcbInfo":{"a":1}, garbage)"), "bad_json");
  EXPECT_EQ(code(R"({"tcbInfo":{"a":1})"), "bad_json");
}

// Collateral documents served as given, for altered copies of the real ones.
class FixedCollateral final : public CollateralSource {
 public:
  explicit FixedCollateral(Collateral c) : c_(std::move(c)) {}
  Result<Collateral> fetch(const CollateralRequest& /*request*/) const override { return c_; }

 private:
  Collateral c_;
};

// {"<member>": G, "signature": S} rebuilt with a forged copy F of the member next to the genuine
// one: the signature still covers G, so only a parser that refuses the repeat stops F being used.
struct SignedParts {
  std::string genuine;
  std::string signature;
};
SignedParts signed_parts(const std::string& doc, const char* member) {
  auto raw = raw_json_member(doc, member);
  EXPECT_TRUE(raw);
  auto parsed = parse_json(doc);
  EXPECT_TRUE(parsed);
  return {std::string(raw ? *raw : ""), (*parsed)["signature"].get<std::string>()};
}
std::string all_up_to_date(std::string member) {
  for (const char* status :
       {"\"ConfigurationAndSWHardeningNeeded\"", "\"SWHardeningNeeded\"", "\"OutOfDate\"",
        "\"OutOfDateConfigurationNeeded\"", "\"ConfigurationNeeded\"", "\"Revoked\""}) {
    for (auto pos = member.find(status); pos != std::string::npos; pos = member.find(status)) {
      member.replace(pos, std::strlen(status), "\"UpToDate\"");
    }
  }
  return member;
}

TEST(Collateral, ForgedRepeatedTcbInfoIsRefused) {
  auto files = split("sgx/dcap-qvl/sgx_quote_collateral.split");
  Collateral genuine = *DirectoryCollateralSource(files).fetch({});
  auto q = sgx::parse_quote(load("sgx/dcap-qvl/sgx_quote"));
  ASSERT_TRUE(q);
  const TimePoint now = at("2025-07-01T00:00:00Z");
  auto verify_with = [&](const std::string& tcb_info, const std::string& qe_identity) {
    Collateral c = genuine;
    c.tcb_info = tcb_info;
    c.qe_identity = qe_identity;
    DcapVerifier v({intel_root()}, std::make_shared<FixedCollateral>(c));
    auto r = v.verify_sgx(*q, now);
    if (r && r->tcb) return std::string(tcb_status_name(r->tcb->status));
    return r ? std::string("ok") : r.error().code;
  };
  ASSERT_EQ(verify_with(genuine.tcb_info, genuine.qe_identity),
            "ConfigurationAndSWHardeningNeeded");

  auto [tcb, tcb_sig] = signed_parts(genuine.tcb_info, "tcbInfo");
  std::string forged = all_up_to_date(tcb);
  ASSERT_NE(forged, tcb);
  auto doc = [&](const char* first, const std::string& a, const char* second,
                 const std::string& b) {
    return "{\"" + std::string(first) + "\":" + a + ",\"" + second + "\":" + b +
           ",\"signature\":\"" + tcb_sig + "\"}";
  };
  // forged copy after, before, and under an escaped spelling of the name
  EXPECT_EQ(verify_with(doc("tcbInfo", tcb, "tcbInfo", forged), genuine.qe_identity),
            "tcb_info_invalid");
  EXPECT_EQ(verify_with(doc("tcbInfo", forged, "tcbInfo", tcb), genuine.qe_identity),
            "tcb_info_invalid");
  EXPECT_EQ(verify_with(doc("tcbInfo", tcb, "tcb\\u0049nfo", forged), genuine.qe_identity),
            "tcb_info_invalid");
  EXPECT_EQ(verify_with(doc("tcb\\u0049nfo", forged, "tcbInfo", tcb), genuine.qe_identity),
            "tcb_info_invalid");
  // a repeated member inside the signed bytes is refused before any signature is checked
  std::string inner = tcb;
  inner.insert(1, "\"tcbLevels\":[],");
  EXPECT_EQ(verify_with(doc("tcbInfo", inner, "x", "0"), genuine.qe_identity), "tcb_info_invalid");

  // the same for the QE identity
  auto [qe, qe_sig] = signed_parts(genuine.qe_identity, "enclaveIdentity");
  std::string forged_qe = all_up_to_date(qe);
  ASSERT_NE(forged_qe, qe);
  auto qe_doc = [&](const char* second) {
    return "{\"enclaveIdentity\":" + qe + ",\"" + second + "\":" + forged_qe + ",\"signature\":\"" +
           qe_sig + "\"}";
  };
  EXPECT_EQ(verify_with(genuine.tcb_info, qe_doc("enclaveIdentity")), "qe_identity_invalid");
  EXPECT_EQ(verify_with(genuine.tcb_info, qe_doc("enclave\\u0049dentity")), "qe_identity_invalid");
}

// README row: sgx/dcap-qvl/sgx_quote, accepted, ConfigurationAndSWHardeningNeeded.
TEST(DcapReadme, SgxDcapQvlQuote) {
  auto v = offline(split("sgx/dcap-qvl/sgx_quote_collateral.split"));
  auto q = sgx::parse_quote(load("sgx/dcap-qvl/sgx_quote"));
  ASSERT_TRUE(q);
  auto r = v.verify_sgx(*q, at("2025-07-01T00:00:00Z"));
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_TRUE(r->tcb);
  EXPECT_EQ(r->tcb->status, TcbStatus::kConfigurationAndSWHardeningNeeded);
  EXPECT_EQ(r->tcb->advisory_ids, (std::vector<std::string>{"INTEL-SA-00289", "INTEL-SA-00615"}));
  EXPECT_TRUE(r->crls_checked);
  EXPECT_FALSE(r->collateral_expired);
  EXPECT_EQ(hex_encode(r->pck.fmspc), "00a067110000");
}

// README row: tdx/dcap-qvl/tdx_quote, accepted, UpToDate, no advisories, 70 trailing zeros.
TEST(DcapReadme, TdxDcapQvlQuote) {
  auto v = offline(split("tdx/dcap-qvl/tdx_quote_collateral.split"));
  auto r = verify_tdx(v, load("tdx/dcap-qvl/tdx_quote"), at("2025-07-01T00:00:00Z"));
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->tcb->status, TcbStatus::kUpToDate);
  EXPECT_TRUE(r->tcb->advisory_ids.empty());
  EXPECT_EQ(hex_encode(r->pck.fmspc), "b0c06f000000");
  EXPECT_EQ(hex_encode(r->root_fingerprint), kIntelSgxRootCaSha256);
}

// README row: tdx/trustee/tdx_quote_4.dat with go-tdx-guest collateral, UpToDate.
TEST(DcapReadme, TrusteeTdxQuote4) {
  auto v = offline(go_tdx_guest());
  auto r = verify_tdx(v, load("tdx/trustee/tdx_quote_4.dat"), at("2023-07-01T01:00:00Z"));
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->tcb->status, TcbStatus::kUpToDate);
  EXPECT_TRUE(r->crls_checked);
}

// README row: SPR_E4 quote, chain valid but no matching TCB level.
TEST(DcapReadme, SprE4HasNoMatchingTcbLevel) {
  auto v = offline(go_tdx_guest());
  Bytes raw = load("tdx/go-tdx-guest/tdx_prod_quote_SPR_E4.dat");
  auto r = verify_tdx(v, raw, at("2023-07-01T01:00:00Z"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "tcb_level_not_found");
  // chain only: the signatures and the chain are valid
  DcapVerifier chain_only({intel_root()}, nullptr);
  auto c = verify_tdx(chain_only, raw, at("2023-07-01T01:00:00Z"));
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_TRUE(c->chain_only);
}

// README row: same quote in 2053: PCK expired (and TCB info).
TEST(DcapReadme, SprE4In2053IsExpired) {
  auto v = offline(go_tdx_guest());
  auto r =
      verify_tdx(v, load("tdx/go-tdx-guest/tdx_prod_quote_SPR_E4.dat"), at("2053-07-01T00:00:00Z"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "pck_expired");
}

// README row: v5 quote (body type 3): signatures valid; the 2023 QE identity is expired.
TEST(DcapReadme, V5QuoteWithExpiredQeIdentity) {
  Bytes raw = load("tdx/go-tdx-guest/quote_v5_sample.dat");
  TimePoint now = at("2026-02-03T01:00:00Z");
  DcapVerifier chain_only({intel_root()}, nullptr);
  auto c = verify_tdx(chain_only, raw, now);
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(hex_encode(c->pck.fmspc), "90c06f000000");
  DirectoryCollateralSource::Files f;
  f.tcb_info = kEvidence + "tdx/go-tdx-guest/sample_tcbinfo_response_v5";
  f.qe_identity = kEvidence + "tdx/go-tdx-guest/sample_qeIdentity_response";
  f.tcb_info_issuer_chain =
      kEvidence + "tdx/dcap-qvl/tdx_quote_collateral.split/tcb_info_issuer_chain.pem";
  auto r = verify_tdx(offline(f), raw, now);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "qe_identity_expired");
  // accepting expired collateral shows what the rest of the evaluation gives
  auto lenient = verify_tdx(offline(f, {.allow_expired_collateral = true}), raw, now);
  ASSERT_TRUE(lenient) << lenient.error().to_string();
  EXPECT_TRUE(lenient->collateral_expired);
}

// README rows: chain-only quotes.
TEST(DcapReadme, ChainOnlyQuotes) {
  DcapVerifier v({intel_root()}, nullptr);
  for (const char* f : {"tdx/trustee/tdx_quote_5.dat", "tdx/trustee/td-quote.bin",
                        "tdx/go-tdx-guest/ccel/cos-113-tdx-quote.dat"}) {
    Bytes raw = load(f);
    auto q = tdx::parse_quote(raw);
    ASSERT_TRUE(q) << f;
    // inside the PCK validity: one second after the PCK's notBefore
    auto chain =
        crypto::Certificate::chain_from_pem(to_string(q->signature_data.qe.certification_data));
    ASSERT_TRUE(chain);
    auto r = v.verify_tdx(*q, chain->front().not_before() + std::chrono::hours(24));
    EXPECT_TRUE(r) << f << ": " << r.error().to_string();
  }
  auto occlum = sgx::parse_quote(load("sgx/trustee/occlum_quote.dat"));
  ASSERT_TRUE(occlum);
  auto chain =
      crypto::Certificate::chain_from_pem(to_string(occlum->signature_data.qe.certification_data));
  auto r = v.verify_sgx(*occlum, chain->front().not_before() + std::chrono::hours(24));
  EXPECT_TRUE(r) << r.error().to_string();
}

// README row: tdx_quote_6.dat with trustee tcbInfo/enclaveIdentity (no CRLs): OutOfDate.
TEST(DcapReadme, TrusteeQuote6IsOutOfDate) {
  DirectoryCollateralSource::Files f;
  f.tcb_info = kEvidence + "tdx/trustee/tcbInfo.json";
  f.qe_identity = kEvidence + "tdx/trustee/enclaveIdentity.json";
  f.tcb_info_issuer_chain =
      kEvidence + "tdx/dcap-qvl/tdx_quote_collateral.split/tcb_info_issuer_chain.pem";
  auto r = verify_tdx(offline(f), load("tdx/trustee/tdx_quote_6.dat"), at("2025-11-01T00:00:00Z"));
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->tcb->status, TcbStatus::kOutOfDate);
  EXPECT_FALSE(r->crls_checked);
  EXPECT_EQ(r->pck.pce_svn, 11);
}

}  // namespace
}  // namespace coffer::verifier::dcap
