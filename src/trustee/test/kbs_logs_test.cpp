// What coffer-trustee tells its operator (issue 12 items 8 and 9): attestation outcomes, refusals
// with their reason and admin-auth failures in the log at info, never a secret or a credential;
// a readable 403 that says which trust claim failed; start-up checks of the configuration.
#include <sstream>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "crypto/x509_issue.h"
#include "evidence/sim/sim_pki.h"
#include "evidence/sim/sim_tee.h"
#include "trustee/test/kbs_fixture.h"

namespace coffer::trustee::testing {
namespace {

// Captures everything logged through spdlog's default logger while it lives.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    auto logger = std::make_shared<spdlog::logger>("capture", sink);
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  std::string text() const {
    spdlog::default_logger()->flush();
    return out_.str();
  }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::ostringstream out_;
};

class KbsLogs : public KbsFixture {
 protected:
  void SetUp() override {
    capture_ = std::make_unique<LogCapture>();
    KbsFixture::SetUp();
  }
  void TearDown() override {
    KbsFixture::TearDown();
    capture_.reset();
  }
  // An RCAR handshake with sample evidence of the given svn.
  Handshake handshake_svn(net::HttpClient& client, const std::string& svn) {
    Handshake h{*crypto::Key::generate(crypto::KeyType::kEcP256), "", {}};
    auto a = auth(client);
    EXPECT_EQ(a.status, 200) << a.body;
    h.nonce = (*parse_json(a.body))["nonce"].get<std::string>();
    Json body = attest_body(h.tee_key, h.nonce, report_data(tee_jwk(h.tee_key), h.nonce));
    body["tee-evidence"]["primary_evidence"]["svn"] = svn;
    h.attest = call(client, "POST", "/kbs/v0/attest", body.dump());
    return h;
  }
  std::unique_ptr<LogCapture> capture_;
};

TEST_F(KbsLogs, OutcomesDenialsAndAdminFailuresAreLoggedWithoutSecrets) {
  register_svn("1");
  const std::string secret = "s3cr3t-resource-bytes-0123456789";
  ASSERT_EQ(admin("POST", "/kbs/v0/resource/default/key/1", secret).status, 200);

  // Attest (svn registered: affirming) and fetch.
  net::HttpClient good;
  auto ok = handshake_svn(good, "1");
  ASSERT_EQ(ok.attest.status, 200) << ok.attest.body;
  std::string token = (*parse_json(ok.attest.body))["token"];
  auto fetched = call(good, "GET", "/kbs/v0/resource/default/key/1");
  ASSERT_EQ(fetched.status, 200) << fetched.body;

  // Attest with an unregistered svn: executables 33, so the resource policy denies.
  net::HttpClient bad;
  auto warned = handshake_svn(bad, "2");
  ASSERT_EQ(warned.attest.status, 200) << warned.attest.body;
  std::string bad_token = (*parse_json(warned.attest.body))["token"];
  auto denied = call(bad, "GET", "/kbs/v0/resource/default/key/1");
  ASSERT_EQ(denied.status, 403) << denied.body;
  EXPECT_EQ(problem_type(denied), "PolicyDeny");
  // Item 9: the claim that failed and why first, then the Rego account.
  EXPECT_TRUE(detail(denied).starts_with(
      "attestation not affirming: executables 33: sample.svn is not among the registered "
      "reference values. resource policy denied 'default/key/1' (rule data.policy.allow is "
      "false)"))
      << detail(denied);

  // An admin token signed by a key the trustee does not know.
  auto stranger = *crypto::Key::generate(crypto::KeyType::kEd25519);
  std::string forged = admin_token(std::chrono::minutes(10), &stranger);
  net::HttpClient c;
  auto refused = call(c, "GET", "/kbs/v0/resource-policy", "", forged);
  ASSERT_EQ(refused.status, 401);

  std::string log = capture_->text();
  for (const char* expected : {
           "attestation: tee=sample ear.status=affirming policy=default_cpu "
           "trust-vector={\"configuration\":0,\"executables\":3,\"hardware\":0}",
           "attestation: tee=sample ear.status=warning policy=default_cpu "
           "trust-vector={\"configuration\":0,\"executables\":33,\"hardware\":0} not affirming: "
           "executables 33: sample.svn is not among the registered reference values",
           "resource released: path=default/key/1",
           "resource request refused: path=default/key/1 reason=policy: attestation not "
           "affirming: executables 33: sample.svn is not among the registered reference values",
           "admin request refused: GET /kbs/v0/resource-policy: admin token is not signed by any "
           "configured admin key",
       }) {
    EXPECT_NE(log.find(expected), std::string::npos) << "missing: " << expected << "\nlog:\n"
                                                     << log;
  }
  // Never a secret, a token, a nonce or the TEE's key.
  for (const std::string& never :
       {secret, token, bad_token, forged, admin_token(), ok.nonce, warned.nonce,
        tee_jwk(ok.tee_key)["x"].get<std::string>(), token.substr(token.rfind('.') + 1)}) {
    EXPECT_EQ(log.find(never), std::string::npos) << "logged: " << never << "\nlog:\n" << log;
  }
}

// Item 8: a resource policy that cannot grant anything by construction (no data.policy.allow)
// is refused at upload, and the one in force stays.
TEST_F(KbsLogs, ResourcePolicyWithoutAllowRuleIsRefusedAtUpload) {
  auto upload = [&](const std::string& rego) {
    Json body = {{"policy", base64url_encode(as_bytes(rego))}};
    return admin("POST", "/kbs/v0/resource-policy", body.dump());
  };
  auto r = upload("package policy\n\nimport rego.v1\n\ndefault allowed := true\n");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(problem_type(r), "PolicyInvalid");
  EXPECT_EQ(detail(r),
            "the resource policy defines no 'allow' rule in 'package policy': the KBS decides "
            "with data.policy.allow");
  // The rule in another package does not count either.
  r = upload("package kbs\n\nimport rego.v1\n\nallow := true\n");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(problem_type(r), "PolicyInvalid");
  EXPECT_EQ(upload("package policy\n\nimport rego.v1\n\ndefault allow := false\n").status, 200);
}

// Item 9 with real TDX quote bytes: a simulated TD launched with another MR_TD than the
// registered one is refused with a 403 naming the claim and the reference value.
TEST_F(KbsLogs, ChangedMeasurementNamesTheClaimInThe403) {
  namespace sim = evidence::sim;
  sim::SimPkiOptions o;
  o.now = clock_->now() - std::chrono::hours(1);
  o.rsa_bits = 2048;
  auto pki = sim::generate_sim_pki(o);
  ASSERT_TRUE(pki) << pki.error().to_string();
  ASSERT_TRUE(sim::write_sim_pki(*pki, dir_.path() / "sim"));
  start(default_config(
      "[attestation_service.verifier.tdx]\ntrusted_roots = [\"sim/intel/root_ca.pem\"]\n"
      "collateral_dir = \"sim/intel/collateral\"\n"));
  sim::TdMeasurements registered;
  registered.mr_td.fill(0xa1);
  Json refs = {{"tdx.mr_td", {hex_encode(registered.mr_td)}},
               {"tdx.rtmr_0", {hex_encode(registered.rtmr[0])}},
               {"tdx.rtmr_1", {hex_encode(registered.rtmr[1])}},
               {"tdx.rtmr_2", {hex_encode(registered.rtmr[2])}}};
  Json msg = {
      {"version", "0.1.0"}, {"type", "sample"}, {"payload", base64_encode(as_bytes(refs.dump()))}};
  ASSERT_EQ(admin("POST", "/kbs/v0/reference-value", msg.dump()).status, 200);
  ASSERT_EQ(admin("POST", "/kbs/v0/resource/default/key/1", "k").status, 200);

  auto fetch = [&](const sim::TdMeasurements& td) {
    net::HttpClient client;
    auto key = *crypto::Key::generate(crypto::KeyType::kEcP256);
    auto a = auth(client, "tdx");
    EXPECT_EQ(a.status, 200) << a.body;
    std::string nonce = (*parse_json(a.body))["nonce"];
    Bytes rd = report_data(tee_jwk(key), nonce);
    rd.resize(64, 0);
    auto quote = sim::make_tdx_quote(*pki, td, rd);
    EXPECT_TRUE(quote) << quote.error().to_string();
    Json body = {
        {"runtime-data", {{"nonce", nonce}, {"tee-pubkey", tee_jwk(key)}}},
        {"tee-evidence",
         {{"primary_evidence", {{"quote", base64_encode(*quote)}}}, {"additional_evidence", ""}}}};
    auto attested = call(client, "POST", "/kbs/v0/attest", body.dump());
    EXPECT_EQ(attested.status, 200) << attested.body;
    return call(client, "GET", "/kbs/v0/resource/default/key/1");
  };
  auto released = fetch(registered);
  EXPECT_EQ(released.status, 200) << released.body;

  sim::TdMeasurements changed = registered;
  changed.mr_td[0] ^= 0x01;
  auto denied = fetch(changed);
  ASSERT_EQ(denied.status, 403) << denied.body;
  EXPECT_EQ(problem_type(denied), "PolicyDeny");
  EXPECT_TRUE(detail(denied).starts_with(
      "attestation not affirming: executables 33: tdx.mr_td is not among the registered "
      "reference values. resource policy denied 'default/key/1'"))
      << detail(denied);

  // A debug TD as well: both claims, the contraindicated one first.
  changed.td_attributes |= sim::kTdAttributesDebug;
  denied = fetch(changed);
  ASSERT_EQ(denied.status, 403) << denied.body;
  EXPECT_TRUE(detail(denied).starts_with(
      "attestation not affirming: configuration 97: tdx.td_attributes.debug is true: the host "
      "can read a debug TD; executables 33: tdx.mr_td is not among the registered reference "
      "values. "))
      << detail(denied);
}

// ---- start-up checks (item 8)

TEST(TrusteeConfigChecks, InvalidLogLevelIsRefused) {
  auto c = parse_config("log_level = \"verbose\"\n[http_server]\ninsecure_http = true\n", "/srv");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, "bad_config");
  EXPECT_EQ(c.error().message,
            "'log_level' must be one of trace, debug, info, warn, error, critical, off (not "
            "'verbose')");
  for (const char* ok : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    EXPECT_TRUE(parse_config(
        std::string("log_level = \"") + ok + "\"\n[http_server]\ninsecure_http = true\n", "/srv"))
        << ok;
  }
}

TEST(TrusteeConfigChecks, MalformedDefaultPolicyIdIsRefused) {
  auto c = parse_config(
      "[http_server]\ninsecure_http = true\n[attestation_service]\ndefault_policy_id = \"a/b\"\n",
      "/srv");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, "bad_config");
  EXPECT_EQ(c.error().message,
            "'attestation_service.default_policy_id' must be 1-128 characters of A-Z a-z 0-9 _ - "
            ". (not 'a/b')");
}

class TrusteeStartChecks : public ::testing::Test {
 protected:
  // A trustee over HTTPS with a self-signed certificate valid [not_before, not_after).
  Result<std::unique_ptr<Trustee>> create(TimePoint not_before, TimePoint not_after,
                                          const std::string& extra = "") {
    auto key = *crypto::Key::generate(crypto::KeyType::kEcP256);
    crypto::CertificateSpec spec;
    spec.subject = {{"CN", "localhost"}};
    spec.not_before = not_before;
    spec.not_after = not_after;
    auto cert = crypto::issue_certificate(spec, key, key, nullptr);
    EXPECT_TRUE(cert) << cert.error().to_string();
    EXPECT_TRUE(write_file_atomic(dir_.path() / "tls.crt", as_bytes(cert->pem())));
    EXPECT_TRUE(write_file_atomic(dir_.path() / "tls.key", as_bytes(*key.private_pem()), 0600));
    auto config = parse_config(
        "[http_server]\nsockets = [\"127.0.0.1:0\"]\nprivate_key = \"tls.key\"\n"
        "certificate = \"tls.crt\"\n" +
            extra,
        dir_.path());
    EXPECT_TRUE(config) << config.error().to_string();
    return Trustee::create(*config, clock_);
  }
  TempDir dir_;
  TimePoint now_ = from_unix_seconds(kStart);
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>(now_);
};

TEST_F(TrusteeStartChecks, ExpiredTlsCertificateIsRefused) {
  using std::chrono::hours;
  auto t = create(now_ - hours(48), now_ - hours(1));
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, "tls_certificate_expired") << t.error().to_string();
  EXPECT_NE(t.error().message.find("tls.crt' expired at "), std::string::npos) << t.error().message;
}

TEST_F(TrusteeStartChecks, NotYetValidTlsCertificateIsRefused) {
  using std::chrono::hours;
  auto t = create(now_ + hours(1), now_ + hours(48));
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, "tls_certificate_not_yet_valid") << t.error().to_string();
}

TEST_F(TrusteeStartChecks, SoonExpiringTlsCertificateIsAnnounced) {
  using std::chrono::hours;
  {
    LogCapture capture;
    auto t = create(now_ - hours(1), now_ + hours(24 * 6));
    ASSERT_TRUE(t) << t.error().to_string();
    EXPECT_NE(capture.text().find("tls.crt' expires at "), std::string::npos) << capture.text();
  }
  LogCapture capture;
  auto t = create(now_ - hours(1), now_ + hours(24 * 30));
  ASSERT_TRUE(t) << t.error().to_string();
  EXPECT_EQ(capture.text().find("expires at"), std::string::npos) << capture.text();
}

TEST_F(TrusteeStartChecks, UnknownDefaultPolicyIdIsAnnounced) {
  using std::chrono::hours;
  LogCapture capture;
  auto t = create(now_ - hours(1), now_ + hours(24 * 30),
                  "[attestation_service]\ndefault_policy_id = \"defualt_cpu\"\n");
  ASSERT_TRUE(t) << t.error().to_string();
  EXPECT_NE(capture.text().find("attestation_service.default_policy_id 'defualt_cpu' names no "
                                "stored attestation policy"),
            std::string::npos)
      << capture.text();
}

}  // namespace
}  // namespace coffer::trustee::testing
