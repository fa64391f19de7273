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

}  // namespace
}  // namespace coffer::trustee::as
