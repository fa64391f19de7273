#include "core/config.h"

#include <gtest/gtest.h>

namespace coffer::config {
namespace {

TEST(Config, TypedAccessWithDefaults) {
  auto t = parse(
      "[http_server]\nsockets = [\"127.0.0.1:8080\"]\ninsecure_http = true\n"
      "payload_request_size = 2\n");
  ASSERT_TRUE(t) << t.error().to_string();
  Section root(&*t, "");
  auto http = root.section("http_server");
  EXPECT_EQ(http.string_array("sockets")->at(0), "127.0.0.1:8080");
  EXPECT_TRUE(*http.boolean("insecure_http", false));
  EXPECT_EQ(*http.integer("payload_request_size", 0), 2);
  EXPECT_EQ(*http.string("private_key", "none"), "none");
  EXPECT_FALSE(root.section("absent").present());
  EXPECT_EQ(*root.section("absent").integer("x", 7), 7);
}

TEST(Config, ReportsTypeErrorsAndUnknownKeys) {
  auto t = parse("[a]\nflag = \"yes\"\ntypo = 1\n");
  Section a = Section(&*t, "").section("a");
  EXPECT_EQ(a.boolean("flag", false).error().code, "bad_config");
  auto unknown = a.reject_unknown({"flag"});
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("a.typo"), std::string::npos);
}

TEST(Config, ParseErrorHasLocation) {
  auto t = parse("[a\nx=1\n", "f.toml");
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, "bad_config");
  EXPECT_NE(t.error().message.find("f.toml:1:"), std::string::npos) << t.error().message;
}

std::string dotted(std::size_t parts) {
  std::string key = "a";
  for (std::size_t i = 1; i < parts; ++i) key += ".a";
  return key;
}

std::string repeat(std::string_view s, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

std::string code_of(const std::string& text) {
  auto t = parse(text, "t.toml");
  if (!t) return t.error().code + ": " + t.error().message;
  auto j = to_json(*t);
  return j ? "ok" : j.error().code + ": " + j.error().message;
}

// toml++ recurses once per nesting level while parsing and destroying a tree: the depth is
// measured on the text before it runs (a 20,000-part dotted key once overflowed the stack).
TEST(Config, DeepNestingIsRefusedBeforeParsing) {
  const std::string refused = "bad_config: t.toml: nesting deeper than 64 levels";
  EXPECT_EQ(code_of("[data]\n" + dotted(20'000) + " = 1\n"), refused);
  EXPECT_EQ(code_of(dotted(64) + " = 1\n"), "ok");
  EXPECT_EQ(code_of(dotted(65) + " = 1\n"), refused);
  EXPECT_EQ(code_of("[data]\n" + dotted(63) + " = 1\n"), "ok");
  EXPECT_EQ(code_of("[data]\n" + dotted(64) + " = 1\n"), refused);
  EXPECT_EQ(code_of("[" + dotted(63) + "]\nx = 1\n"), "ok");
  EXPECT_EQ(code_of("[" + dotted(64) + "]\nx = 1\n"), refused);
  EXPECT_EQ(code_of("[" + dotted(20'000) + "]\n"), refused);
  EXPECT_EQ(code_of("[[" + dotted(20'000) + "]]\n"), refused);
  EXPECT_EQ(code_of("[ a . \"b\" . " + dotted(100) + " ]\n"), refused);
  // inline tables and arrays, and dotted keys inside them
  EXPECT_EQ(code_of("x = " + repeat("{a = ", 30) + "1" + repeat("}", 30) + "\n"), "ok");
  EXPECT_EQ(code_of("x = " + repeat("{a = ", 70) + "1" + repeat("}", 70) + "\n"), refused);
  EXPECT_EQ(code_of("x = " + repeat("[", 70) + repeat("]", 70) + "\n"), refused);
  EXPECT_EQ(code_of("x = [1, {" + dotted(70) + " = 1}]\n"), refused);
  EXPECT_EQ(code_of("x = {b = 1, " + dotted(70) + " = 1}\n"), refused);
  EXPECT_EQ(code_of("x = [\n  1,\n  " + repeat("[", 70) + repeat("]", 70) + ",\n]\n"), refused);
  // a literal string's backslash escapes nothing: the scan must not lose its place there
  EXPECT_EQ(code_of("k = 'x\\'\n[data]\n" + dotted(100) + " = 1\n"), refused);
  EXPECT_EQ(code_of("k = '''x\\'''\n" + dotted(100) + " = 1\n"), refused);
  // a quote inside a comment opens no string
  EXPECT_EQ(code_of("x = 1 # it's\n" + dotted(100) + " = 1\n"), refused);
  // a multi-line string may end with up to two extra quotes
  EXPECT_EQ(code_of("k = \"\"\"x\"\"\"\"\"\n" + dotted(100) + " = 1\n"), refused);
}

TEST(Config, WhatIsNotNestingIsNotCounted) {
  std::string floats = "f = [";
  for (int i = 0; i < 500; ++i) floats += std::to_string(i) + ".5, ";
  floats += "0.5]\n";
  for (const std::string& text : {
           floats,
           "\"" + dotted(500) + "\" = '" + dotted(500) + "'\n",
           "'" + dotted(500) + "'.b = 1\n",
           "# " + dotted(500) + " [[[[{{{{\nx = 1\n",
           "x = \"\"\"" + repeat("[{.", 500) + "\n\\\"\"\" ]]]\"\"\"\ny = 1\n",
           "x = '''" + repeat("[{.'", 500) + "'''\n",
           "x = \"a\\\"[[[[" + dotted(100) + "\"\n",
           std::string("d = 1979-05-27T07:32:00.999Z\nt = 07:32:00.5\nv = 1e5\n"),
           std::string("x = 1 # it's \"q\ny = [\n  1, # a.b.c '\n  2,\n]\n"),
           std::string("[data]\n\"policy.rego\" = '''\npackage a.b.c.d\nx := [[[[1]]]]\n'''\n"),
       }) {
    EXPECT_EQ(code_of(text), "ok") << text;
  }
}

// The tree itself is checked again where it becomes JSON: arrays of tables add a level per array
// that the text's headers do not spell out.
TEST(Config, ToJsonBoundsTheTreeDepth) {
  std::string text;
  std::string path = "a";
  for (int i = 0; i < 40; ++i) {
    text += "[[" + path + "]]\n";
    path += ".a";
  }
  auto t = parse(text);
  ASSERT_TRUE(t) << t.error().to_string();
  auto j = to_json(*t);
  ASSERT_FALSE(j);
  EXPECT_EQ(j.error().code, "bad_config");
  EXPECT_TRUE(to_json(*t, 200));
  toml::table root;
  toml::table* cur = &root;
  for (int i = 0; i < 100; ++i) cur = cur->emplace<toml::table>("k").first->second.as_table();
  EXPECT_EQ(to_json(root).error().code, "bad_config");
  EXPECT_TRUE(to_json(root, 101));
}

}  // namespace
}  // namespace coffer::config
