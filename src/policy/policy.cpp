#include "policy/policy.h"

#include "policy/eval.h"
#include "policy/parser.h"
#include "policy/program.h"

namespace coffer::policy {

namespace {

constexpr std::string_view kQueryFile = "query";

bool ident_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         (!first && c >= '0' && c <= '9');
}

// "data.a.b" -> {"a", "b"}; nullopt for anything that needs the full query compiler.
std::optional<std::vector<std::string_view>> simple_data_path(std::string_view q) {
  if (!q.starts_with("data")) return std::nullopt;
  std::vector<std::string_view> out;
  std::size_t pos = 4;
  while (pos < q.size()) {
    if (q[pos] != '.') return std::nullopt;
    std::size_t start = ++pos;
    while (pos < q.size() && ident_char(q[pos], pos == start)) ++pos;
    if (pos == start) return std::nullopt;
    out.push_back(q.substr(start, pos - start));
  }
  return out;
}

// Serialized size of a value, stopping early once over `limit`.
std::size_t approx_size(const Value& v, std::size_t limit) {
  switch (v.type()) {
    case Value::Type::kString:
      return v.as_string().size() + 2;
    case Value::Type::kArray:
    case Value::Type::kSet:
    case Value::Type::kObject: {
      std::size_t total = 2;
      v.for_each([&](const Value& k, const Value& e) {
        if (v.is(Value::Type::kObject)) total += approx_size(k, limit) + 1;
        total += approx_size(e, limit) + 1;
        return total <= limit;
      });
      return total;
    }
    default:
      return 8;
  }
}

}  // namespace

std::string Explanation::to_string() const {
  std::string out;
  for (const auto& e : entries) {
    out += e.location + ": " + e.rule + ": failed: " + e.expression + "\n";
    for (const auto& [text, value] : e.values) out += "    " + text + " = " + value + "\n";
  }
  return out;
}

Json Explanation::to_json() const {
  Json out = Json::array();
  for (const auto& e : entries) {
    Json values = Json::object();
    for (const auto& [text, value] : e.values) values[text] = value;
    out.push_back(Json{{"rule", e.rule},
                       {"location", e.location},
                       {"expression", e.expression},
                       {"values", values}});
  }
  return out;
}

CompiledPolicy::CompiledPolicy(std::shared_ptr<const Program> program)
    : program_(std::move(program)) {}

CompiledPolicy::~CompiledPolicy() = default;

Result<EvalResult> CompiledPolicy::evaluate(std::string_view query, const Json& input,
                                            const Json& data, bool explain) const {
  // Values are compared, serialised and copied by recursive walks: bound their depth up front.
  const std::size_t max_depth = program_->limits.max_depth;
  if (json_depth(input, max_depth) > max_depth || json_depth(data, max_depth) > max_depth) {
    return make_error("eval_limit_exceeded", "input or data nests deeper than max_depth (" +
                                                 std::to_string(max_depth) + ")");
  }
  const Json* in = input.is_discarded() ? nullptr : &input;
  Evaluator ev(*program_, in, data, explain);
  Value v;
  if (auto path = simple_data_path(query)) {
    v = COFFER_TRY(ev.eval_data_path(*path));
  } else {
    Body body = COFFER_TRY(parse_query(kQueryFile, query));
    int slots = COFFER_TRY(compile_query(*program_, body, kQueryFile));
    v = COFFER_TRY(ev.eval_query(body, slots, kQueryFile, query));
  }
  EvalResult result;
  if (v.defined()) {
    std::size_t limit = program_->limits.max_output_bytes;
    std::size_t size = approx_size(v, limit);
    if (size > limit) {
      return make_error("eval_limit_exceeded", "result of about " + std::to_string(size) +
                                                   " bytes exceeds max_output_bytes (" +
                                                   std::to_string(limit) + ")");
    }
    result.value = v.to_json();
  }
  if (explain) result.explanation = ev.take_explanation();
  return result;
}

Result<std::shared_ptr<const CompiledPolicy>> compile(std::vector<Module> modules,
                                                      CompileOptions opts) {
  auto program = COFFER_TRY(build_program(std::move(modules), std::move(opts)));
  return std::make_shared<const CompiledPolicy>(std::move(program));
}

}  // namespace coffer::policy
