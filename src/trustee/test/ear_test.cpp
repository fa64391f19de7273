#include "trustee/as/ear.h"

#include <gtest/gtest.h>

namespace coffer::trustee::as {
namespace {

TEST(Ear, TiersFollowAr4si) {
  EXPECT_EQ(trust_tier(0), "none");
  EXPECT_EQ(trust_tier(-1), "none");
  EXPECT_EQ(trust_tier(1), "none");
  EXPECT_EQ(trust_tier(2), "affirming");
  EXPECT_EQ(trust_tier(31), "affirming");
  EXPECT_EQ(trust_tier(32), "warning");
  EXPECT_EQ(trust_tier(95), "warning");
  EXPECT_EQ(trust_tier(96), "contraindicated");
  EXPECT_EQ(trust_tier(-97), "contraindicated");
}

TEST(Ear, StatusIsWorstTier) {
  EXPECT_EQ(ear_status(Json::object()), "none");
  EXPECT_EQ(ear_status({{"executables", 3}, {"hardware", 0}}), "affirming");
  EXPECT_EQ(ear_status({{"executables", 3}, {"hardware", 32}}), "warning");
  EXPECT_EQ(ear_status({{"executables", 97}, {"hardware", 32}}), "contraindicated");
}

TEST(Ear, VectorExtractionValidates) {
  auto v = trust_vector_from({{"executables", 3}, {"hardware", 2}, {"unrelated", "x"}});
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, Json({{"executables", 3}, {"hardware", 2}}));
  EXPECT_EQ(trust_vector_from({{"hardware", 200}}).error().code, "bad_policy_result");
  EXPECT_EQ(trust_vector_from({{"hardware", "2"}}).error().code, "bad_policy_result");
}

// Item 9: the policy's reasons first, AR4SI's meaning of the value otherwise; worst tier first;
// affirming and "none" claims are not mentioned; hostile reason text is made printable.
TEST(Ear, DescribeAppraisalSaysWhichClaimFailedAndWhy) {
  Json claims = {
      {"submods",
       {{"cpu0",
         {{"ear.status", "contraindicated"},
          {"ear.trustworthiness-vector",
           {{"executables", 33}, {"hardware", 97}, {"configuration", 2}}},
          {"ear.veraison.policy-claims",
           {{"reasons",
             {{"executables", {"tdx.mr_td is not among the registered reference values"}}}}}}}}}}};
  EXPECT_EQ(describe_appraisal(claims),
            "hardware 97: unrecognized hardware or firmware; executables 33: tdx.mr_td is not "
            "among the registered reference values");
  claims["submods"]["cpu0"]["ear.trustworthiness-vector"] = {{"executables", 3}, {"hardware", 2}};
  EXPECT_EQ(describe_appraisal(claims), "");
  claims["submods"]["gpu0"] = {
      {"ear.trustworthiness-vector", {{"runtime-opaque", 96}}},
      {"ear.veraison.policy-claims", {{"reasons", {{"runtime-opaque", {"bad\x01\n"}}}}}}};
  EXPECT_EQ(describe_appraisal(claims), "gpu0: runtime-opaque 96: bad\\x01\\x0a");
  // What the attestation service stored (already escaped) is not escaped again.
  claims["submods"]["gpu0"]["ear.veraison.policy-claims"]["reasons"]["runtime-opaque"] =
      policy_reasons_from({{"reasons", {{"runtime-opaque", {"bad\x01\n"}}}}})["runtime-opaque"];
  EXPECT_EQ(describe_appraisal(claims), "gpu0: runtime-opaque 96: bad\\x01\\x0a");
  EXPECT_EQ(describe_appraisal(Json::array()), "");
  EXPECT_EQ(ar4si_meaning("executables", 33), "unrecognized run-time executables");
  EXPECT_EQ(ar4si_meaning("hardware", 99), "cryptographic validation of the evidence failed");
}

TEST(Ear, PolicyReasonsAreBoundedToAr4siClaims) {
  Json many = Json::array();
  for (int i = 0; i < 40; ++i) many.push_back("r" + std::to_string(i));
  Json out = policy_reasons_from(
      {{"reasons", {{"executables", many}, {"not-a-claim", {"x"}}, {"hardware", {1, "ok"}}}}});
  EXPECT_EQ(out["executables"].size(), 16U);
  EXPECT_FALSE(out.contains("not-a-claim"));
  EXPECT_EQ(out["hardware"], Json({"ok"}));
  EXPECT_EQ(policy_reasons_from({{"reasons", "text"}}), Json::object());
}

}  // namespace
}  // namespace coffer::trustee::as
