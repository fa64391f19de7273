// Top-down evaluation with backtracking: each construct produces its solutions by calling a
// continuation; returning false from a continuation stops the search (early exit or error).
// One Evaluator per evaluation: all mutable state (bindings, rule cache, counters) lives here,
// so a Program can be evaluated from many threads at once.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "policy/function_ref.h"
#include "policy/program.h"

namespace coffer::policy {

class Evaluator {
 public:
  Evaluator(const Program& program, const Json* input, const Json& data, bool explain);

  // Value of the last expression of a compiled query (the query succeeding when it is not a
  // plain term), or undefined.
  Result<Value> eval_query(const Body& query, int num_slots, std::string_view file,
                           std::string_view source);

  // Value at data.<path> (rules and base documents), or undefined.
  Result<Value> eval_data_path(const std::vector<std::string_view>& path);

  Explanation take_explanation() { return std::move(explanation_); }

 private:
  using Cont = FunctionRef<bool()>;
  using ValueCont = FunctionRef<bool(const Value&)>;

  struct Frame {
    Value* slots;
  };

  // Explanation state for the rule body being evaluated.
  struct BodyTrace {
    const Body* body = nullptr;
    std::size_t index = 0;
    bool failed = false;
    ExplanationEntry entry;
    std::string_view rule;
  };

  enum class CacheState : std::uint8_t { kNew, kRunning, kDone };
  struct CacheEntry {
    CacheState state = CacheState::kNew;
    Value value;
  };

  bool fail(Error e);
  bool fail_at(std::string_view code, const Location& loc, const std::string& msg);
  bool step();
  bool enter();
  bool check_deadline();
  // Charges a builtin call with the bytes of its arguments and result (see Limits).
  bool charge(const Location& loc, std::span<const Value> args, const Value* result);
  void leave() { --depth_; }

  bool eval_body(const Body& b, std::size_t i, Frame f, Cont k);
  bool eval_expr(const Expr& e, Frame f, Cont k);
  bool eval_term(const Term& t, Frame f, ValueCont k);
  bool eval_ref(const Term& t, Frame f, ValueCont k);
  bool walk_ref(const Term& t, std::size_t i, const Value& cur, Frame f, ValueCont k);
  bool eval_call(const Term& t, Frame f, ValueCont k);
  bool eval_items(const std::vector<TermPtr>& items, std::size_t i, Frame f,
                  std::vector<Value>& acc, Cont k);
  bool eval_collection(const Term& t, Frame f, ValueCont k);
  bool eval_comprehension(const Term& t, Frame f, ValueCont k);
  bool eval_some_in(const Expr& e, Frame f, Cont k);
  bool eval_every(const Expr& e, Frame f, Cont k);

  bool is_pattern(const Term& t, Frame f) const;
  bool unify_terms(const Term& a, const Term& b, Frame f, Cont k);
  bool unify_value(const Term& p, const Value& v, Frame f, Cont k);
  bool unify_items(const Term& p, std::size_t i, const Value& v, Frame f, Cont k);
  bool unify_args(const std::vector<TermPtr>& params, std::size_t i, std::span<const Value> args,
                  Frame f, Cont k);

  // Rules. Values are cached per evaluation; functions are evaluated per call.
  Value eval_group(int group);
  Value eval_complete(const RuleGroup& g);
  Value eval_partial(const RuleGroup& g);
  Value eval_function(int group, std::span<const Value> args, const Location& call_loc);
  // Runs the clauses (body, then else chain) of one definition; emit gets each value.
  bool eval_clauses(const RuleGroup& g, const Rule& r, Frame f, ValueCont emit);
  bool eval_traced_body(std::string_view rule_path, const Body& b, Frame f, Cont k);
  Value package_value(int node, const std::vector<std::string>& data_path);
  Value base_data(const std::vector<std::string>& path) const;

  void record_failure(const Expr& e, std::size_t index, Frame f);
  void collect_operands(const Expr& e, std::vector<const Term*>& out) const;
  std::string source_text(std::uint32_t begin, std::uint32_t end) const;

  const Program& prog_;
  const Json* input_;
  const Json& data_;
  bool explain_;
  std::optional<Error> error_;
  std::size_t steps_ = 0;
  std::size_t builtin_bytes_ = 0;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  std::size_t depth_ = 0;
  std::uintptr_t stack_base_ = 0;
  std::vector<CacheEntry> cache_;
  BuiltinContext builtin_ctx_;
  const ModuleAst* module_ = nullptr;  // module of the rule being evaluated
  std::string_view query_file_;
  std::string_view query_source_;
  BodyTrace* trace_ = nullptr;
  Explanation explanation_;
};

}  // namespace coffer::policy
