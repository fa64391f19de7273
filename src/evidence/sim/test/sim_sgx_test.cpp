#include <gtest/gtest.h>
#include <sys/stat.h>

#include "core/file.h"
#include "crypto/digest.h"
#include "evidence/sgx/quote.h"
#include "evidence/sim/quote_service.h"
#include "evidence/sim/sgx_enclave.h"
#include "evidence/sim/sim_tee.h"
#include "evidence/sim/test/sim_test_util.h"
#include "verifier/dcap/collateral_source.h"
#include "verifier/dcap/dcap_verifier.h"
#include "verifier/sgx/sgx_verifier.h"

namespace coffer::evidence::sim {
namespace {

using testing::shared_pki;
using testing::TempDir;

std::shared_ptr<const verifier::dcap::DcapVerifier> sgx_dcap(const std::filesystem::path& dir,
                                                             const crypto::Certificate& root) {
  auto source = std::make_shared<verifier::dcap::DirectoryCollateralSource>(
      verifier::dcap::DirectoryCollateralSource::split_layout(dir / "intel" / "collateral_sgx"));
  return std::make_shared<const verifier::dcap::DcapVerifier>(
      std::vector<crypto::Certificate>{root}, source);
}

SgxIdentity sample_identity() {
  SgxIdentity id;
  id.mr_enclave.fill(0xe1);
  id.mr_signer.fill(0x51);
  id.isv_prod_id = 7;
  id.isv_svn = 3;
  id.config_id.fill(0);
  std::fill_n(id.config_id.begin(), 48, 0xc0);
  return id;
}

Fixed<32> fixed32(std::uint8_t fill) {
  Fixed<32> f{};
  f.fill(fill);
  return f;
}

TEST(SimSgx, QuoteVerifiedBySgxVerifierWithSimRootClaimsMatch) {
  TempDir dir;
  ASSERT_TRUE(write_sim_pki(shared_pki(), dir.path()));
  verifier::sgx::SgxVerifier v(sgx_dcap(dir.path(), shared_pki().root_ca));
  SgxIdentity id = sample_identity();
  Bytes rd(64, 0x5a);
  auto quote = make_sgx_quote(shared_pki(), id, rd);
  ASSERT_TRUE(quote) << quote.error().to_string();
  // The parser reads it back byte-identically.
  auto parsed = sgx::parse_quote(*quote);
  ASSERT_TRUE(parsed) << parsed.error().to_string();
  EXPECT_EQ(sgx::serialize_quote(*parsed), *quote);

  Json evidence = sgx_evidence_json(*quote);
  Bytes init(id.config_id.begin(), id.config_id.begin() + 48);
  auto now = std::chrono::system_clock::now();
  auto claims = v.verify({evidence, rd, ByteView(init), now});
  ASSERT_TRUE(claims) << claims.error().to_string();
  const Json& body = (*claims)["body"];
  EXPECT_EQ(body["mr_enclave"], hex_encode(id.mr_enclave));
  EXPECT_EQ(body["mr_signer"], hex_encode(id.mr_signer));
  EXPECT_EQ(body["isv_prod_id"], "0700");
  EXPECT_EQ(body["isv_svn"], "0300");
  EXPECT_EQ(body["attributes.flags"], "0500000000000000");  // INIT | MODE64BIT
  EXPECT_EQ(body["attributes.xfrm"], "e700000000000000");
  EXPECT_EQ((*claims)["report_data"], hex_encode(rd));
  EXPECT_EQ((*claims)["init_data"], hex_encode(id.config_id));
  EXPECT_EQ((*claims)["debug"], false);
  EXPECT_EQ((*claims)["tcb_status"], "UpToDate");
  EXPECT_NE((*claims)["tee_root"], "intel");

  // init-data and report data are bound.
  Bytes wrong_init(48, 0xc1);
  auto bad = v.verify({evidence, rd, ByteView(wrong_init), now});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, "init_data_mismatch");
  bad = v.verify({evidence, Bytes(64, 0), std::nullopt, now});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, "report_data_mismatch");
}

TEST(SimSgx, MutatedQuoteAndUntrustedRootAreRefused) {
  TempDir dir;
  ASSERT_TRUE(write_sim_pki(shared_pki(), dir.path()));
  auto quote = make_sgx_quote(shared_pki(), sample_identity(), Bytes(64, 1));
  ASSERT_TRUE(quote);
  auto now = std::chrono::system_clock::now();
  // MRENCLAVE's first byte (header 48 + offset 64)
  Bytes tampered = *quote;
  tampered[48 + 64] ^= 1;
  auto tp = sgx::parse_quote(tampered);
  ASSERT_TRUE(tp);
  auto refused = sgx_dcap(dir.path(), shared_pki().root_ca)->verify_sgx(*tp, now);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, "quote_signature_invalid");

  auto parsed = sgx::parse_quote(*quote);
  ASSERT_TRUE(parsed);
  auto intel = verifier::dcap::DcapVerifier::with_intel_root(
      std::make_shared<verifier::dcap::DirectoryCollateralSource>(
          verifier::dcap::DirectoryCollateralSource::split_layout(dir.path() / "intel" /
                                                                  "collateral_sgx")));
  refused = intel.verify_sgx(*parsed, now);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, "untrusted_root");

  // The TDX collateral does not serve an SGX quote.
  auto tdx_source = std::make_shared<verifier::dcap::DirectoryCollateralSource>(
      verifier::dcap::DirectoryCollateralSource::split_layout(dir.path() / "intel" / "collateral"));
  verifier::dcap::DcapVerifier wrong_collateral({shared_pki().root_ca}, tdx_source);
  refused = wrong_collateral.verify_sgx(*parsed, now);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, "tcb_info_mismatch");
}

TEST(SimSgx, PlatformSecretIsWrittenPrivatelyAndLoaded) {
  TempDir dir;
  ASSERT_TRUE(write_sim_pki(shared_pki(), dir.path()));
  struct stat st {};
  ASSERT_EQ(::stat((dir.path() / "platform_secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  auto loaded = load_sim_pki(dir.path());
  ASSERT_TRUE(loaded) << loaded.error().to_string();
  EXPECT_EQ(loaded->platform_secret, shared_pki().platform_secret);
  EXPECT_EQ(loaded->sgx_tcb_info_json, shared_pki().sgx_tcb_info_json);
  EXPECT_EQ(loaded->platform_secret.size(), 32u);
  // a damaged secret is an error, not a platform without SGX
  ASSERT_TRUE(write_file_atomic(dir.path() / "platform_secret", Bytes(31, 1), 0600));
  EXPECT_EQ(load_sim_pki(dir.path()).error().code, "sim_pki_invalid");
  // an older directory without one loads, and its SGX keys are unavailable
  std::filesystem::remove(dir.path() / "platform_secret");
  auto old = load_sim_pki(dir.path());
  ASSERT_TRUE(old) << old.error().to_string();
  EXPECT_TRUE(old->platform_secret.empty());
  EXPECT_EQ(sgx_seal_key(*old, sample_identity(), SealPolicy::kMrSigner, 3, Bytes(32)).error().code,
            "sgx_unavailable");
}

TEST(SimSgx, ReportVerifiesAtItsTargetOnly) {
  const SimPki& pki = shared_pki();
  SgxIdentity agent = sample_identity();
  SgxIdentity app = sample_identity();
  app.mr_enclave = fixed32(0xa2);
  SgxIdentity other = sample_identity();
  other.mr_enclave = fixed32(0x0f);

  Bytes rd(64, 0x77);
  auto report = make_sgx_report(pki, app, agent.mr_enclave, rd);
  ASSERT_TRUE(report) << report.error().to_string();
  ASSERT_EQ(report->size(), kSgxReportSize);
  auto body = verify_sgx_report(pki, agent, *report);
  ASSERT_TRUE(body) << body.error().to_string();
  EXPECT_EQ(body->mr_enclave, app.mr_enclave);
  EXPECT_EQ(body->mr_signer, app.mr_signer);
  EXPECT_EQ(Bytes(body->report_data.begin(), body->report_data.end()), rd);

  // another target's report key does not verify it
  auto wrong = verify_sgx_report(pki, other, *report);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, "report_mac_mismatch");
  // the reporter itself cannot verify a report made for the agent
  EXPECT_EQ(verify_sgx_report(pki, app, *report).error().code, "report_mac_mismatch");
  // an altered body (claiming another MRENCLAVE) or KEYID is refused
  for (std::size_t at : {std::size_t{64}, std::size_t{384}, kSgxReportSize - 1}) {
    Bytes t = *report;
    t[at] ^= 1;
    EXPECT_EQ(verify_sgx_report(pki, agent, t).error().code, "report_mac_mismatch") << at;
  }
  EXPECT_EQ(verify_sgx_report(pki, agent, ByteView(*report).first(431)).error().code, "bad_report");
  // another platform (another secret) does not verify it
  SimPki other_platform = pki;
  other_platform.platform_secret = Bytes(32, 0x42);
  EXPECT_EQ(verify_sgx_report(other_platform, agent, *report).error().code, "report_mac_mismatch");
  EXPECT_EQ(make_sgx_report(pki, app, agent.mr_enclave, Bytes(65)).error().code, "bad_report_data");
  SimPki no_secret = pki;
  no_secret.platform_secret.clear();
  EXPECT_EQ(make_sgx_report(no_secret, app, agent.mr_enclave, rd).error().code, "sgx_unavailable");
}

TEST(SimSgx, SealKeysFollowPolicyIdentityAndSvn) {
  const SimPki& pki = shared_pki();
  Bytes key_id(32, 0x01);
  SgxIdentity a = sample_identity();
  auto k1 = sgx_seal_key(pki, a, SealPolicy::kMrEnclave, a.isv_svn, key_id);
  ASSERT_TRUE(k1) << k1.error().to_string();
  EXPECT_EQ(k1->size(), 32u);
  EXPECT_EQ(sgx_seal_key(pki, a, SealPolicy::kMrEnclave, a.isv_svn, key_id).value(), *k1);
  auto s1 = sgx_seal_key(pki, a, SealPolicy::kMrSigner, a.isv_svn, key_id).value();
  EXPECT_NE(s1, *k1);
  // another key id
  EXPECT_NE(sgx_seal_key(pki, a, SealPolicy::kMrEnclave, a.isv_svn, Bytes(32, 2)).value(), *k1);

  // another enclave by the same signer: same MRSIGNER key, different MRENCLAVE key
  SgxIdentity b = a;
  b.mr_enclave = fixed32(0xb0);
  EXPECT_EQ(sgx_seal_key(pki, b, SealPolicy::kMrSigner, b.isv_svn, key_id).value(), s1);
  EXPECT_NE(sgx_seal_key(pki, b, SealPolicy::kMrEnclave, b.isv_svn, key_id).value(), *k1);
  // another signer: different MRSIGNER key
  SgxIdentity c = a;
  c.mr_signer = fixed32(0x5f);
  EXPECT_NE(sgx_seal_key(pki, c, SealPolicy::kMrSigner, c.isv_svn, key_id).value(), s1);
  // another product id, or a debug enclave: different keys
  SgxIdentity d = a;
  d.isv_prod_id = 8;
  EXPECT_NE(sgx_seal_key(pki, d, SealPolicy::kMrSigner, d.isv_svn, key_id).value(), s1);
  SgxIdentity dbg = a;
  dbg.flags |= kSgxFlagsDebug;
  EXPECT_NE(sgx_seal_key(pki, dbg, SealPolicy::kMrSigner, dbg.isv_svn, key_id).value(), s1);

  // an older SVN's key is available (and differs), a higher one is refused
  auto old = sgx_seal_key(pki, a, SealPolicy::kMrSigner, 2, key_id);
  ASSERT_TRUE(old);
  EXPECT_NE(*old, s1);
  SgxIdentity newer = a;
  newer.isv_svn = 4;
  EXPECT_EQ(sgx_seal_key(pki, newer, SealPolicy::kMrSigner, 3, key_id).value(), s1);
  auto high = sgx_seal_key(pki, a, SealPolicy::kMrSigner, 4, key_id);
  ASSERT_FALSE(high);
  EXPECT_EQ(high.error().code, "svn_too_high");
  EXPECT_EQ(sgx_seal_key(pki, a, SealPolicy::kMrSigner, 3, Bytes(31)).error().code, "bad_key_id");
  // another platform: another key
  SimPki other_platform = pki;
  other_platform.platform_secret = Bytes(32, 0x42);
  EXPECT_NE(sgx_seal_key(other_platform, a, SealPolicy::kMrSigner, 3, key_id).value(), s1);
}

TEST(SimSgx, SigstructSignVerifyAndRefusals) {
  auto rsa = crypto::Key::generate(crypto::KeyType::kRsa, 3072);
  ASSERT_TRUE(rsa);
  auto ec = crypto::Key::generate(crypto::KeyType::kEcP256);
  ASSERT_TRUE(ec);
  SgxSigstruct s;
  s.mr_enclave = fixed32(0x3c);
  s.isv_prod_id = 9;
  s.isv_svn = 2;
  for (const crypto::Key* key : {&*rsa, &*ec}) {
    auto text = sign_sigstruct(s, *key);
    ASSERT_TRUE(text) << text.error().to_string();
    auto id = verify_sigstruct(*text, s.mr_enclave);
    ASSERT_TRUE(id) << id.error().to_string();
    EXPECT_EQ(id->mr_enclave, s.mr_enclave);
    EXPECT_EQ(id->mr_signer, sgx_mr_signer(*key).value());
    EXPECT_EQ(id->isv_prod_id, 9);
    EXPECT_EQ(id->isv_svn, 2);
    // the image changed after signing: another MRENCLAVE
    auto changed = verify_sigstruct(*text, fixed32(0x3d));
    ASSERT_FALSE(changed);
    EXPECT_EQ(changed.error().code, "enclave_signature_invalid");
    // a signed field changed in the file
    Json j = parse_json(*text).value();
    j["isv_svn"] = 3;
    EXPECT_EQ(verify_sigstruct(j.dump(), s.mr_enclave).error().code, "enclave_signature_invalid");
    // the signer key swapped for another (whose signature this is not)
    Json swapped = parse_json(*text).value();
    swapped["signer"] = (key == &*rsa ? *ec : *rsa).public_pem();
    EXPECT_EQ(verify_sigstruct(swapped.dump(), s.mr_enclave).error().code,
              "enclave_signature_invalid");
  }
  // MRSIGNER of RSA is SHA-256 of the little-endian modulus (SGX); keys differ -> MRSIGNER differs
  EXPECT_NE(sgx_mr_signer(*rsa).value(), sgx_mr_signer(*ec).value());
  auto rsa_parts = rsa->rsa_components().value();
  Bytes le = rsa_parts.n;
  while (le.size() > 384 && le.front() == 0) le.erase(le.begin());
  std::reverse(le.begin(), le.end());
  Bytes expect = crypto::sha256(le);
  EXPECT_EQ(hex_encode(sgx_mr_signer(*rsa).value()), hex_encode(expect));

  // hostile files
  EXPECT_EQ(verify_sigstruct("", s.mr_enclave).error().code, "enclave_signature_invalid");
  EXPECT_EQ(verify_sigstruct("[1]", s.mr_enclave).error().code, "enclave_signature_invalid");
  Json j = parse_json(sign_sigstruct(s, *ec).value()).value();
  j["flags"] = "0000000000000000";  // no INIT
  EXPECT_EQ(verify_sigstruct(j.dump(), s.mr_enclave).error().code, "enclave_signature_invalid");
  j = parse_json(sign_sigstruct(s, *ec).value()).value();
  j["isv_prod_id"] = 70000;
  EXPECT_EQ(verify_sigstruct(j.dump(), s.mr_enclave).error().code, "enclave_signature_invalid");
  j["isv_prod_id"] = -1;
  EXPECT_EQ(verify_sigstruct(j.dump(), s.mr_enclave).error().code, "enclave_signature_invalid");
  auto ed = crypto::Key::generate(crypto::KeyType::kEd25519);
  ASSERT_TRUE(ed);
  EXPECT_EQ(sign_sigstruct(s, *ed).error().code, "bad_signer_key");
  EXPECT_EQ(sign_sigstruct(s, ec->public_key()).error().code, "bad_signer_key");
}

// The quote service answers for its own enclave only: identity from the launcher, never from the
// request; two services of the same platform share the sealing root.
TEST(SimSgx, QuoteServiceOpsReportSealAndQuote) {
  const SimPki& pki = shared_pki();
  LaunchMeasurements m;
  std::fill_n(m.config_id.begin(), 48, 0xc0);
  QuoteServiceConfig agent_cfg;
  agent_cfg.sgx = sample_identity();
  QuoteServiceConfig app_cfg;
  app_cfg.sgx = sample_identity();
  app_cfg.sgx->mr_enclave = fixed32(0xa2);
  QuoteService agent(pki, m, agent_cfg);
  QuoteService app(pki, m, app_cfg);
  QuoteService app_again(pki, m, app_cfg);
  QuoteService tdx_only(pki, m, {});

  // quote
  Json q =
      agent.handle({{"op", "quote"}, {"tee", "sgx"}, {"report_data", base64_encode(Bytes(64, 3))}});
  ASSERT_TRUE(q.contains("evidence")) << q.dump();
  auto raw = base64_decode(q["evidence"]["quote"].get<std::string>());
  ASSERT_TRUE(raw);
  auto parsed = sgx::parse_quote(*raw);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->body.mr_enclave, agent_cfg.sgx->mr_enclave);
  EXPECT_EQ(parsed->body.config_id, m.config_id);
  EXPECT_EQ(tdx_only.handle({{"op", "quote"},
                             {"tee", "sgx"},
                             {"report_data", base64_encode(Bytes(64, 3))}})["error"]["code"],
            "unsupported");

  // local attestation: the app reports to the agent; the agent verifies, the app itself cannot
  Json r = app.handle({{"op", "report"},
                       {"target_info", {{"mr_enclave", hex_encode(agent_cfg.sgx->mr_enclave)}}},
                       {"report_data", base64_encode(Bytes(32, 9))}});
  ASSERT_TRUE(r.contains("report")) << r.dump();
  Json v = agent.handle({{"op", "verify_report"}, {"report", r["report"]}});
  ASSERT_EQ(v.value("ok", false), true) << v.dump();
  EXPECT_EQ(v["mr_enclave"], hex_encode(app_cfg.sgx->mr_enclave));
  EXPECT_EQ(v["mr_signer"], hex_encode(app_cfg.sgx->mr_signer));
  EXPECT_EQ(app.handle({{"op", "verify_report"}, {"report", r["report"]}})["error"]["code"],
            "report_mac_mismatch");
  EXPECT_EQ(
      app.handle({{"op", "report"}, {"target_info", {{"mr_enclave", "00"}}}})["error"]["code"],
      "bad_request");
  EXPECT_EQ(tdx_only.handle({{"op", "verify_report"}, {"report", r["report"]}})["error"]["code"],
            "unsupported");

  // sealing: equal across two services of the same enclave; MRSIGNER shared by agent and app
  Json seal = {{"op", "seal_key"}, {"policy", "mrenclave"}, {"key_id", hex_encode(Bytes(32, 4))}};
  Json k_app = app.handle(seal);
  ASSERT_TRUE(k_app.contains("key")) << k_app.dump();
  EXPECT_EQ(app_again.handle(seal)["key"], k_app["key"]);
  EXPECT_NE(agent.handle(seal)["key"], k_app["key"]);
  seal["policy"] = "mrsigner";
  EXPECT_EQ(agent.handle(seal)["key"], app.handle(seal)["key"]);
  // the request cannot claim another identity: extra members are ignored
  Json claim = seal;
  claim["mr_signer"] = hex_encode(fixed32(0x5f));
  EXPECT_EQ(app.handle(claim)["key"], app.handle(seal)["key"]);
  seal["isv_svn"] = 4;
  EXPECT_EQ(app.handle(seal)["error"]["code"], "svn_too_high");
  seal["isv_svn"] = 2;
  EXPECT_TRUE(app.handle(seal).contains("key"));
  seal["policy"] = "mrowner";
  EXPECT_EQ(app.handle(seal)["error"]["code"], "bad_request");
  EXPECT_EQ(tdx_only.handle({{"op", "seal_key"},
                             {"policy", "mrsigner"},
                             {"key_id", hex_encode(Bytes(32, 4))}})["error"]["code"],
            "unsupported");
  Json meas = app.handle({{"op", "measurements"}});
  EXPECT_EQ(meas["sgx"]["mr_enclave"], hex_encode(app_cfg.sgx->mr_enclave));
}

}  // namespace
}  // namespace coffer::evidence::sim

namespace coffer::evidence::sim {
namespace {

// The enclave-side client calls over the real socket: report to another enclave, verification
// there, sealing keys; and the client's own argument checks.
TEST(SimSgx, ClientReportVerifyAndSealOverTheSocket) {
  TempDir dir;
  // Two services of the same platform: each loads the PKI directory (as two launchers do).
  ASSERT_TRUE(write_sim_pki(shared_pki(), dir.path() / "sim"));
  auto pki_a = load_sim_pki(dir.path() / "sim");
  auto pki_b = load_sim_pki(dir.path() / "sim");
  ASSERT_TRUE(pki_a && pki_b);
  LaunchMeasurements m;
  QuoteServiceConfig agent_cfg{.socket_path = dir.path() / "agent.sock"};
  agent_cfg.sgx = sample_identity();
  QuoteServiceConfig app_cfg{.socket_path = dir.path() / "app.sock"};
  app_cfg.sgx = sample_identity();
  app_cfg.sgx->mr_enclave = fixed32(0xa2);
  QuoteService agent(std::move(*pki_a), m, agent_cfg);
  QuoteService app(std::move(*pki_b), m, app_cfg);
  ASSERT_TRUE(agent.start());
  ASSERT_TRUE(app.start());
  QuoteServiceClient agent_client(agent_cfg.socket_path);
  QuoteServiceClient app_client(app_cfg.socket_path);

  auto report = app_client.report(agent_cfg.sgx->mr_enclave, Bytes(64, 0x11));
  ASSERT_TRUE(report) << report.error().to_string();
  EXPECT_EQ(report->size(), kSgxReportSize);
  auto checked = agent_client.verify_report(*report);
  ASSERT_TRUE(checked) << checked.error().to_string();
  EXPECT_EQ((*checked)["mr_enclave"], hex_encode(app_cfg.sgx->mr_enclave));
  EXPECT_EQ((*checked)["report_data"], base64_encode(Bytes(64, 0x11)));
  auto wrong = app_client.verify_report(*report);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, "report_mac_mismatch");

  Bytes key_id(32, 0x0a);
  auto a = agent_client.seal_key("mrsigner", key_id);
  auto b = app_client.seal_key("mrsigner", key_id);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(a->size(), 32u);
  EXPECT_NE(app_client.seal_key("mrenclave", key_id).value(), *b);
  EXPECT_EQ(app_client.seal_key("mrsigner", key_id, 4).error().code, "svn_too_high");
  EXPECT_EQ(app_client.seal_key("mrsigner", Bytes(16)).error().code, "bad_request");
  EXPECT_EQ(app_client.report(Bytes(31), {}).error().code, "bad_request");
  // hostile requests get error answers, the service stays up
  for (const Json& bad : {Json{{"op", "report"}, {"target_info", "x"}},
                          Json{{"op", "report"},
                               {"target_info", {{"mr_enclave", hex_encode(Bytes(32))}}},
                               {"report_data", base64_encode(Bytes(65))}},
                          Json{{"op", "verify_report"}, {"report", "%%%"}},
                          Json{{"op", "verify_report"}, {"report", 5}},
                          Json{{"op", "seal_key"}, {"policy", "mrsigner"}, {"key_id", "zz"}},
                          Json{{"op", "seal_key"},
                               {"policy", "mrsigner"},
                               {"key_id", hex_encode(key_id)},
                               {"isv_svn", -1}},
                          Json{{"op", "seal_key"},
                               {"policy", "mrsigner"},
                               {"key_id", hex_encode(key_id)},
                               {"isv_svn", "1"}}}) {
    auto answer = app_client.call(bad);
    ASSERT_FALSE(answer) << bad.dump();
    EXPECT_EQ(answer.error().code, "bad_request") << bad.dump();
  }
  auto garbage = app_client.verify_report(Bytes(432, 0));
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error().code, "report_mac_mismatch");
  EXPECT_TRUE(app_client.seal_key("mrsigner", key_id));
  agent.stop();
  app.stop();
}

}  // namespace
}  // namespace coffer::evidence::sim
