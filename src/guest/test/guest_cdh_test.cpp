// AttestationAgent and DataHub against an in-process coffer-trustee with the simulated TEE: token
// cache and re-attestation (pinned clock), the AAEL event log bound to RTMR3 and sent with the
// evidence, resources, the ocicrypt key provider and sealed secrets (good, forged, unknown key,
// malformed, truncated).
#include <gtest/gtest.h>

#include <thread>

#include "crypto/digest.h"
#include "crypto/pkey.h"
#include "evidence/tdx/quote.h"
#include "guest/test/guest_env.h"
#include "jose/jwk.h"
#include "jose/jws.h"
#include "jose/jwt.h"

namespace coffer::guest {
namespace {

using testing::GuestEnv;

// RTMR3 after the INIT entry and `events` from zero, as TDX computes it (TDX module
// TDG.MR.RTMR.EXTEND: RTMR := SHA-384(RTMR || digest)).
Bytes replay_rtmr3(const std::vector<MeasurementEvent>& events) {
  Bytes rtmr(48, 0);
  auto extend = [&](const std::string& line) {
    Bytes input = rtmr;
    Bytes d = crypto::sha384(as_bytes(line));
    input.insert(input.end(), d.begin(), d.end());
    rtmr = crypto::sha384(input);
  };
  extend("INIT sha384/" + std::string(96, '0'));
  for (const auto& e : events) extend(e.line());
  return rtmr;
}

Bytes quote_rtmr3(const Json& evidence) {
  auto raw = base64_decode(evidence.at("quote").get<std::string>());
  EXPECT_TRUE(raw);
  auto quote = evidence::tdx::parse_quote(*raw);
  EXPECT_TRUE(quote) << quote.error().to_string();
  return Bytes(quote->body.rtmr[3].begin(), quote->body.rtmr[3].end());
}

const MeasurementEvent kPull{"github.com/confidential-containers", "PullImage",
                             R"({"image":"busybox","digest":"sha256:0c0c"})"};
const MeasurementEvent kCreate{"coffer.dev/agent", "CreateContainer",
                               R"({"id":"c1","decision":"allow"})"};

TEST(AttestationAgent, TokenIsCachedUntilExpiryThenAttestsAgain) {
  GuestEnv env;
  auto t1 = env.aa().token();
  ASSERT_TRUE(t1) << t1.error().to_string();
  EXPECT_EQ(env.evidence_count(), 1);
  auto t2 = env.aa().token();
  ASSERT_TRUE(t2);
  EXPECT_EQ(*t2, *t1);
  EXPECT_EQ(env.evidence_count(), 1);  // cached
  auto value = env.aa().get_resource("kbs:///default/key/sim");
  ASSERT_TRUE(value) << value.error().to_string();
  EXPECT_EQ(to_string(*value), "sim secret");
  EXPECT_EQ(env.evidence_count(), 1);  // the cached token served the resource too

  // Past the token's exp: the next call attests again.
  auto claims = jose::jwt_peek_claims(*t1);
  ASSERT_TRUE(claims && claims->contains("exp"));
  env.clock().set(from_unix_seconds((*claims)["exp"].get<std::int64_t>() + 1));
  auto t3 = env.aa().token();
  ASSERT_TRUE(t3) << t3.error().to_string();
  EXPECT_EQ(env.evidence_count(), 2);
  // Back to the trustee's time: the new token is cached in turn.
  env.clock().set(std::chrono::system_clock::now());
  EXPECT_TRUE(env.aa().get_resource("default/key/sim"));
  EXPECT_EQ(env.evidence_count(), 2);
}

TEST(AttestationAgent, EventLogIsBoundToRtmr3AndSentWithTheEvidence) {
  GuestEnv env;
  ASSERT_TRUE(env.aa().extend(kPull));
  ASSERT_TRUE(env.aa().extend(kCreate));
  EXPECT_EQ(env.aa().event_log(), (std::vector<MeasurementEvent>{kPull, kCreate}));
  const std::string text = env.aa().event_log_text();
  EXPECT_EQ(text, "INIT sha384/" + std::string(96, '0') + "\n" + kPull.line() + "\n" +
                      kCreate.line() + "\n");

  auto ev = env.aa().evidence(as_bytes("workload nonce"));
  ASSERT_TRUE(ev) << ev.error().to_string();
  EXPECT_EQ(ev->at("aa_eventlog"), text);
  EXPECT_EQ(quote_rtmr3(*ev), replay_rtmr3({kPull, kCreate}));
  // REPORTDATA = SHA-384(runtime data), zero-padded.
  auto raw = base64_decode(ev->at("quote").get<std::string>());
  auto quote = evidence::tdx::parse_quote(*raw);
  Bytes expected = crypto::sha384(as_bytes("workload nonce"));
  expected.resize(64, 0);
  EXPECT_EQ(Bytes(quote->body.report_data.begin(), quote->body.report_data.end()), expected);

  // The trustee replays the log against RTMR3, affirms the enclave and hands the events to the
  // policy as the claim "aael".
  auto value = env.aa().get_resource("default/key/sim");
  ASSERT_TRUE(value) << value.error().to_string();
  auto claims = jose::jwt_peek_claims(*env.aa().token());
  ASSERT_TRUE(claims);
  const Json& tdx = (*claims)["submods"]["cpu0"]["ear.veraison.annotated-evidence"]["tdx"];
  ASSERT_TRUE(tdx.contains("aael")) << tdx.dump();
  EXPECT_EQ(tdx["aael"]["github.com/confidential-containers/PullImage"],
            Json::array({kPull.content}));
  EXPECT_EQ(tdx["aael"]["coffer.dev/agent/CreateContainer"], Json::array({kCreate.content}));
}

// Sends an altered attestation agent event log with otherwise genuine evidence.
class AlteredLogAttester final : public aa::Attester {
 public:
  AlteredLogAttester(aa::Attester& inner, std::string log) : inner_(inner), log_(std::move(log)) {}
  [[nodiscard]] std::string_view tee() const override { return inner_.tee(); }
  Result<Json> evidence(ByteView report_data) override {
    Json ev = COFFER_TRY(inner_.evidence(report_data));
    ev["aa_eventlog"] = log_;
    return ev;
  }
  Status extend_runtime_measurement(std::uint32_t i, ByteView d, std::string_view e) override {
    return inner_.extend_runtime_measurement(i, d, e);
  }
  Result<aa::InitDataBinding> check_init_data(ByteView digest) override {
    return inner_.check_init_data(digest);
  }

 private:
  aa::Attester& inner_;
  std::string log_;
};

TEST(AttestationAgent, TrusteeRefusesAnEventLogThatDoesNotReplay) {
  testing::SimTrustee trustee(testing::pki().root_ca);
  testing::SimEnclave enclave;
  trustee.register_enclave(enclave);
  aa::SimAttester sim(aa::SimAttester::Kind::kTdx, enclave.socket());
  // What really ran: INIT, then PullImage and CreateContainer into RTMR3.
  const std::string init = "INIT sha384/" + std::string(96, '0');
  for (const std::string& line : {init, kPull.line(), kCreate.line()})
    ASSERT_TRUE(sim.extend_runtime_measurement(3, crypto::sha384(as_bytes(line)), line));
  aa::KbsClientOptions o;
  o.initial_backoff = std::chrono::milliseconds(0);
  o.max_retries = 0;
  o.init_data_toml = testing::kSimInitData;

  // The true log is accepted.
  AlteredLogAttester honest(sim, init + "\n" + kPull.line() + "\n" + kCreate.line() + "\n");
  aa::KbsClient good(trustee.kbs().url(), honest, o);
  auto token = good.attest();
  ASSERT_TRUE(token) << token.error().to_string();

  // A log that hides the container creation does not replay to RTMR3.
  AlteredLogAttester hiding(sim, init + "\n" + kPull.line() + "\n");
  aa::KbsClient refused(trustee.kbs().url(), hiding, o);
  auto r = refused.attest();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "kbs_unauthorized");
  EXPECT_NE(r.error().message.find("aa_eventlog_rtmr_mismatch"), std::string::npos)
      << r.error().message;

  // A malformed log is bad evidence.
  AlteredLogAttester malformed(sim, "INIT/sha384 " + std::string(96, '0') + "\n");
  aa::KbsClient bad(trustee.kbs().url(), malformed, o);
  r = bad.attest();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("bad_evidence"), std::string::npos) << r.error().message;
}

TEST(AttestationAgent, EventsMustBeAaelFields) {
  GuestEnv env;
  for (const auto& bad : {MeasurementEvent{"has space", "Op", "c"}, MeasurementEvent{"d", "", "c"},
                          MeasurementEvent{"d", "Op", "line\nbreak"},
                          MeasurementEvent{"d", "Op", std::string(kMaxEventFieldBytes + 1, 'x')}}) {
    auto s = env.aa().extend(bad);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, "bad_event");
  }
  EXPECT_TRUE(env.aa().event_log().empty());
  auto ev = env.aa().evidence(as_bytes("x"));
  ASSERT_TRUE(ev);
  EXPECT_FALSE(ev->contains("aa_eventlog"));
  EXPECT_EQ(quote_rtmr3(*ev), Bytes(48, 0));
}

TEST(AttestationAgent, SnpHasNoRuntimeRegisters) {
  GuestEnv env(aa::SimAttester::Kind::kSnp);
  EXPECT_EQ(env.aa().tee(), "snp");
  auto s = env.aa().extend(kPull);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, "not_supported");
  EXPECT_TRUE(env.aa().event_log().empty());
  auto value = env.aa().get_resource("default/key/sim");
  ASSERT_TRUE(value) << value.error().to_string();
  EXPECT_EQ(to_string(*value), "sim secret");
}

TEST(AttestationAgent, WithoutKbsTokenAndResourcesFail) {
  testing::SimEnclave enclave;
  AttestationAgent aa(
      std::make_unique<aa::SimAttester>(aa::SimAttester::Kind::kTdx, enclave.socket()),
      GuestConfig{});
  EXPECT_EQ(aa.token().error().code, "no_kbs");
  EXPECT_EQ(aa.get_resource("default/key/sim").error().code, "no_kbs");
  EXPECT_TRUE(aa.evidence(as_bytes("x")));  // evidence needs no KBS
}

TEST(AttestationAgent, ConcurrentResourcesAndExtensionsStayConsistent) {
  GuestEnv env;
  constexpr int kThreads = 8;
  constexpr int kRounds = 4;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        if (!env.aa().extend(
                {"coffer.dev/test", "Op", std::to_string(t) + "-" + std::to_string(i)}))
          ++failures;
        auto v = env.aa().get_resource("default/key/sim");
        if (!v || to_string(*v) != "sim secret") ++failures;
        auto ev = env.aa().evidence(as_bytes("r"));
        if (!ev) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto log = env.aa().event_log();
  EXPECT_EQ(log.size(), static_cast<std::size_t>(kThreads * kRounds));
  auto ev = env.aa().evidence(as_bytes("final"));
  ASSERT_TRUE(ev);
  EXPECT_EQ(quote_rtmr3(*ev), replay_rtmr3(log));
  // One handshake served every thread, one quote read RTMR3 for the INIT entry; the rest are
  // the evidence() calls.
  EXPECT_EQ(env.evidence_count(), 1 + 1 + (kThreads * kRounds) + 1);
}

// --- data hub ---

TEST(DataHub, ResourcesAndKeyProvider) {
  GuestEnv env;
  env.kbs().put_resource("default/image-key/k1", std::string(32, 'k'));
  env.kbs().put_resource("default/image-key/short", "short");
  auto key = env.cdh().unwrap_key("kbs:///default/image-key/k1");
  ASSERT_TRUE(key) << key.error().to_string();
  EXPECT_EQ(*key, Bytes(32, 'k'));
  EXPECT_EQ(env.cdh().unwrap_key("kbs:///default/image-key/short").error().code, "bad_key");
  EXPECT_EQ(env.cdh().unwrap_key("default/image-key/k1").error().code, "bad_resource_path");
  EXPECT_EQ(env.cdh().unwrap_key("kbs:///default/image-key/missing").error().code, "kbs_not_found");
  auto r = env.cdh().get_resource("kbs:///default/key/sim");
  ASSERT_TRUE(r);
  EXPECT_EQ(to_string(*r), "sim secret");
  EXPECT_EQ(env.cdh().get_resource("kbs:///default/../sim").error().code, "bad_resource_path");
}

class SealedSecret : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.kbs().put_resource("default/sealed-secret-key/1",
                            jose::key_to_jwk(key_.public_key())->dump());
    env_.kbs().put_resource("default/sealed-secret/test", "top secret");
  }

  static Json vault(const std::string& name = "kbs:///default/sealed-secret/test") {
    return {{"version", "0.1.0"},
            {"type", "vault"},
            {"provider", "kbs"},
            {"name", name},
            {"provider_settings", Json::object()},
            {"annotations", Json::object()}};
  }

  std::string seal(const Json& payload, const crypto::Key& key,
                   const Json& header = {{"kid", "kbs:///default/sealed-secret-key/1"}}) {
    auto jws = jose::jws_sign(as_bytes(payload.dump()), key, jose::JwsAlg::kES256, header);
    EXPECT_TRUE(jws) << jws.error().to_string();
    return "sealed." + *jws;
  }

  void expect_refused(const std::string& sealed, const std::string& code) {
    auto r = env_.cdh().unseal(sealed);
    ASSERT_FALSE(r) << sealed;
    EXPECT_EQ(r.error().code, code) << r.error().message;
  }

  GuestEnv env_;
  crypto::Key key_ = *crypto::Key::generate(crypto::KeyType::kEcP256);
  crypto::Key other_ = *crypto::Key::generate(crypto::KeyType::kEcP256);
};

TEST_F(SealedSecret, GoodSignatureUnseals) {
  std::string sealed = seal(vault(), key_);
  EXPECT_TRUE(DataHub::is_sealed(sealed));
  EXPECT_FALSE(DataHub::is_sealed("plain value"));
  auto r = env_.cdh().unseal(sealed);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(to_string(*r), "top secret");
}

TEST_F(SealedSecret, ForgedSignatureIsRefused) {
  expect_refused(seal(vault(), other_), "sealed_secret_signature");
  // The payload of another (validly signed) secret spliced under this signature.
  std::string good = seal(vault(), key_);
  std::string evil = seal(vault("kbs:///default/key/sim"), other_);
  auto parts = [](const std::string& s) {
    auto a = s.find('.', 7);
    auto b = s.find('.', a + 1);
    return std::tuple{s.substr(0, a), s.substr(a + 1, b - a - 1), s.substr(b + 1)};
  };
  auto [gh, gp, gs] = parts(good);
  auto [eh, ep, es] = parts(evil);
  expect_refused(gh + "." + ep + "." + gs, "sealed_secret_signature");
}

TEST_F(SealedSecret, UnknownOrMissingKeyIsRefused) {
  expect_refused(seal(vault(), key_, {{"kid", "kbs:///default/sealed-secret-key/2"}}),
                 "sealed_secret_unknown_key");
  expect_refused(seal(vault(), key_, Json::object()), "sealed_secret_unknown_key");
}

TEST_F(SealedSecret, MalformedAndTruncatedAreRefused) {
  std::string good = seal(vault(), key_);
  expect_refused("plain", "bad_sealed_secret");
  expect_refused("sealed.", "bad_sealed_secret");
  expect_refused(good.substr(0, good.rfind('.')), "bad_sealed_secret");         // no signature part
  expect_refused(good.substr(0, good.size() - 10), "sealed_secret_signature");  // cut signature
  expect_refused("sealed." + std::string(kMaxSealedSecretBytes, 'a') + "..", "bad_sealed_secret");
  // CoCo's documentation example: dummy header and signature are not accepted.
  expect_refused(
      "sealed.fakejwsheader.ewogICAgInZlcnNpb24iOiAiMC4xLjAiLAogICAgInR5cGUiOiAidmF1bHQiLAogICAg"
      "Im5hbWUiOiAia2JzOi8vL2RlZmF1bHQvc2VhbGVkLXNlY3JldC90ZXN0IiwKICAgICJwcm92aWRlciI6ICJrYnMi"
      "LAogICAgInByb3ZpZGVyX3NldHRpbmdzIjoge30sCiAgICAiYW5ub3RhdGlvbnMiOiB7fQp9Cg.fakesignature",
      "bad_sealed_secret");
}

TEST_F(SealedSecret, OnlySignedVaultSecretsOfTheKbs) {
  Json envelope = vault();
  envelope["type"] = "envelope";
  expect_refused(seal(envelope, key_), "bad_sealed_secret");
  Json other_provider = vault();
  other_provider["provider"] = "aliyun";
  expect_refused(seal(other_provider, key_), "bad_sealed_secret");
  expect_refused(seal(vault("https://example/secret"), key_), "bad_sealed_secret");
  Json version = vault();
  version["version"] = "0.2.0";
  expect_refused(seal(version, key_), "bad_sealed_secret");
  Json settings = vault();
  settings["provider_settings"] = "x";
  expect_refused(seal(settings, key_), "bad_sealed_secret");
  // Signed, well-formed, but the named resource does not exist.
  expect_refused(seal(vault("kbs:///default/sealed-secret/none"), key_), "kbs_not_found");
}

}  // namespace
}  // namespace coffer::guest
