// The simulated TEE end to end: sim PKI + measurements -> quote service -> sim-tdx attester ->
// KbsClient -> in-process coffer-trustee with the sim root trusted, reference values from the
// measurement model and the development policy; and each way it must be refused.
#include <gtest/gtest.h>

#include "core/file.h"
#include "crypto/digest.h"
#include "evidence/sim/measure.h"
#include "evidence/sim/quote_service.h"
#include "evidence/sim/test/sim_test_util.h"
#include "evidence/tdx/ccel.h"
#include "evidence/tdx/quote.h"
#include "guest/aa/kbs_client.h"
#include "guest/aa/sim_attester.h"
#include "guest/test/sim_fixture.h"
#include "guest/test/trustee_fixture.h"
#include "jose/jwt.h"
#include "verifier/dcap/collateral_source.h"
#include "verifier/dcap/dcap_verifier.h"
#include "verifier/snp/snp_verifier.h"
#include "verifier/tdx/tdx_verifier.h"

namespace coffer::guest::aa {
namespace {

namespace sim = evidence::sim;
using testing::TempDir;
using testing::TrusteeFixture;
using SimEnclave = testing::SimEnclave;
using SimTrustee = testing::SimTrustee;

const std::string kInitData =
    "version = \"0.1.0\"\nalgorithm = \"sha384\"\n[data]\n\"policy.rego\" = \"package x\"\n";

const sim::SimPki& pki() { return sim::testing::shared_pki(); }

KbsClientOptions fast(std::optional<std::string> init_data = kInitData) {
  KbsClientOptions o;
  o.initial_backoff = std::chrono::milliseconds(0);
  o.max_retries = 1;
  o.init_data_toml = std::move(init_data);
  return o;
}

// One simulated enclave: its files, measurements and quote service.
TEST(SimEndToEnd, SimTdxReleasesTheSecret) {
  SimEnclave enclave;
  SimTrustee trustee(pki().root_ca);
  trustee.register_enclave(enclave);
  auto attester = make_attester("sim-tdx", {.quote_service_socket = enclave.socket()});
  ASSERT_TRUE(attester) << attester.error().to_string();
  EXPECT_EQ((*attester)->tee(), "tdx");
  KbsClient client(trustee.kbs().url(), **attester, fast());
  auto value = client.get_resource("default/key/sim");
  ASSERT_TRUE(value) << value.error().to_string();
  EXPECT_EQ(to_string(*value), "sim secret");
  auto claims = jose::jwt_peek_claims(*client.token());
  ASSERT_TRUE(claims);
  const Json& tdx = (*claims)["submods"]["cpu0"]["ear.veraison.annotated-evidence"]["tdx"];
  EXPECT_EQ(tdx["tee_root"], "simulated");
  EXPECT_EQ(tdx["quote"]["body"]["mr_td"], enclave.reference_values()["tdx.mr_td"]);
  // The attester's own init-data check agrees with the quote service.
  Bytes digest = crypto::sha384(as_bytes(kInitData));
  EXPECT_EQ((*attester)->check_init_data(digest), InitDataBinding::kMatches);
  EXPECT_EQ((*attester)->check_init_data(Bytes(48, 1)).error().code, "init_data_mismatch");
}

sim::SgxIdentity sgx_identity(std::uint8_t signer) {
  sim::SgxIdentity id;
  id.mr_signer.fill(signer);
  id.isv_prod_id = 1;
  id.isv_svn = 2;
  return id;
}

// sim-sgx: an SGX DCAP quote v3 through the sim PKI, verified by the SGX verifier, appraised by
// the development policy on sgx.mr_enclave / sgx.mr_signer; init-data bound through CONFIGID.
TEST(SimEndToEnd, SimSgxReleasesTheSecret) {
  SimEnclave enclave("agent v1", false, kInitData, sgx_identity(0x51));
  SimTrustee trustee(pki().root_ca);
  trustee.register_enclave(enclave);
  auto attester = make_attester("sim-sgx", {.quote_service_socket = enclave.socket()});
  ASSERT_TRUE(attester) << attester.error().to_string();
  EXPECT_EQ((*attester)->tee(), "sgx");
  KbsClient client(trustee.kbs().url(), **attester, fast());
  auto value = client.get_resource("default/key/sim");
  ASSERT_TRUE(value) << value.error().to_string();
  EXPECT_EQ(to_string(*value), "sim secret");
  auto claims = jose::jwt_peek_claims(*client.token());
  ASSERT_TRUE(claims);
  const Json& sgx = (*claims)["submods"]["cpu0"]["ear.veraison.annotated-evidence"]["sgx"];
  EXPECT_EQ(sgx["tee_root"], "simulated");
  EXPECT_EQ(sgx["body"]["mr_enclave"], enclave.reference_values()["sgx.mr_enclave"]);
  EXPECT_EQ(sgx["body"]["mr_signer"], hex_encode(Bytes(32, 0x51)));
  Bytes digest = crypto::sha384(as_bytes(kInitData));
  EXPECT_EQ((*attester)->check_init_data(digest), InitDataBinding::kMatches);
  EXPECT_EQ((*attester)->check_init_data(Bytes(48, 1)).error().code, "init_data_mismatch");
  EXPECT_EQ((*attester)->extend_runtime_measurement(3, Bytes(48, 0), "x").error().code,
            "not_supported");
}

TEST(SimEndToEnd, SimSgxAnotherSignerIsForbidden) {
  SimEnclave registered("agent v1", false, kInitData, sgx_identity(0x51));
  SimEnclave other_signer("agent v1", false, kInitData, sgx_identity(0x52));
  SimTrustee trustee(pki().root_ca);
  trustee.register_enclave(registered);
  SimAttester attester(SimAttester::Kind::kSgx, other_signer.socket());
  KbsClient client(trustee.kbs().url(), attester, fast());
  auto value = client.get_resource("default/key/sim");
  ASSERT_FALSE(value);
  EXPECT_EQ(value.error().code, "kbs_forbidden");
  auto claims = jose::jwt_peek_claims(*client.token());
  EXPECT_EQ((*claims)["submods"]["cpu0"]["ear.trustworthiness-vector"]["executables"], 33);
}

TEST(SimEndToEnd, SimSgxDefaultPolicyNeverAffirmsTheSimulatedRoot) {
  SimEnclave enclave("agent v1", false, kInitData, sgx_identity(0x51));
  SimTrustee trustee(pki().root_ca);
  trustee.register_enclave(enclave);
  trustee.kbs().set_attestation_policy(std::string(trustee::as::default_attestation_policy()));
  SimAttester attester(SimAttester::Kind::kSgx, enclave.socket());
  KbsClient client(trustee.kbs().url(), attester, fast());
  auto value = client.get_resource("default/key/sim");
  ASSERT_FALSE(value);
  EXPECT_EQ(value.error().code, "kbs_forbidden") << value.error().message;
}

const std::string kSnpInitData = "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n";

TEST(SimEndToEnd, SimSnpReleasesTheSecret) {
  SimEnclave enclave("agent v1", false, kSnpInitData);
  SimTrustee trustee(pki().root_ca);
  trustee.register_enclave(enclave);
  auto attester = make_attester("sim-snp", {.quote_service_socket = enclave.socket()});
  ASSERT_TRUE(attester) << attester.error().to_string();
  EXPECT_EQ((*attester)->tee(), "snp");
  KbsClient client(trustee.kbs().url(), **attester, fast(kSnpInitData));
  auto value = client.get_resource("default/key/sim");
  ASSERT_TRUE(value) << value.error().to_string() << "\n"
                     << jose::jwt_peek_claims(client.token().value_or(""))->dump(1);
  EXPECT_EQ(to_string(*value), "sim secret");
  auto claims = jose::jwt_peek_claims(*client.token());
  const Json& snp = (*claims)["submods"]["cpu0"]["ear.veraison.annotated-evidence"]["snp"];
  EXPECT_EQ(snp["tee_root"], "simulated");
  EXPECT_EQ(snp["crl_checked"], true);
  EXPECT_EQ((*attester)->check_init_data(crypto::sha256(as_bytes(kSnpInitData))),
            InitDataBinding::kMatches);
}

TEST(SimEndToEnd, SimSnpRefusedWhenTheSimArkIsNotTrusted) {
  SimEnclave enclave("agent v1", false, kSnpInitData);
  SimTrustee trustee(pki().root_ca, /*trust_sim_ark=*/false);
  trustee.register_enclave(enclave);
  SimAttester attester(SimAttester::Kind::kSnp, enclave.socket());
  KbsClient client(trustee.kbs().url(), attester, fast(kSnpInitData));
  auto token = client.attest();
  ASSERT_FALSE(token);
  EXPECT_EQ(token.error().code, "kbs_unauthorized");
  EXPECT_NE(token.error().message.find("ark_untrusted"), std::string::npos)
      << token.error().message;
}

TEST(SimEndToEnd, DefaultPolicyNeverAffirmsTheSimulatedRoot) {
  SimEnclave enclave;
  SimTrustee trustee(pki().root_ca);
  trustee.register_enclave(enclave);
  trustee.kbs().set_attestation_policy(std::string(trustee::as::default_attestation_policy()));
  SimAttester attester(SimAttester::Kind::kTdx, enclave.socket());
  KbsClient client(trustee.kbs().url(), attester, fast());
  auto value = client.get_resource("default/key/sim");
  ASSERT_FALSE(value);
  EXPECT_EQ(value.error().code, "kbs_forbidden") << value.error().message;
}

TEST(SimEndToEnd, ChangedMeasurementIsForbidden) {
  SimEnclave registered("agent v1");
  SimEnclave tampered("agent v1 with a backdoor");
  SimTrustee trustee(pki().root_ca);
  trustee.register_enclave(registered);
  SimAttester attester(SimAttester::Kind::kTdx, tampered.socket());
  KbsClient client(trustee.kbs().url(), attester, fast());
  auto value = client.get_resource("default/key/sim");
  ASSERT_FALSE(value);
  EXPECT_EQ(value.error().code, "kbs_forbidden");
  EXPECT_NE(value.error().message.find("PolicyDeny"), std::string::npos) << value.error().message;
  auto claims = jose::jwt_peek_claims(*client.token());
  EXPECT_EQ((*claims)["submods"]["cpu0"]["ear.trustworthiness-vector"]["executables"], 33);
}

TEST(SimEndToEnd, DebugTdIsForbidden) {
  SimEnclave enclave("agent v1", /*debug=*/true);
  SimTrustee trustee(pki().root_ca);
  trustee.register_enclave(enclave);
  SimAttester attester(SimAttester::Kind::kTdx, enclave.socket());
  KbsClient client(trustee.kbs().url(), attester, fast());
  auto value = client.get_resource("default/key/sim");
  ASSERT_FALSE(value);
  EXPECT_EQ(value.error().code, "kbs_forbidden");
  auto claims = jose::jwt_peek_claims(*client.token());
  EXPECT_EQ((*claims)["submods"]["cpu0"]["ear.trustworthiness-vector"]["configuration"], 97);
  EXPECT_EQ((*claims)["submods"]["cpu0"]["ear.status"], "contraindicated");
}

TEST(SimEndToEnd, WrongInitDataIsUnauthorized) {
  SimEnclave enclave;
  SimTrustee trustee(pki().root_ca);
  trustee.register_enclave(enclave);
  SimAttester attester(SimAttester::Kind::kTdx, enclave.socket());
  KbsClient client(trustee.kbs().url(), attester, fast(kInitData + "# changed\n"));
  auto token = client.attest();
  ASSERT_FALSE(token);
  EXPECT_EQ(token.error().code, "kbs_unauthorized");
  EXPECT_NE(token.error().message.find("init_data_mismatch"), std::string::npos)
      << token.error().message;
}

TEST(SimEndToEnd, UnknownRootIsUnauthorized) {
  SimEnclave enclave;
  // The trustee trusts another simulation root than the one that signed the evidence.
  sim::SimPkiOptions o;
  o.rsa_bits = 2048;
  auto other = sim::generate_sim_pki(o);
  ASSERT_TRUE(other);
  SimTrustee trustee(other->root_ca);
  trustee.register_enclave(enclave);
  SimAttester attester(SimAttester::Kind::kTdx, enclave.socket());
  KbsClient client(trustee.kbs().url(), attester, fast());
  auto token = client.attest();
  ASSERT_FALSE(token);
  EXPECT_EQ(token.error().code, "kbs_unauthorized");
  EXPECT_NE(token.error().message.find("AttestationFailed"), std::string::npos)
      << token.error().message;
}

// Replays the first evidence it produced in every later handshake.
class ReplayingAttester final : public Attester {
 public:
  explicit ReplayingAttester(Attester& inner) : inner_(inner) {}
  [[nodiscard]] std::string_view tee() const override { return inner_.tee(); }
  Result<Json> evidence(ByteView report_data) override {
    if (!first_) first_ = COFFER_TRY(inner_.evidence(report_data));
    return *first_;
  }
  Status extend_runtime_measurement(std::uint32_t i, ByteView d, std::string_view s) override {
    return inner_.extend_runtime_measurement(i, d, s);
  }
  Result<InitDataBinding> check_init_data(ByteView d) override { return inner_.check_init_data(d); }

 private:
  Attester& inner_;
  std::optional<Json> first_;
};

TEST(SimEndToEnd, ReplayedQuoteIsUnauthorized) {
  SimEnclave enclave;
  SimTrustee trustee(pki().root_ca);
  trustee.register_enclave(enclave);
  SimAttester sim_attester(SimAttester::Kind::kTdx, enclave.socket());
  ReplayingAttester replay(sim_attester);
  KbsClient first(trustee.kbs().url(), replay, fast());
  ASSERT_TRUE(first.attest());
  auto again = first.attest();  // new nonce, old quote
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, "kbs_unauthorized");
  EXPECT_NE(again.error().message.find("report_data_mismatch"), std::string::npos)
      << again.error().message;
}

TEST(SimEndToEnd, RuntimeExtensionReachesTheQuote) {
  SimEnclave enclave;
  SimAttester attester(SimAttester::Kind::kTdx, enclave.socket());
  Bytes digest = crypto::sha384(as_bytes("image pulled"));
  ASSERT_TRUE(attester.extend_runtime_measurement(3, digest, "image pulled"));
  auto ev = attester.evidence(Bytes(64, 0));
  ASSERT_TRUE(ev);
  auto quote = evidence::tdx::parse_quote(*base64_decode((*ev)["quote"].get<std::string>()));
  ASSERT_TRUE(quote);
  evidence::Fixed<48> expected{};
  evidence::tdx::extend_rtmr(expected, digest);
  EXPECT_EQ(quote->body.rtmr[3], expected);
  EXPECT_EQ(attester.extend_runtime_measurement(1, digest, "x").error().code, "bad_request");
}

TEST(Attesters, NothingFoundIsAnErrorNeverSample) {
  AttesterOptions o;
  o.tsm_report_dir = "/nonexistent/tsm";
  o.gramine_attestation_dir = "/nonexistent/attestation";
  auto a = detect_attester(o);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, "tee_not_found");
  EXPECT_EQ(make_attester("sim-tdx", o).error().code, "tee_not_found");
  EXPECT_EQ(make_attester("tdx", o).error().code, "tee_not_found");
  EXPECT_EQ(make_attester("sgx", o).error().code, "tee_not_found");
  EXPECT_EQ(make_attester("nonsense", o).error().code, "unknown_tee");
}

}  // namespace
}  // namespace coffer::guest::aa
