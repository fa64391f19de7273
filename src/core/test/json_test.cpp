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

TEST(Json, RefusesRepeatedMemberNames) {
  // The collateral attack: a second copy of a signed member must never replace the first.
  auto e = parse_json(R"({"tcbInfo":{"v":1},"tcbInfo":{"v":2},"signature":"00"})");
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, "bad_json");
  EXPECT_NE(e.error().message.find("\"tcbInfo\""), std::string::npos) << e.error().message;
  // Names are compared after unescaping: "a" and "\u0061" are the same member.
  EXPECT_FALSE(parse_json(R"({"a":1,"\u0061":2})"));
  // Nested objects have their own names; the same name at another level is fine.
  EXPECT_TRUE(parse_json(R"({"a":{"a":1},"b":[{"a":1},{"a":2}]})"));
  EXPECT_FALSE(parse_json(R"({"a":{"x":1,"y":2,"x":3}})"));
  EXPECT_FALSE(parse_json(R"([{"k":1},{"k":1,"k":1}])"));
}

TEST(Json, RefusesInvalidUtf8AndQuotesSafely) {
  EXPECT_EQ(parse_json("{\"a\":\"\xff\"}").error().code, "bad_json");
  EXPECT_EQ(parse_json("{\"a\":\"\xe2\x82\"}").error().code, "bad_json");  // cut character
  // The parser's message quotes the bad token; ours must still be serialisable (ASCII only).
  auto bad = parse_json("{\"a\":\"\xff\xfe\"}");
  ASSERT_FALSE(bad);
  for (char c : bad.error().message)
    EXPECT_LT(static_cast<unsigned char>(c), 0x80) << bad.error().message;
  // A repeated name with control bytes and a long tail is quoted escaped and shortened.
  std::string name = "\\u001b[31m" + std::string(200, 'z');
  auto e = parse_json("{\"" + name + "\":1,\"" + name + "\":2}");
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().message.find('\x1b'), std::string::npos);
  EXPECT_LT(e.error().message.size(), 200U);
  // The error text is itself valid JSON content.
  EXPECT_NO_THROW((void)Json(e.error().message).dump());
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
