#include "jose/jcs.h"

#include <bit>
#include <cstdint>
#include <limits>

#include <gtest/gtest.h>

#include "core/bytes.h"

namespace coffer::jose {
namespace {

std::string canon(std::string_view text) {
  auto r = jcs_from_text(text);
  EXPECT_TRUE(r) << r.error().to_string();
  return r ? *r : std::string();
}

// RFC 8785 Appendix B: IEEE-754 bit patterns and their canonical text.
TEST(JcsTest, Rfc8785AppendixBNumbers) {
  const std::pair<std::uint64_t, const char*> kTable[] = {
      {0x0000000000000000, "0"},
      {0x8000000000000000, "0"},
      {0x0000000000000001, "5e-324"},
      {0x8000000000000001, "-5e-324"},
      {0x7fefffffffffffff, "1.7976931348623157e+308"},
      {0xffefffffffffffff, "-1.7976931348623157e+308"},
      {0x4340000000000000, "9007199254740992"},
      {0xc340000000000000, "-9007199254740992"},
      {0x4430000000000000, "295147905179352830000"},
      {0x44b52d02c7e14af5, "9.999999999999997e+22"},
      {0x44b52d02c7e14af6, "1e+23"},
      {0x44b52d02c7e14af7, "1.0000000000000001e+23"},
      {0x444b1ae4d6e2ef4e, "999999999999999700000"},
      {0x444b1ae4d6e2ef4f, "999999999999999900000"},
      {0x444b1ae4d6e2ef50, "1e+21"},
      {0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
      {0x3eb0c6f7a0b5ed8d, "0.000001"},
      {0x41b3de4355555553, "333333333.3333332"},
      {0x41b3de4355555554, "333333333.33333325"},
      {0x41b3de4355555555, "333333333.3333333"},
      {0x41b3de4355555556, "333333333.3333334"},
      {0x41b3de4355555557, "333333333.33333343"},
      {0xbecbf647612f3696, "-0.0000033333333333333333"},
      {0x43143ff3c1cb0959, "1424953923781206.2"},
  };
  for (const auto& [bits, expected] : kTable) {
    double v = std::bit_cast<double>(bits);
    auto text = jcs_number(v);
    ASSERT_TRUE(text) << expected;
    EXPECT_EQ(*text, expected) << std::hex << bits;
    EXPECT_EQ(*jcs(Json(v)), expected);
  }
  EXPECT_EQ(jcs_number(std::bit_cast<double>(std::uint64_t{0x7fffffffffffffff})).error().code,
            "bad_json");  // NaN
  EXPECT_EQ(jcs_number(std::numeric_limits<double>::infinity()).error().code, "bad_json");
  EXPECT_EQ(jcs(Json::array({1.0, -std::numeric_limits<double>::infinity()})).error().code,
            "bad_json");
}

TEST(JcsTest, MoreNumberForms) {
  EXPECT_EQ(*jcs_number(1e21), "1e+21");
  EXPECT_EQ(*jcs_number(1e20), "100000000000000000000");
  EXPECT_EQ(*jcs_number(1e-7), "1e-7");
  EXPECT_EQ(*jcs_number(1e-6), "0.000001");
  EXPECT_EQ(*jcs_number(1.5e-7), "1.5e-7");
  EXPECT_EQ(*jcs_number(-0.0), "0");
  EXPECT_EQ(*jcs_number(123.456), "123.456");
  EXPECT_EQ(*jcs_number(-1.25e30), "-1.25e+30");
  EXPECT_EQ(jcs_from_text("[1E400]").error().code, "bad_json");  // overflows a double
}

TEST(JcsTest, IntegersBecomeDoubles) {
  EXPECT_EQ(*jcs(Json(std::int64_t{42})), "42");
  EXPECT_EQ(*jcs(Json(std::int64_t{-9007199254740993})), "-9007199254740992");
  EXPECT_EQ(*jcs(Json(std::uint64_t{18446744073709551615u})), "18446744073709552000");
  EXPECT_EQ(canon("[-0, -0.0, 0e5, 10.0, 1E2]"), "[0,0,0,10,100]");
}

// RFC 8785 section 3.2.2 / Appendix (values.json).
TEST(JcsTest, Rfc8785Values) {
  const char* input = R"({
    "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
    "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
    "literals": [null, true, false]
  })";
  EXPECT_EQ(canon(input),
            "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],"
            "\"string\":\"\xE2\x82\xAC$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}");
}

// RFC 8785 section 3.2.3: order by UTF-16 code units (the emoji sorts before U+FB33).
TEST(JcsTest, Rfc8785SortingByUtf16) {
  const char* input = R"({
    "\u20ac": "Euro Sign",
    "\r": "Carriage Return",
    "\ufb33": "Hebrew Letter Dalet With Dagesh",
    "1": "One",
    "\ud83d\ude00": "Emoji: Grinning Face",
    "\u0080": "Control",
    "\u00f6": "Latin Small Letter O With Diaeresis"
  })";
  EXPECT_EQ(
      canon(input),
      "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\xC2\x80\":\"Control\",\"\xC3\xB6\":"
      "\"Latin Small Letter O With Diaeresis\",\"\xE2\x82\xAC\":\"Euro Sign\",\"\xF0\x9F\x98"
      "\x80\":\"Emoji: Grinning Face\",\"\xEF\xAC\xB3\":\"Hebrew Letter Dalet With Dagesh\"}");
}

TEST(JcsTest, Rfc8785Arrays) {
  EXPECT_EQ(canon(R"([56, {"d": true, "10": null, "1": [ ]}])"),
            R"([56,{"1":[],"10":null,"d":true}])");
}

TEST(JcsTest, Rfc8785Structures) {
  const char* input = R"({
    "1": {"f": {"f": "hi","F": 5} ,"\n": 56.0},
    "10": { },
    "": "empty",
    "a": { },
    "111": [ {"e": "no","E": "yes" } ],
    "A": { }
  })";
  EXPECT_EQ(
      canon(input),
      R"({"":"empty","1":{"\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{"E":"yes","e":"no"}],"A":{},"a":{}})");
}

TEST(JcsTest, Rfc8785FrenchAndUnicode) {
  const char* french = R"({
    "peach": "This sorting order",
    "péché": "is wrong according to French",
    "pêche": "but canonicalization MUST",
    "sin":   "ignore locale"
  })";
  EXPECT_EQ(
      canon(french),
      R"({"peach":"This sorting order","péché":"is wrong according to French","pêche":"but canonicalization MUST","sin":"ignore locale"})");
  // No Unicode normalization: A + COMBINING RING ABOVE stays two code points.
  EXPECT_EQ(canon(R"({"Unnormalized Unicode":"A\u030a"})"),
            "{\"Unnormalized Unicode\":\"A\xCC\x8A\"}");
}

TEST(JcsTest, StringEscapes) {
  std::string s = "\x01\x1f\x7f\b\t\n\f\r/\xE2\x80\xA8";
  EXPECT_EQ(*jcs(Json(s)), "\"\\u0001\\u001f\x7f\\b\\t\\n\\f\\r/\xE2\x80\xA8\"");
}

TEST(JcsTest, RejectsBadInput) {
  EXPECT_EQ(jcs_from_text(R"({"a":1,"a":2})").error().code, "bad_json");
  EXPECT_EQ(jcs_from_text(R"({"x":{"a":1,"b":{"a":3},"a":2}})").error().code, "bad_json");
  EXPECT_EQ(jcs_from_text(R"({"a":1,"\u0061":2})").error().code, "bad_json");
  // the parser's message quotes the input: it must stay valid UTF-8 (it ends up in JSON errors)
  auto bad_utf8 = jcs_from_text("{\"\xff\xfe\":");
  ASSERT_FALSE(bad_utf8);
  EXPECT_EQ(bad_utf8.error().code, "bad_json");
  EXPECT_TRUE(is_valid_utf8(bad_utf8.error().message)) << bad_utf8.error().message;
  EXPECT_TRUE(jcs_from_text(R"([{"a":1},{"a":2}])"));
  EXPECT_EQ(jcs_from_text(R"(["\ud800"])").error().code, "bad_json");  // lone surrogate
  EXPECT_EQ(jcs_from_text("[1,").error().code, "bad_json");
  EXPECT_EQ(jcs(Json(std::string("\xff"))).error().code, "bad_json");          // not UTF-8
  EXPECT_EQ(jcs(Json(std::string("\xC0\xAF"))).error().code, "bad_json");      // overlong
  EXPECT_EQ(jcs(Json(std::string("\xED\xA0\x80"))).error().code, "bad_json");  // surrogate
  EXPECT_EQ(jcs(Json::binary({1, 2})).error().code, "bad_json");
  std::string deep(300, '[');
  deep += std::string(300, ']');
  EXPECT_EQ(jcs_from_text(deep).error().code, "bad_json");
}

}  // namespace
}  // namespace coffer::jose
