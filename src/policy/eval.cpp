#include "policy/eval.h"

#include <algorithm>
#include <cstdint>

namespace coffer::policy {

namespace {

constexpr std::size_t kMaxExplanationEntries = 64;

// Frame slots for one rule evaluation; small frames stay on the native stack.
class FrameStorage {
 public:
  explicit FrameStorage(int n) {
    if (n <= kInline) {
      ptr_ = inline_;
    } else {
      heap_.resize(static_cast<std::size_t>(n));
      ptr_ = heap_.data();
    }
  }
  FrameStorage(const FrameStorage&) = delete;
  FrameStorage& operator=(const FrameStorage&) = delete;
  Value* data() { return ptr_; }

 private:
  static constexpr int kInline = 10;
  Value inline_[kInline];
  std::vector<Value> heap_;
  Value* ptr_;
};

bool all_clauses_constant_equal(const Rule& r, const Value& v) {
  for (const Clause& c : r.clauses) {
    if (c.value == nullptr) {
      if (!(v == Value::boolean(true))) return false;
    } else if (!c.value->constant || !(c.value->value == v)) {
      return false;
    }
  }
  return true;
}

}  // namespace

Evaluator::Evaluator(const Program& program, const Json* input, const Json& data, bool explain)
    : prog_(program), input_(input), data_(data), explain_(explain), cache_(program.groups.size()) {
  builtin_ctx_.limits = &prog_.limits;
  builtin_ctx_.regex = &prog_.regex;
  builtin_ctx_.now_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(prog_.clock->now().time_since_epoch())
          .count();
  stack_base_ = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  if (prog_.limits.deadline.count() > 0)
    deadline_ = prog_.clock->steady_now() + prog_.limits.deadline;
}

// --- errors and limits ------------------------------------------------------------------------

bool Evaluator::fail(Error e) {
  if (!error_) error_ = std::move(e);
  return false;
}

bool Evaluator::fail_at(std::string_view code, const Location& loc, const std::string& msg) {
  std::string_view file = module_ != nullptr ? std::string_view(module_->file) : query_file_;
  return fail(Error{std::string(code), format_location(file, loc) + ": " + msg});
}

bool Evaluator::check_deadline() {
  if (deadline_ && prog_.clock->steady_now() > *deadline_) {
    return fail(Error{"policy_deadline_exceeded",
                      "policy evaluation exceeded its deadline (" +
                          std::to_string(prog_.limits.deadline.count()) + " ms)"});
  }
  return true;
}

namespace {
std::size_t cost_of(const Value& v) {
  if (v.is(Value::Type::kString)) return v.as_string().size();
  if (v.is(Value::Type::kArray) || v.is(Value::Type::kObject) || v.is(Value::Type::kSet))
    return v.size();
  return 1;
}
}  // namespace

bool Evaluator::charge(const Location& loc, std::span<const Value> args, const Value* result) {
  std::size_t bytes = result != nullptr ? cost_of(*result) : 0;
  for (const auto& a : args) bytes += cost_of(a);
  builtin_bytes_ += bytes;
  if (builtin_bytes_ > prog_.limits.max_builtin_bytes) {
    return fail_at("policy_cost_exceeded", loc,
                   "builtin calls processed more than max_builtin_bytes (" +
                       std::to_string(prog_.limits.max_builtin_bytes) + ") in one evaluation");
  }
  return check_deadline();
}

bool Evaluator::step() {
  if (++steps_ > prog_.limits.max_steps) {
    return fail(Error{"eval_limit_exceeded", "evaluation exceeded max_steps (" +
                                                 std::to_string(prog_.limits.max_steps) + ")"});
  }
  // The clock is cheap but not free: look at it every 256 steps (and after every builtin call).
  if ((steps_ & 0xff) == 0 && !check_deadline()) return false;
  auto here = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  std::size_t used = here > stack_base_ ? here - stack_base_ : stack_base_ - here;
  if (used > prog_.limits.max_stack_bytes) {
    return fail(Error{"eval_limit_exceeded", "evaluation exceeded max_stack_bytes (" +
                                                 std::to_string(prog_.limits.max_stack_bytes) +
                                                 ")"});
  }
  return true;
}

bool Evaluator::enter() {
  if (++depth_ > prog_.limits.max_depth) {
    --depth_;
    return fail(Error{"eval_limit_exceeded", "evaluation exceeded max_depth (" +
                                                 std::to_string(prog_.limits.max_depth) + ")"});
  }
  return step();
}

// --- bodies and expressions -------------------------------------------------------------------

bool Evaluator::eval_body(const Body& b, std::size_t i, Frame f, Cont k) {
  if (i == b.exprs.size()) return k();
  const Expr& e = b.exprs[i];
  bool produced = false;
  bool r = eval_expr(e, f, [&] {
    produced = true;
    return eval_body(b, i + 1, f, k);
  });
  if (!produced && r && trace_ != nullptr && trace_->body == &b) record_failure(e, i, f);
  return r;
}

bool Evaluator::eval_expr(const Expr& e, Frame f, Cont k) {
  if (!step()) return false;
  switch (e.kind) {
    case ExprKind::kTerm:
      return eval_term(*e.a, f, [&](const Value& v) { return v.is_false() ? true : k(); });
    case ExprKind::kAssign:
    case ExprKind::kUnify:
      return unify_terms(*e.a, *e.b, f, k);
    case ExprKind::kNot: {
      if (!enter()) return false;
      bool found = false;
      BodyTrace* saved = trace_;
      trace_ = nullptr;
      eval_expr(*e.inner, f, [&] {
        found = true;
        return false;
      });
      trace_ = saved;
      leave();
      if (error_) return false;
      return found ? true : k();
    }
    case ExprKind::kSome:
      return k();
    case ExprKind::kSomeIn:
      return eval_some_in(e, f, k);
    case ExprKind::kEvery:
      return eval_every(e, f, k);
  }
  return true;
}

bool Evaluator::eval_some_in(const Expr& e, Frame f, Cont k) {
  return eval_term(*e.c, f, [&](const Value& coll) {
    return coll.for_each([&](const Value& key, const Value& val) {
      if (!step()) return false;
      return unify_value(*e.b, val, f, [&] {
        if (e.a) return unify_value(*e.a, key, f, k);
        return k();
      });
    });
  });
}

bool Evaluator::eval_every(const Expr& e, Frame f, Cont k) {
  return eval_term(*e.c, f, [&](const Value& coll) {
    // every over a scalar is undefined, not vacuously true.
    if (coll.type() < Value::Type::kArray) return true;
    if (!enter()) return false;
    BodyTrace* saved = trace_;
    trace_ = nullptr;
    bool all = true;
    coll.for_each([&](const Value& key, const Value& val) {
      if (!step()) return false;
      bool found = false;
      auto body = [&] {
        return eval_body(*e.body, 0, f, [&] {
          found = true;
          return false;
        });
      };
      unify_value(*e.b, val, f, [&] {
        if (e.a) return unify_value(*e.a, key, f, body);
        return body();
      });
      if (error_) return false;
      if (!found) all = false;
      return found;
    });
    trace_ = saved;
    leave();
    if (error_) return false;
    return all ? k() : true;
  });
}

// --- terms ------------------------------------------------------------------------------------

bool Evaluator::eval_term(const Term& t, Frame f, ValueCont k) {
  if (t.constant) return k(t.value);
  switch (t.kind) {
    case TermKind::kScalar:
      return k(t.value);
    case TermKind::kVar: {
      const Value& v = f.slots[t.slot];
      if (!v.defined())
        return fail_at("rego_unsafe_var_error", t.loc, "var " + t.name + " is unbound");
      return k(v);
    }
    case TermKind::kRef:
      return eval_ref(t, f, k);
    case TermKind::kCall:
      return eval_call(t, f, k);
    case TermKind::kArray:
    case TermKind::kSet:
    case TermKind::kObject:
      return eval_collection(t, f, k);
    case TermKind::kArrayCompr:
    case TermKind::kSetCompr:
    case TermKind::kObjectCompr:
      return eval_comprehension(t, f, k);
  }
  return true;
}

bool Evaluator::eval_items(const std::vector<TermPtr>& items, std::size_t i, Frame f,
                           std::vector<Value>& acc, Cont k) {
  if (i == items.size()) return k();
  return eval_term(*items[i], f, [&](const Value& v) {
    acc.push_back(v);
    bool r = eval_items(items, i + 1, f, acc, k);
    acc.pop_back();
    return r;
  });
}

bool Evaluator::eval_collection(const Term& t, Frame f, ValueCont k) {
  std::vector<Value> acc;
  acc.reserve(t.items.size());
  return eval_items(t.items, 0, f, acc, [&] {
    if (t.kind == TermKind::kArray) return k(Value::array(acc));
    if (t.kind == TermKind::kSet) return k(Value::set(acc));
    std::vector<std::pair<Value, Value>> pairs;
    for (std::size_t i = 0; i + 1 < acc.size(); i += 2) {
      auto dup = std::find_if(pairs.begin(), pairs.end(),
                              [&](const auto& kv) { return kv.first == acc[i]; });
      if (dup != pairs.end()) {
        dup->second = acc[i + 1];
      } else {
        pairs.emplace_back(acc[i], acc[i + 1]);
      }
    }
    return k(Value::object(std::move(pairs)));
  });
}

bool Evaluator::eval_comprehension(const Term& t, Frame f, ValueCont k) {
  if (!enter()) return false;
  BodyTrace* saved = trace_;
  trace_ = nullptr;
  std::vector<Value> out;
  std::vector<std::pair<Value, Value>> pairs;
  std::size_t limit = prog_.limits.max_output_bytes;
  auto too_big = [&] {
    return fail_at(
        "eval_limit_exceeded", t.loc,
        "comprehension exceeds max_output_bytes (" + std::to_string(limit) + ") elements");
  };
  eval_body(*t.body, 0, f, [&] {
    if (t.kind == TermKind::kObjectCompr) {
      return eval_term(*t.items[0], f, [&](const Value& key) {
        return eval_term(*t.items[1], f, [&](const Value& val) {
          pairs.emplace_back(key, val);
          return pairs.size() <= limit || too_big();
        });
      });
    }
    return eval_term(*t.items[0], f, [&](const Value& v) {
      out.push_back(v);
      return out.size() <= limit || too_big();
    });
  });
  trace_ = saved;
  leave();
  if (error_) return false;
  if (t.kind == TermKind::kArrayCompr) return k(Value::array(std::move(out)));
  if (t.kind == TermKind::kSetCompr) return k(Value::set(std::move(out)));
  std::stable_sort(pairs.begin(), pairs.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<Value, Value>> unique;
  for (auto& kv : pairs) {
    if (!unique.empty() && unique.back().first == kv.first) {
      if (!(unique.back().second == kv.second)) {
        return fail_at("eval_conflict_error", t.loc, "object keys must be unique");
      }
      continue;
    }
    unique.push_back(std::move(kv));
  }
  return k(Value::object(std::move(unique)));
}

bool Evaluator::eval_ref(const Term& t, Frame f, ValueCont k) {
  switch (t.ref_head) {
    case RefHead::kLocal: {
      const Term& head = *t.items[0];
      const Value& v = f.slots[head.slot];
      if (!v.defined()) {
        return fail_at("rego_unsafe_var_error", head.loc, "var " + head.name + " is unbound");
      }
      return walk_ref(t, t.ref_start, v, f, k);
    }
    case RefHead::kInput:
      if (input_ == nullptr) return true;
      return walk_ref(t, t.ref_start, Value::json(*input_), f, k);
    case RefHead::kData:
      return walk_ref(t, t.ref_start, Value::json(data_), f, k);
    case RefHead::kRule: {
      Value v = eval_group(t.ref_index);
      if (error_) return false;
      if (!v.defined()) return true;
      return walk_ref(t, t.ref_start, v, f, k);
    }
    case RefHead::kPackage: {
      Value v = package_value(t.ref_index, t.data_path);
      if (error_) return false;
      return walk_ref(t, t.ref_start, v, f, k);
    }
    case RefHead::kTerm:
      return eval_term(*t.items[0], f,
                       [&](const Value& v) { return walk_ref(t, t.ref_start, v, f, k); });
    case RefHead::kUnresolved:
      break;
  }
  return fail_at("rego_compile_error", t.loc, "unresolved reference");
}

bool Evaluator::walk_ref(const Term& t, std::size_t i, const Value& cur, Frame f, ValueCont k) {
  if (i == t.items.size()) return k(cur);
  const Term& op = *t.items[i];
  if (op.constant) {
    Value next = op.value.is(Value::Type::kString) && cur.is(Value::Type::kObject)
                     ? cur.get_field(op.value.as_string())
                     : cur.get(op.value);
    if (!next.defined()) return true;
    return walk_ref(t, i + 1, next, f, k);
  }
  if (op.kind == TermKind::kVar && !f.slots[op.slot].defined()) {
    // An unbound variable iterates over the collection.
    Value& slot = f.slots[op.slot];
    bool r = cur.for_each([&](const Value& key, const Value& val) {
      if (!step()) return false;
      slot = key;
      bool cont = walk_ref(t, i + 1, val, f, k);
      slot = Value();
      return cont;
    });
    return r;
  }
  return eval_term(op, f, [&](const Value& key) {
    Value next = cur.get(key);
    if (!next.defined()) return true;
    return walk_ref(t, i + 1, next, f, k);
  });
}

bool Evaluator::eval_call(const Term& t, Frame f, ValueCont k) {
  std::vector<Value> args;
  args.reserve(t.items.size());
  return eval_items(t.items, 0, f, args, [&] {
    switch (t.call_kind) {
      case CallKind::kBuiltin: {
        // Arguments are charged before the call, so that a too-large operand is refused before
        // the work, the result after.
        if (!charge(t.loc, args, nullptr)) return false;
        auto r = t.builtin->fn(builtin_ctx_, args);
        if (r && !charge(t.loc, {}, &*r)) return false;
        if (!r) {
          if (r.error().code == "eval_limit_exceeded") {
            return fail_at(r.error().code, t.loc, r.error().message);
          }
          if (prog_.strict_builtin_errors) {
            return fail_at("eval_builtin_error", t.loc, r.error().message);
          }
          return true;  // undefined
        }
        if (!r->defined()) return true;
        return k(*r);
      }
      case CallKind::kHost: {
        const HostBuiltin& h = prog_.host[static_cast<std::size_t>(t.call_index)];
        if (!charge(t.loc, args, nullptr)) return false;
        std::vector<Json> jargs;
        jargs.reserve(args.size());
        for (const auto& a : args) jargs.push_back(a.to_json());
        Result<Json> r = h.fn(jargs);
        if (!r) return fail_at("eval_builtin_error", t.loc, h.name + ": " + r.error().to_string());
        if (!check_deadline()) return false;
        if (r->is_discarded()) return true;
        if (json_depth(*r, prog_.limits.max_depth) > prog_.limits.max_depth) {
          return fail_at("eval_limit_exceeded", t.loc,
                         h.name + ": result nests deeper than max_depth (" +
                             std::to_string(prog_.limits.max_depth) + ")");
        }
        return k(Value::from_owned_json(std::move(*r)));
      }
      case CallKind::kFunction: {
        Value v = eval_function(t.call_index, args, t.loc);
        if (error_) return false;
        if (!v.defined()) return true;
        return k(v);
      }
      case CallKind::kUnresolved:
        break;
    }
    return fail_at("rego_type_error", t.loc, "undefined function " + t.name);
  });
}

// --- unification ------------------------------------------------------------------------------

bool Evaluator::is_pattern(const Term& t, Frame f) const {
  if (t.constant) return false;
  if (t.kind == TermKind::kVar) return t.slot >= 0 && !f.slots[t.slot].defined();
  if (t.kind == TermKind::kArray) {
    return std::any_of(t.items.begin(), t.items.end(),
                       [&](const TermPtr& i) { return is_pattern(*i, f); });
  }
  if (t.kind == TermKind::kObject) {
    for (std::size_t i = 1; i < t.items.size(); i += 2) {
      if (is_pattern(*t.items[i], f)) return true;
    }
  }
  return false;
}

bool Evaluator::unify_terms(const Term& a, const Term& b, Frame f, Cont k) {
  bool pa = is_pattern(a, f);
  bool pb = is_pattern(b, f);
  if (pa && !pb) return eval_term(b, f, [&](const Value& v) { return unify_value(a, v, f, k); });
  if (pb && !pa) return eval_term(a, f, [&](const Value& v) { return unify_value(b, v, f, k); });
  if (!pa && !pb) {
    return eval_term(a, f, [&](const Value& va) {
      return eval_term(b, f, [&](const Value& vb) { return va == vb ? k() : true; });
    });
  }
  if (a.kind == TermKind::kArray && b.kind == TermKind::kArray) {
    if (a.items.size() != b.items.size()) return true;
    // Unify element by element, left to right.
    struct Step {
      Evaluator* self;
      const Term& a;
      const Term& b;
      Frame f;
      Cont k;
      bool run(std::size_t i) {
        if (i == a.items.size()) return k();
        return self->unify_terms(*a.items[i], *b.items[i], f, [&] { return run(i + 1); });
      }
    };
    Step s{this, a, b, f, k};
    return s.run(0);
  }
  return fail_at("rego_unsafe_var_error", a.loc, "cannot unify: both sides have unbound variables");
}

bool Evaluator::unify_value(const Term& p, const Value& v, Frame f, Cont k) {
  if (!p.constant) {
    if (p.kind == TermKind::kVar && p.slot >= 0) {
      Value& slot = f.slots[p.slot];
      if (slot.defined()) return slot == v ? k() : true;
      slot = v;
      bool r = k();
      f.slots[p.slot] = Value();
      return r;
    }
    if (p.kind == TermKind::kArray) {
      if (!v.is(Value::Type::kArray) || v.size() != p.items.size()) return true;
      return unify_items(p, 0, v, f, k);
    }
    if (p.kind == TermKind::kObject) {
      if (!v.is(Value::Type::kObject) || v.size() != p.items.size() / 2) return true;
      return unify_items(p, 0, v, f, k);
    }
  }
  return eval_term(p, f, [&](const Value& pv) { return pv == v ? k() : true; });
}

bool Evaluator::unify_items(const Term& p, std::size_t i, const Value& v, Frame f, Cont k) {
  if (i >= p.items.size()) return k();
  if (p.kind == TermKind::kArray) {
    Value elem = v.get(Value::integer(static_cast<std::int64_t>(i)));
    return unify_value(*p.items[i], elem, f, [&] { return unify_items(p, i + 1, v, f, k); });
  }
  return eval_term(*p.items[i], f, [&](const Value& key) {
    Value got = v.get(key);
    if (!got.defined()) return true;
    return unify_value(*p.items[i + 1], got, f, [&] { return unify_items(p, i + 2, v, f, k); });
  });
}

bool Evaluator::unify_args(const std::vector<TermPtr>& params, std::size_t i,
                           std::span<const Value> args, Frame f, Cont k) {
  if (i == params.size()) return k();
  return unify_value(*params[i], args[i], f, [&] { return unify_args(params, i + 1, args, f, k); });
}

// --- rules ------------------------------------------------------------------------------------

Value Evaluator::eval_group(int group) {
  CacheEntry& c = cache_[static_cast<std::size_t>(group)];
  if (c.state == CacheState::kDone) return c.value;
  const RuleGroup& g = prog_.groups[static_cast<std::size_t>(group)];
  if (c.state == CacheState::kRunning) {
    fail(Error{"rego_recursion_error", "rule " + g.path + " is recursive"});
    return {};
  }
  if (g.kind == RuleKind::kFunction) return {};
  if (!enter()) return {};
  c.state = CacheState::kRunning;
  const ModuleAst* saved = module_;
  Value v = g.kind == RuleKind::kComplete ? eval_complete(g) : eval_partial(g);
  module_ = saved;
  leave();
  c.state = CacheState::kDone;
  c.value = v;
  return v;
}

bool Evaluator::eval_traced_body(std::string_view rule_path, const Body& b, Frame f, Cont k) {
  if (!explain_) return eval_body(b, 0, f, k);
  BodyTrace trace;
  trace.body = &b;
  trace.rule = rule_path;
  BodyTrace* saved = trace_;
  trace_ = &trace;
  bool any = false;
  bool r = eval_body(b, 0, f, [&] {
    any = true;
    BodyTrace* inner = trace_;
    trace_ = saved;
    bool cont = k();
    trace_ = inner;
    return cont;
  });
  trace_ = saved;
  if (!any && trace.failed && !error_ && explanation_.entries.size() < kMaxExplanationEntries) {
    explanation_.entries.push_back(std::move(trace.entry));
  }
  return r;
}

bool Evaluator::eval_clauses(const RuleGroup& g, const Rule& r, Frame f, ValueCont emit) {
  for (const Clause& c : r.clauses) {
    const Term* vt = c.value.get();
    bool constant = vt == nullptr || vt->constant;
    bool produced = false;
    bool emit_stop = false;
    eval_traced_body(g.path, c.body, f, [&] {
      produced = true;
      auto on_value = [&](const Value& v) {
        if (!emit(v)) {
          emit_stop = true;
          return false;
        }
        return !constant;  // a constant value cannot change: one solution is enough
      };
      if (vt == nullptr) return on_value(Value::boolean(true));
      return eval_term(*vt, f, on_value);
    });
    if (error_ || emit_stop) return false;
    if (produced) return true;
  }
  return true;
}

Value Evaluator::eval_complete(const RuleGroup& g) {
  Value result;
  for (const Rule* r : g.defs) {
    if (result.defined() && all_clauses_constant_equal(*r, result)) continue;
    module_ = prog_.modules[r->module].get();
    FrameStorage fs(r->num_slots);
    eval_clauses(g, *r, Frame{fs.data()}, [&](const Value& v) {
      if (!result.defined()) {
        result = v;
        return true;
      }
      if (!(result == v)) {
        return fail_at("eval_conflict_error", r->loc,
                       "complete rules must not produce multiple outputs (" + g.path + ")");
      }
      return true;
    });
    if (error_) return {};
  }
  if (!result.defined() && g.default_rule != nullptr) {
    result = g.default_rule->clauses[0].value->value;
  }
  return result;
}

Value Evaluator::eval_partial(const RuleGroup& g) {
  std::vector<Value> items;
  std::vector<std::pair<Value, Value>> pairs;
  std::size_t limit = prog_.limits.max_output_bytes;
  for (const Rule* r : g.defs) {
    module_ = prog_.modules[r->module].get();
    FrameStorage fs(r->num_slots);
    Frame f{fs.data()};
    auto too_big = [&] {
      return fail_at("eval_limit_exceeded", r->loc,
                     g.path + " exceeds max_output_bytes (" + std::to_string(limit) + ") elements");
    };
    eval_traced_body(g.path, r->clauses[0].body, f, [&] {
      return eval_term(*r->key, f, [&](const Value& key) {
        if (g.kind == RuleKind::kPartialSet) {
          items.push_back(key);
          return items.size() <= limit || too_big();
        }
        return eval_term(*r->clauses[0].value, f, [&](const Value& v) {
          pairs.emplace_back(key, v);
          return pairs.size() <= limit || too_big();
        });
      });
    });
    if (error_) return {};
  }
  if (g.kind == RuleKind::kPartialSet) return Value::set(std::move(items));
  std::stable_sort(pairs.begin(), pairs.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<Value, Value>> unique;
  for (auto& kv : pairs) {
    if (!unique.empty() && unique.back().first == kv.first) {
      if (!(unique.back().second == kv.second)) {
        module_ = prog_.modules[g.defs[0]->module].get();
        fail_at("eval_conflict_error", g.defs[0]->loc,
                "object keys must be unique: " + g.path + "[" + kv.first.to_string() + "]");
        return {};
      }
      continue;
    }
    unique.push_back(std::move(kv));
  }
  return Value::object(std::move(unique));
}

Value Evaluator::eval_function(int group, std::span<const Value> args, const Location&) {
  const RuleGroup& g = prog_.groups[static_cast<std::size_t>(group)];
  if (!enter()) return {};
  const ModuleAst* saved = module_;
  Value result;
  for (const Rule* r : g.defs) {
    module_ = prog_.modules[r->module].get();
    FrameStorage fs(r->num_slots);
    Frame f{fs.data()};
    unify_args(r->args, 0, args, f, [&] {
      return eval_clauses(g, *r, f, [&](const Value& v) {
        if (!result.defined()) {
          result = v;
          return true;
        }
        if (!(result == v)) {
          return fail_at(
              "eval_conflict_error", r->loc,
              "functions must not produce multiple outputs for same inputs (" + g.path + ")");
        }
        return true;
      });
    });
    if (error_) break;
  }
  if (!result.defined() && !error_ && g.default_rule != nullptr) {
    result = g.default_rule->clauses[0].value->value;
  }
  module_ = saved;
  leave();
  return error_ ? Value() : result;
}

Value Evaluator::base_data(const std::vector<std::string>& path) const {
  const Json* cur = &data_;
  for (const auto& seg : path) {
    if (!cur->is_object()) return {};
    auto it = cur->find(seg);
    if (it == cur->end()) return {};
    cur = &*it;
  }
  return Value::json(*cur);
}

Value Evaluator::package_value(int node, const std::vector<std::string>& data_path) {
  const PackageNode& n = prog_.nodes[static_cast<std::size_t>(node)];
  std::vector<std::pair<Value, Value>> items;
  Value base = base_data(data_path);
  if (base.is(Value::Type::kObject)) {
    base.for_each([&](const Value& k, const Value& v) {
      if (!(k.is(Value::Type::kString) && n.children.contains(k.as_string()))) {
        items.emplace_back(k, v);
      }
      return true;
    });
  }
  for (const auto& [name, child] : n.children) {
    const PackageNode& cn = prog_.nodes[static_cast<std::size_t>(child)];
    Value v;
    if (cn.group >= 0) {
      v = eval_group(cn.group);
    } else {
      v = package_value(child, cn.path);
    }
    if (error_) return {};
    if (v.defined()) items.emplace_back(Value::string_view(name), v);
  }
  return Value::object(std::move(items));
}

// --- explanations -----------------------------------------------------------------------------

std::string Evaluator::source_text(std::uint32_t begin, std::uint32_t end) const {
  std::string_view src = module_ != nullptr ? std::string_view(module_->source) : query_source_;
  if (begin >= src.size() || end <= begin) return {};
  return std::string(src.substr(begin, std::min<std::size_t>(end, src.size()) - begin));
}

void Evaluator::collect_operands(const Expr& e, std::vector<const Term*>& out) const {
  switch (e.kind) {
    case ExprKind::kTerm:
      if (e.a->kind == TermKind::kCall && e.a->call_kind == CallKind::kBuiltin) {
        for (const auto& a : e.a->items) out.push_back(a.get());
      } else {
        out.push_back(e.a.get());
      }
      return;
    case ExprKind::kAssign:
      out.push_back(e.b.get());
      return;
    case ExprKind::kUnify:
      out.push_back(e.a.get());
      out.push_back(e.b.get());
      return;
    case ExprKind::kNot:
      collect_operands(*e.inner, out);
      return;
    case ExprKind::kSomeIn:
    case ExprKind::kEvery:
      out.push_back(e.c.get());
      return;
    case ExprKind::kSome:
      return;
  }
}

void Evaluator::record_failure(const Expr& e, std::size_t index, Frame f) {
  BodyTrace* trace = trace_;
  if (trace->failed && index < trace->index) return;
  trace->failed = true;
  trace->index = index;
  ExplanationEntry& entry = trace->entry;
  entry.rule = std::string(trace->rule);
  std::string_view file = module_ != nullptr ? std::string_view(module_->file) : query_file_;
  entry.location = format_location(file, e.loc);
  entry.expression = source_text(e.loc.offset, e.end);
  entry.values.clear();
  std::vector<const Term*> operands;
  collect_operands(e, operands);
  trace_ = nullptr;
  for (const Term* op : operands) {
    if (op->kind == TermKind::kScalar || (op->constant && op->kind != TermKind::kRef)) continue;
    if (op->kind == TermKind::kVar && !f.slots[op->slot].defined()) continue;
    std::optional<Error> saved_error = error_;
    std::string text = "undefined";
    eval_term(*op, f, [&](const Value& v) {
      text = v.to_string();
      if (text.size() > 256) text = text.substr(0, 253) + "...";
      return false;
    });
    if (error_ && !saved_error) text = "error: " + error_->message;
    error_ = saved_error;
    entry.values.emplace_back(source_text(op->loc.offset, op->end), std::move(text));
  }
  trace_ = trace;
}

// --- entry points -----------------------------------------------------------------------------

Result<Value> Evaluator::eval_query(const Body& query, int num_slots, std::string_view file,
                                    std::string_view source) {
  module_ = nullptr;
  query_file_ = file;
  query_source_ = source;
  FrameStorage fs(num_slots);
  Frame f{fs.data()};
  Value result;
  const std::size_t n = query.exprs.size();
  struct Run {
    Evaluator* self;
    const Body& q;
    Frame f;
    Value& result;
    std::size_t n;
    bool go(std::size_t i) {
      const Expr& e = q.exprs[i];
      if (i + 1 == n) {
        if (e.kind == ExprKind::kTerm) {
          return self->eval_term(*e.a, f, [&](const Value& v) {
            result = v;
            return false;
          });
        }
        return self->eval_expr(e, f, [&] {
          result = Value::boolean(true);
          return false;
        });
      }
      return self->eval_expr(e, f, [&] { return go(i + 1); });
    }
  };
  Run run{this, query, f, result, n};
  run.go(0);
  if (error_) return std::unexpected(*error_);
  return result;
}

Result<Value> Evaluator::eval_data_path(const std::vector<std::string_view>& path) {
  int node = 0;
  for (std::size_t i = 0; i < path.size(); ++i) {
    const auto& children = prog_.nodes[static_cast<std::size_t>(node)].children;
    auto it = children.find(path[i]);
    if (it == children.end()) {
      std::vector<std::string> full(path.begin(), path.end());
      return base_data(full);
    }
    node = it->second;
    int group = prog_.nodes[static_cast<std::size_t>(node)].group;
    if (group >= 0) {
      Value v = eval_group(group);
      if (error_) return std::unexpected(*error_);
      for (std::size_t j = i + 1; j < path.size() && v.defined(); ++j) v = v.get_field(path[j]);
      return v;
    }
  }
  Value v = package_value(node, prog_.nodes[static_cast<std::size_t>(node)].path);
  if (error_) return std::unexpected(*error_);
  return v;
}

}  // namespace coffer::policy
