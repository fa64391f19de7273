// Comparison, arithmetic, set operators and membership (the infix operators of Rego).
#include <cmath>
#include <limits>

#include "policy/builtins.h"

namespace coffer::policy {

namespace {

using Args = std::span<const Value>;

Result<Value> equal(BuiltinContext&, Args a) { return Value::boolean(a[0] == a[1]); }
Result<Value> neq(BuiltinContext&, Args a) { return Value::boolean(!(a[0] == a[1])); }
Result<Value> lt(BuiltinContext&, Args a) { return Value::boolean(compare(a[0], a[1]) < 0); }
Result<Value> lte(BuiltinContext&, Args a) { return Value::boolean(compare(a[0], a[1]) <= 0); }
Result<Value> gt(BuiltinContext&, Args a) { return Value::boolean(compare(a[0], a[1]) > 0); }
Result<Value> gte(BuiltinContext&, Args a) { return Value::boolean(compare(a[0], a[1]) >= 0); }

Status need_number(std::string_view fn, Args a) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is(Value::Type::kNumber)) return operand_error(fn, i + 1, "a number", a[i]);
  }
  return ok();
}

std::vector<Value> set_items(const Value& v) { return v.set_data()->items; }

Result<Value> plus(BuiltinContext&, Args a) {
  COFFER_TRY_STATUS(need_number("plus", a));
  return add_numbers(a[0], a[1]);
}

Result<Value> minus(BuiltinContext&, Args a) {
  if (a[0].is(Value::Type::kSet) && a[1].is(Value::Type::kSet)) {
    std::vector<Value> out;
    for (const auto& e : a[0].set_data()->items) {
      if (!a[1].get(e).defined()) out.push_back(e);
    }
    return Value::set(std::move(out));
  }
  COFFER_TRY_STATUS(need_number("minus", a));
  return sub_numbers(a[0], a[1]);
}

Result<Value> mul(BuiltinContext&, Args a) {
  COFFER_TRY_STATUS(need_number("mul", a));
  return mul_numbers(a[0], a[1]);
}

Result<Value> div(BuiltinContext&, Args a) {
  COFFER_TRY_STATUS(need_number("div", a));
  if (a[1].as_double() == 0) return builtin_error("div", "divide by zero");
  if (a[0].is_int() && a[1].is_int() && a[1].as_int() != -1 && a[0].as_int() % a[1].as_int() == 0) {
    return Value::integer(a[0].as_int() / a[1].as_int());
  }
  return Value::floating(a[0].as_double() / a[1].as_double());
}

Result<Value> rem(BuiltinContext&, Args a) {
  COFFER_TRY_STATUS(need_number("rem", a));
  if (!a[0].is_int() || !a[1].is_int()) {
    return builtin_error("rem", "modulo on floating-point number");
  }
  if (a[1].as_int() == 0) return builtin_error("rem", "modulo by zero");
  if (a[1].as_int() == -1) return Value::integer(0);
  return Value::integer(a[0].as_int() % a[1].as_int());
}

Result<Value> set_or(BuiltinContext&, Args a) {
  if (!a[0].is(Value::Type::kSet)) return operand_error("or", 1, "a set", a[0]);
  if (!a[1].is(Value::Type::kSet)) return operand_error("or", 2, "a set", a[1]);
  auto items = set_items(a[0]);
  const auto& more = a[1].set_data()->items;
  items.insert(items.end(), more.begin(), more.end());
  return Value::set(std::move(items));
}

Result<Value> set_and(BuiltinContext&, Args a) {
  if (!a[0].is(Value::Type::kSet)) return operand_error("and", 1, "a set", a[0]);
  if (!a[1].is(Value::Type::kSet)) return operand_error("and", 2, "a set", a[1]);
  std::vector<Value> out;
  for (const auto& e : a[0].set_data()->items) {
    if (a[1].get(e).defined()) out.push_back(e);
  }
  return Value::set(std::move(out));
}

// x in coll: membership among array elements, set members, or object values.
Result<Value> member_2(BuiltinContext&, Args a) {
  const Value& x = a[0];
  const Value& coll = a[1];
  if (coll.is(Value::Type::kSet)) return Value::boolean(coll.get(x).defined());
  bool found = false;
  coll.for_each([&](const Value&, const Value& v) {
    if (v == x) found = true;
    return !found;
  });
  return Value::boolean(found);
}

// k, v in coll: coll[k] == v.
Result<Value> member_3(BuiltinContext&, Args a) {
  const Value& coll = a[2];
  if (coll.is(Value::Type::kSet)) {
    return Value::boolean(a[0] == a[1] && coll.get(a[0]).defined());
  }
  Value got = coll.get(a[0]);
  return Value::boolean(got.defined() && got == a[1]);
}

Result<Value> abs_fn(BuiltinContext&, Args a) {
  COFFER_TRY_STATUS(need_number("abs", a));
  if (a[0].is_int() && a[0].as_int() != std::numeric_limits<std::int64_t>::min()) {
    return Value::integer(a[0].as_int() < 0 ? -a[0].as_int() : a[0].as_int());
  }
  return Value::floating(std::fabs(a[0].as_double()));
}

Result<Value> round_fn(BuiltinContext&, Args a) {
  COFFER_TRY_STATUS(need_number("round", a));
  return a[0].is_int() ? a[0] : Value::floating(std::round(a[0].as_double()));
}
Result<Value> ceil_fn(BuiltinContext&, Args a) {
  COFFER_TRY_STATUS(need_number("ceil", a));
  return a[0].is_int() ? a[0] : Value::floating(std::ceil(a[0].as_double()));
}
Result<Value> floor_fn(BuiltinContext&, Args a) {
  COFFER_TRY_STATUS(need_number("floor", a));
  return a[0].is_int() ? a[0] : Value::floating(std::floor(a[0].as_double()));
}

}  // namespace

Value add_numbers(const Value& a, const Value& b) {
  std::int64_t r = 0;
  if (a.is_int() && b.is_int() && !__builtin_add_overflow(a.as_int(), b.as_int(), &r)) {
    return Value::integer(r);
  }
  return Value::floating(a.as_double() + b.as_double());
}

Value sub_numbers(const Value& a, const Value& b) {
  std::int64_t r = 0;
  if (a.is_int() && b.is_int() && !__builtin_sub_overflow(a.as_int(), b.as_int(), &r)) {
    return Value::integer(r);
  }
  return Value::floating(a.as_double() - b.as_double());
}

Value mul_numbers(const Value& a, const Value& b) {
  std::int64_t r = 0;
  if (a.is_int() && b.is_int() && !__builtin_mul_overflow(a.as_int(), b.as_int(), &r)) {
    return Value::integer(r);
  }
  return Value::floating(a.as_double() * b.as_double());
}

void add_operator_builtins(std::vector<BuiltinDef>& out) {
  out.push_back({"equal", 2, equal, {kTAny, kTAny}});
  out.push_back({"neq", 2, neq, {kTAny, kTAny}});
  out.push_back({"lt", 2, lt, {kTAny, kTAny}});
  out.push_back({"lte", 2, lte, {kTAny, kTAny}});
  out.push_back({"gt", 2, gt, {kTAny, kTAny}});
  out.push_back({"gte", 2, gte, {kTAny, kTAny}});
  out.push_back({"plus", 2, plus, {kTNum, kTNum}});
  out.push_back({"minus", 2, minus, {kTNum | kTSet, kTNum | kTSet}});
  out.push_back({"mul", 2, mul, {kTNum, kTNum}});
  out.push_back({"div", 2, div, {kTNum, kTNum}});
  out.push_back({"rem", 2, rem, {kTNum, kTNum}});
  out.push_back({"or", 2, set_or, {kTSet, kTSet}});
  out.push_back({"and", 2, set_and, {kTSet, kTSet}});
  out.push_back({"internal.member_2", 2, member_2, {kTAny, kTAny}});
  out.push_back({"internal.member_3", 3, member_3, {kTAny, kTAny, kTAny}});
  out.push_back({"abs", 1, abs_fn, {kTNum}});
  out.push_back({"round", 1, round_fn, {kTNum}});
  out.push_back({"ceil", 1, ceil_fn, {kTNum}});
  out.push_back({"floor", 1, floor_fn, {kTNum}});
}

}  // namespace coffer::policy
