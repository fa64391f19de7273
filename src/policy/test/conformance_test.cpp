// Table-driven conformance suite: every file in test/cases/*.json is an array of cases
// {note, modules[], query, input?, data?, want | want_undefined | want_error, error_contains?,
//  strict?, limits?, reference_values?, no_input?, null_input?}.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/clock.h"
#include "policy/policy.h"

namespace coffer::policy {
namespace {

struct Case {
  std::string name;  // file/index
  Json spec;
};

std::vector<Case> load_cases() {
  std::vector<Case> out;
  std::filesystem::path dir = std::filesystem::path(COFFER_SOURCE_DIR) / "src/policy/test/cases";
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f);
    std::stringstream ss;
    ss << in.rdbuf();
    Json cases = Json::parse(ss.str());
    for (std::size_t i = 0; i < cases.size(); ++i) {
      out.push_back({f.stem().string() + "_" + std::to_string(i), cases[i]});
    }
  }
  return out;
}

const std::vector<Case>& all_cases() {
  static const std::vector<Case> cases = load_cases();
  return cases;
}

// The host builtin used by attestation policies, backed by the case's reference values.
Builtin reference_values_builtin(Json values) {
  return [values = std::move(values)](std::span<const Json> args) -> Result<Json> {
    if (!args[0].is_string()) return make_error("bad_argument", "name must be a string");
    auto name = args[0].get<std::string>();
    if (name == "fail") return make_error("rvps_unavailable", "reference value provider is down");
    auto it = values.find(name);
    return it == values.end() ? Json::array() : *it;
  };
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class ConformanceTest : public testing::TestWithParam<Case> {};

TEST_P(ConformanceTest, Case) {
  const Json& c = GetParam().spec;
  SCOPED_TRACE(c.value("note", ""));
  std::vector<Module> modules;
  for (std::size_t i = 0; i < c["modules"].size(); ++i) {
    modules.push_back({"case" + std::to_string(i) + ".rego", c["modules"][i].get<std::string>()});
  }
  CompileOptions opts;
  opts.clock = std::make_shared<ManualClock>(from_unix_seconds(1764374400));  // 2025-11-29
  opts.strict_builtin_errors = c.value("strict", false);
  if (c.contains("limits")) {
    const Json& l = c["limits"];
    opts.limits.max_steps = l.value("max_steps", opts.limits.max_steps);
    opts.limits.max_depth = l.value("max_depth", opts.limits.max_depth);
    opts.limits.max_output_bytes = l.value("max_output_bytes", opts.limits.max_output_bytes);
  }
  opts.builtins["query_reference_value"] = {
      1, reference_values_builtin(c.value("reference_values", Json::object()))};

  Json input = c.value("input", Json::object());
  if (c.value("no_input", false)) input = Json(Json::value_t::discarded);
  if (c.value("null_input", false)) input = nullptr;
  Json data = c.value("data", Json::object());

  Result<EvalResult> result = [&]() -> Result<EvalResult> {
    auto policy = COFFER_TRY(compile(std::move(modules), opts));
    return policy->evaluate(c["query"].get<std::string>(), input, data);
  }();

  if (c.contains("want_error")) {
    ASSERT_FALSE(result.has_value()) << "expected error " << c["want_error"] << ", got "
                                     << (result->value ? result->value->dump() : "undefined");
    EXPECT_EQ(result.error().code, c["want_error"].get<std::string>()) << result.error().message;
    if (c.contains("error_contains")) {
      EXPECT_NE(result.error().message.find(c["error_contains"].get<std::string>()),
                std::string::npos)
          << result.error().message;
    }
    return;
  }
  ASSERT_TRUE(result.has_value()) << result.error().to_string();
  if (c.value("want_undefined", false)) {
    EXPECT_FALSE(result->value.has_value()) << "got " << result->value->dump();
    return;
  }
  ASSERT_TRUE(result->value.has_value()) << "undefined, want " << c["want"].dump();
  EXPECT_EQ(*result->value, c["want"])
      << "got " << result->value->dump() << ", want " << c["want"].dump();
}

INSTANTIATE_TEST_SUITE_P(Cases, ConformanceTest, testing::ValuesIn(all_cases()),
                         [](const testing::TestParamInfo<Case>& p) { return p.param.name; });

TEST(ConformanceSuite, HasAtLeast150Cases) { EXPECT_GE(all_cases().size(), 150u); }

}  // namespace
}  // namespace coffer::policy
