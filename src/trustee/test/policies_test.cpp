// The shipped default policies, evaluated by the Rego engine on claims of each TEE.
#include <gtest/gtest.h>

#include "policy/policy.h"
#include "trustee/as/attestation_service.h"
#include "trustee/as/ear.h"

namespace coffer::trustee::as {
namespace {

class DefaultAttestationPolicy : public ::testing::Test {
 protected:
  void SetUp() override { use(default_attestation_policy()); }
  void use(std::string_view text) {
    policy::CompileOptions opts;
    opts.builtins["query_reference_value"] = {
        1, [this](std::span<const Json> args) -> Result<Json> {
          auto it = refs_.find(args[0].get<std::string>());
          return it == refs_.end() ? Json::array() : it.value();
        }};
    auto p = policy::compile({{"attestation.rego", std::string(text)}}, opts);
    ASSERT_TRUE(p) << p.error().to_string();
    policy_ = *p;
  }
  std::string status_for(const Json& input) {
    auto r = policy_->evaluate("data.policy", input);
    EXPECT_TRUE(r) << r.error().to_string();
    auto v = trust_vector_from(r->value.value_or(Json::object()));
    EXPECT_TRUE(v);
    vector_ = *v;
    return ear_status(*v);
  }
  Json refs_ = Json::object();
  Json vector_;
  std::shared_ptr<const policy::CompiledPolicy> policy_;
};

// Sample evidence is unsigned: the default policy never affirms it, registered svn or not.
TEST_F(DefaultAttestationPolicy, NeverAffirmsSample) {
  Json input = {{"sample", {{"svn", "1"}, {"report_data", "00"}}},
                {"runtime_data_claims", Json::object()}};
  EXPECT_EQ(status_for(input), "contraindicated");
  EXPECT_EQ(vector_["hardware"], 97);
  refs_["sample.svn"] = Json::array({"1"});
  EXPECT_EQ(status_for(input), "contraindicated");
  EXPECT_EQ(vector_["hardware"], 97);
}

// Only the development policy affirms sample evidence, and only with its svn registered.
TEST_F(DefaultAttestationPolicy, DevelopmentPolicyAffirmsSampleWithRegisteredSvn) {
  use(development_attestation_policy());
  Json input = {{"sample", {{"svn", "1"}, {"report_data", "00"}}},
                {"runtime_data_claims", Json::object()}};
  EXPECT_EQ(status_for(input), "warning");
  EXPECT_EQ(vector_["executables"], 33);
  refs_["sample.svn"] = Json::array({"1"});
  EXPECT_EQ(status_for(input), "affirming");
  EXPECT_EQ(vector_["executables"], 3);
  EXPECT_EQ(vector_["hardware"], 0);
  refs_["sample.svn"] = Json::array({"2"});
  EXPECT_EQ(status_for(input), "warning");
}

TEST_F(DefaultAttestationPolicy, UnknownEvidenceIsContraindicated) {
  EXPECT_EQ(status_for(Json::object({{"runtime_data_claims", Json::object()}})), "contraindicated");
}

TEST_F(DefaultAttestationPolicy, SimulatedTdxRootNeverAffirmsHardware) {
  refs_["tdx.mr_td"] = Json::array({"aa"});
  refs_["tdx.rtmr_0"] = Json::array({"00"});
  refs_["tdx.rtmr_1"] = Json::array({"01"});
  refs_["tdx.rtmr_2"] = Json::array({"02"});
  Json tdx = {{"quote",
               {{"body", {{"mr_td", "aa"}, {"rtmr_0", "00"}, {"rtmr_1", "01"}, {"rtmr_2", "02"}}}}},
              {"tee_root", "simulated"},
              {"tcb_status", "UpToDate"},
              {"verification_mode", "full"},
              {"crls_checked", true},
              {"td_attributes", {{"debug", false}}}};
  EXPECT_EQ(status_for({{"tdx", tdx}}), "contraindicated");
  EXPECT_EQ(vector_["hardware"], 97);
  EXPECT_EQ(vector_["executables"], 3);
  tdx["tee_root"] = "intel";
  EXPECT_EQ(status_for({{"tdx", tdx}}), "affirming");
  tdx["td_attributes"]["debug"] = true;
  EXPECT_EQ(status_for({{"tdx", tdx}}), "warning");
}

// The policies say in words why a claim is not affirming (issue 12 item 9): the reasons reach
// the EAR and the KBS's 403, and name the reference value that did not match.
TEST_F(DefaultAttestationPolicy, ReasonsNameTheClaimThatFailed) {
  for (auto text : {default_attestation_policy(), development_attestation_policy()}) {
    use(text);
    refs_["tdx.mr_td"] = Json::array({"aa"});
    refs_["tdx.rtmr_0"] = Json::array({"00"});
    refs_["tdx.rtmr_1"] = Json::array({"01"});
    refs_["tdx.rtmr_2"] = Json::array({"02"});
    Json tdx = {
        {"quote",
         {{"body", {{"mr_td", "bb"}, {"rtmr_0", "00"}, {"rtmr_1", "01"}, {"rtmr_2", "02"}}}}},
        {"tee_root", "intel"},
        {"tcb_status", "UpToDate"},
        {"verification_mode", "full"},
        {"crls_checked", true},
        {"td_attributes", {{"debug", true}}}};
    auto r = policy_->evaluate("data.policy", {{"tdx", tdx}});
    ASSERT_TRUE(r) << r.error().to_string();
    Json reasons = policy_reasons_from(*r->value);
    EXPECT_EQ(reasons,
              Json({{"executables", {"tdx.mr_td is not among the registered reference values"}},
                    {"configuration",
                     {"tdx.td_attributes.debug is true: the host can read a debug TD"}}}))
        << reasons.dump();
    tdx["quote"]["body"]["mr_td"] = "aa";
    tdx["td_attributes"]["debug"] = false;
    tdx["tee_root"] = "other";
    tdx["tcb_status"] = "OutOfDate";
    r = policy_->evaluate("data.policy", {{"tdx", tdx}});
    ASSERT_TRUE(r) << r.error().to_string();
    reasons = policy_reasons_from(*r->value);
    ASSERT_TRUE(reasons.contains("hardware")) << reasons.dump();
    EXPECT_FALSE(reasons.contains("executables")) << reasons.dump();
    EXPECT_NE(reasons["hardware"].dump().find("tdx.tcb_status is OutOfDate"), std::string::npos)
        << reasons.dump();
    EXPECT_NE(reasons["hardware"].dump().find("tdx.tee_root is other"), std::string::npos)
        << reasons.dump();
    // SNP: the measurement's reference value name.
    r = policy_->evaluate("data.policy", {{"snp", {{"measurement", "m"}, {"crl_checked", true}}}});
    ASSERT_TRUE(r) << r.error().to_string();
    reasons = policy_reasons_from(*r->value);
    EXPECT_EQ(reasons["executables"],
              Json({"snp.measurement is not among the registered reference values"}));
    refs_ = Json::object();
  }
}

// Init-data: with tdx.mr_config_id / snp.host_data registered (what `coffer sim measure
// --init-data` registers), a TEE that binds other init-data (the same image launched with another
// agent policy or trustee) is not affirming, in both policies, and the reason says so; without
// such reference values the init-data is not judged.
TEST_F(DefaultAttestationPolicy, InitDataMustBeARegisteredOneWhenAnyIs) {
  for (auto text : {default_attestation_policy(), development_attestation_policy()}) {
    use(text);
    refs_ = Json::object();
    refs_["tdx.mr_td"] = Json::array({"aa"});
    refs_["tdx.rtmr_0"] = Json::array({"00"});
    refs_["tdx.rtmr_1"] = Json::array({"01"});
    refs_["tdx.rtmr_2"] = Json::array({"02"});
    Json tdx = {{"quote",
                 {{"body",
                   {{"mr_td", "aa"},
                    {"rtmr_0", "00"},
                    {"rtmr_1", "01"},
                    {"rtmr_2", "02"},
                    {"mr_config_id", "c1"}}}}},
                {"tee_root", "intel"},
                {"tcb_status", "UpToDate"},
                {"verification_mode", "full"},
                {"crls_checked", true},
                {"td_attributes", {{"debug", false}}}};
    EXPECT_EQ(status_for({{"tdx", tdx}}), "affirming");  // none registered: not judged
    refs_["tdx.mr_config_id"] = Json::array({"c1", "c2"});
    EXPECT_EQ(status_for({{"tdx", tdx}}), "affirming");
    tdx["quote"]["body"]["mr_config_id"] = "c3";
    EXPECT_EQ(status_for({{"tdx", tdx}}), "warning");
    EXPECT_EQ(vector_["configuration"], 36);
    auto r = policy_->evaluate("data.policy", {{"tdx", tdx}});
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(policy_reasons_from(*r->value)["configuration"],
              Json({"tdx.mr_config_id (the init-data) is not among the registered reference "
                    "values"}));

    refs_["snp.measurement"] = Json::array({"m"});
    Json snp = {
        {"measurement", "m"},           {"crl_checked", true}, {"policy_debug_allowed", "false"},
        {"policy_migrate_ma", "false"}, {"vmpl", 0},           {"init_data", "h1"}};
    status_for({{"snp", snp}});
    EXPECT_EQ(vector_["configuration"], 2);
    refs_["snp.host_data"] = Json::array({"h2"});
    status_for({{"snp", snp}});
    EXPECT_EQ(vector_["configuration"], 36);
    snp["init_data"] = "h2";
    status_for({{"snp", snp}});
    EXPECT_EQ(vector_["configuration"], 2);
  }
}

// Intel hardware is affirmed only after a full DCAP verification with both CRLs checked; a
// chain-only verification (or one without CRLs) never is, whatever else the claims say.
TEST_F(DefaultAttestationPolicy, DcapNeedsFullVerificationWithCrls) {
  for (const char* tee : {"tdx", "sgx"}) {
    Json claims = {{"tee_root", "intel"},
                   {"tcb_status", "UpToDate"},
                   {"verification_mode", "full"},
                   {"crls_checked", true}};
    status_for({{tee, claims}});
    EXPECT_EQ(vector_["hardware"], 2) << tee;
    claims["crls_checked"] = false;
    status_for({{tee, claims}});
    EXPECT_EQ(vector_["hardware"], 97) << tee;
    claims["crls_checked"] = true;
    claims["verification_mode"] = "chain_only";
    status_for({{tee, claims}});
    EXPECT_EQ(vector_["hardware"], 97) << tee;
    claims.erase("verification_mode");
    status_for({{tee, claims}});
    EXPECT_EQ(vector_["hardware"], 97) << tee;
  }
}

// AMD hardware is affirmed only when AMD's CRL was checked, or the configuration waives it.
TEST_F(DefaultAttestationPolicy, SnpNeedsCheckedRevocationUnlessWaived) {
  Json snp = {{"tee_root", "amd"},
              {"reported_tcb_bootloader", "3"},
              {"reported_tcb_tee", "0"},
              {"reported_tcb_snp", "8"},
              {"reported_tcb_microcode", "115"},
              {"crl_checked", true},
              {"unchecked_revocation_allowed", false}};
  status_for({{"snp", snp}});
  EXPECT_EQ(vector_["hardware"], 2);
  snp["crl_checked"] = false;
  status_for({{"snp", snp}});
  EXPECT_EQ(vector_["hardware"], 97);
  snp.erase("crl_checked");
  status_for({{"snp", snp}});
  EXPECT_EQ(vector_["hardware"], 97);
  snp["unchecked_revocation_allowed"] = true;
  status_for({{"snp", snp}});
  EXPECT_EQ(vector_["hardware"], 2);
}

TEST(DefaultResourcePolicy, AllowsOnlyWhenEverySubmodAffirms) {
  auto p = policy::compile({{"default_resource.rego", std::string(default_resource_policy())}});
  ASSERT_TRUE(p) << p.error().to_string();
  Json data = {{"plugin", "resource"},
               {"resource-path", {"default", "key", "1"}},
               {"query", Json::object()}};
  auto allow = [&](const Json& claims) {
    auto r = (*p)->evaluate("data.policy.allow", claims, data);
    EXPECT_TRUE(r);
    return r->value && *r->value == Json(true);
  };
  EXPECT_TRUE(allow({{"submods", {{"cpu0", {{"ear.status", "affirming"}}}}}}));
  EXPECT_FALSE(allow({{"submods", {{"cpu0", {{"ear.status", "warning"}}}}}}));
  EXPECT_FALSE(
      allow({{"submods",
              {{"cpu0", {{"ear.status", "affirming"}}}, {"gpu0", {{"ear.status", "none"}}}}}}));
  EXPECT_FALSE(allow({{"submods", Json::object()}}));
  EXPECT_FALSE(allow(Json::object()));
}

}  // namespace
}  // namespace coffer::trustee::as
