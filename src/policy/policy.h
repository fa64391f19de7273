// coffer's Rego policy engine: compile modules once, evaluate queries many times, concurrently.
//
//   auto policy = COFFER_TRY(policy::compile({{"policy.rego", source}}));
//   auto result = COFFER_TRY(policy->evaluate("data.policy.allow", input, data));
//   if (!result.value) { /* undefined */ }
//
// Error codes: rego_parse_error, rego_compile_error, rego_type_error, rego_unsafe_var_error,
// rego_recursion_error (compile); eval_conflict_error, eval_builtin_error, eval_limit_exceeded,
// policy_deadline_exceeded, policy_cost_exceeded, eval_invalid_query (evaluate). Messages carry
// "file:line:column".
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/error.h"
#include "core/json.h"

namespace coffer::policy {

struct Module {
  std::string name;  // used in error locations, e.g. "policy.rego"
  std::string source;
};

// Bounds on hostile policies and inputs; exceeding any is an "eval_limit_exceeded" error, except
// the time and builtin-cost bounds: "policy_deadline_exceeded" and "policy_cost_exceeded".
// (Policy text nesting deeper than 512 levels is a "rego_parse_error" regardless.)
struct Limits {
  // Wall time of one evaluation (steps bound the work of the evaluator itself, not of builtins:
  // hashing a large string per element is few steps and much time). Zero: no deadline.
  std::chrono::milliseconds deadline{1000};
  // Bytes handled by builtin calls in one evaluation: the sizes of string arguments and results
  // (collections count their elements), summed over every call.
  std::size_t max_builtin_bytes = 64 << 20;
  std::size_t max_steps = 1'000'000;       // expressions evaluated and iterations taken
  std::size_t max_depth = 256;             // nested rule/function calls, comprehensions, parsing,
                                           // nesting of input, data and host builtin results
  std::size_t max_output_bytes = 1 << 20;  // result size (serialized), strings and collections
                                           // built by builtins
  std::size_t max_stack_bytes = 2 << 20;   // native stack used by one evaluation
};

// A host builtin: receives JSON arguments (sets as sorted arrays) and returns a JSON value.
// Returning an error aborts the evaluation with "eval_builtin_error".
using Builtin = std::function<Result<Json>(std::span<const Json> args)>;

struct CompileOptions {
  Limits limits;
  std::map<std::string, std::pair<int, Builtin>> builtins;  // name -> (arity, function)
  std::shared_ptr<const Clock> clock;                       // time.now_ns; system clock if null
  // OPA's default: a standard builtin failing on bad operands (wrong type, bad encoding) makes
  // its expression undefined. When true, such failures abort with "eval_builtin_error".
  bool strict_builtin_errors = false;
};

// Why a query was undefined or false: for each rule body that was tried and produced nothing,
// the first expression that failed in its deepest attempt and the values of its operands.
struct ExplanationEntry {
  std::string rule;                                         // "data.policy.allow"
  std::string location;                                     // "policy.rego:7:3"
  std::string expression;                                   // source text of the failing expression
  std::vector<std::pair<std::string, std::string>> values;  // operand text -> value or undefined
};

struct Explanation {
  std::vector<ExplanationEntry> entries;
  [[nodiscard]] std::string to_string() const;
  [[nodiscard]] Json to_json() const;
};

struct EvalResult {
  std::optional<Json> value;  // nullopt: undefined
  std::optional<Explanation> explanation;
};

struct Program;

class CompiledPolicy {
 public:
  explicit CompiledPolicy(std::shared_ptr<const Program> program);
  ~CompiledPolicy();
  CompiledPolicy(const CompiledPolicy&) = delete;
  CompiledPolicy& operator=(const CompiledPolicy&) = delete;

  // Evaluates a query such as "data.policy.allow" (any Rego expression over data and input;
  // with several expressions, the value of the last one). Thread-safe. The input is read in
  // place, never copied. A discarded Json (Json::value_t::discarded) input means "no input":
  // references to input are undefined.
  [[nodiscard]] Result<EvalResult> evaluate(std::string_view query, const Json& input,
                                            const Json& data = Json::object(),
                                            bool explain = false) const;

  [[nodiscard]] const Program& program() const { return *program_; }

 private:
  std::shared_ptr<const Program> program_;
};

Result<std::shared_ptr<const CompiledPolicy>> compile(std::vector<Module> modules,
                                                      CompileOptions opts = {});

}  // namespace coffer::policy
