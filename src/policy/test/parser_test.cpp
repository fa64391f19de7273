#include "policy/parser.h"

#include <gtest/gtest.h>

namespace coffer::policy {
namespace {

std::string parse_error(const std::string& src) {
  auto m = parse_module("f.rego", src);
  if (m) return "ok";
  EXPECT_EQ(m.error().code, "rego_parse_error");
  return m.error().message;
}

TEST(Parser, ModuleStructure) {
  auto m = parse_module("f.rego",
                        "package a.b\nimport rego.v1\nimport data.lib as l\n\n"
                        "default allow := false\nallow if { input.x == 1 }\n"
                        "p contains x if { some x in input.xs }\nf(a) := a + 1\n");
  ASSERT_TRUE(m) << m.error().to_string();
  EXPECT_EQ(m->package, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(m->imports.size(), 2u);
  EXPECT_EQ(m->imports[1].alias, "l");
  ASSERT_EQ(m->rules.size(), 4u);
  EXPECT_TRUE(m->rules[0].is_default);
  EXPECT_EQ(m->rules[1].loc.line, 6u);
  EXPECT_EQ(m->rules[1].loc.column, 1u);
  EXPECT_EQ(m->rules[2].kind, RuleKind::kPartialSet);
  EXPECT_EQ(m->rules[3].kind, RuleKind::kFunction);
  const Expr& e = m->rules[1].clauses[0].body.exprs[0];
  EXPECT_EQ(e.loc.line, 6u);
  EXPECT_EQ(e.loc.column, 12u);
  EXPECT_EQ(m->source.substr(e.loc.offset, e.end - e.loc.offset), "input.x == 1");
}

TEST(Parser, ExactErrorLocations) {
  EXPECT_EQ(parse_error("package p\nx := [1,\n"),
            "f.rego:3:1: unexpected end of file, expected a term");
  EXPECT_EQ(parse_error("package p\n\nx := 1 ) 2\n"),
            "f.rego:3:8: unexpected ')', expected end of line");
  EXPECT_EQ(parse_error("package p\nx := \"unterminated\n"), "f.rego:2:6: unterminated string");
  EXPECT_EQ(parse_error("x := 1\n"), "f.rego:1:1: expected 'package' at the start of the module");
  EXPECT_EQ(parse_error("package p\nx if {\n  y := 1 2\n}\n"),
            "f.rego:3:10: unexpected '2', expected end of expression");
  EXPECT_EQ(parse_error("package p\nx := 1e\n"), "f.rego:2:6: malformed number");
  EXPECT_EQ(parse_error("package p\nimport rego.v1\nx := 1\nimport data.y\n"),
            "f.rego:4:1: imports must come before rules");
}

TEST(Parser, HostileNestingIsAnErrorNotACrash) {
  std::string deep = "package p\nx := " + std::string(100000, '(') + "1" + std::string(100000, ')');
  EXPECT_NE(parse_error(deep).find("nesting exceeds"), std::string::npos);
  std::string braces = "package p\nx := " + std::string(100000, '{');
  EXPECT_NE(parse_error(braces).find("nesting exceeds"), std::string::npos);
  std::string nots = "package p\nx if { ";
  for (int i = 0; i < 100000; ++i) nots += "not ";
  nots += "true }\n";
  EXPECT_NE(parse_error(nots).find("nesting exceeds"), std::string::npos);
}

TEST(Parser, Query) {
  auto q = parse_query("query", "x := data.a.b[_]; x > 1");
  ASSERT_TRUE(q) << q.error().to_string();
  EXPECT_EQ(q->exprs.size(), 2u);
  EXPECT_FALSE(parse_query("query", ""));
}

}  // namespace
}  // namespace coffer::policy
