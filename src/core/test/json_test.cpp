#include "core/json.h"

#include <gtest/gtest.h>

namespace coffer {
namespace {

TEST(Json, ParsesAndRejectsMalformed) {
  EXPECT_TRUE(parse_json(R"({"a":[1,2]})"));
  EXPECT_EQ(parse_json("{").error().code, "bad_json");
  EXPECT_EQ(parse_json("").error().code, "bad_json");
}

TEST(Json, BoundsSizeAndDepth) {
  EXPECT_EQ(parse_json("[1]", {.max_bytes = 2}).error().code, "too_large");
  std::string deep(100, '[');
  deep += std::string(100, ']');
  EXPECT_EQ(parse_json(deep, {.max_depth = 64}).error().code, "bad_json");
  EXPECT_TRUE(parse_json(deep, {.max_depth = 100}));
}

TEST(Json, TypedFields) {
  auto j = *parse_json(R"({"s":"x","n":1,"o":{}})");
  EXPECT_EQ(*json_string(j, "s"), "x");
  EXPECT_EQ(json_string(j, "n").error().code, "bad_json");
  EXPECT_EQ(json_string(j, "missing").error().code, "bad_json");
  EXPECT_TRUE(json_object(j, "o"));
}

}  // namespace
}  // namespace coffer
