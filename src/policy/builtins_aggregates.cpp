// Aggregates over collections: count sum product max min sort.
#include <algorithm>

#include "policy/builtins.h"

namespace coffer::policy {

namespace {

using Args = std::span<const Value>;

std::vector<Value> elements(const Value& v) {
  std::vector<Value> out;
  out.reserve(v.size());
  v.for_each([&](const Value&, const Value& e) {
    out.push_back(e);
    return true;
  });
  return out;
}

Result<Value> count(BuiltinContext&, Args a) {
  const Value& v = a[0];
  if (!(v.is(Value::Type::kString) || v.is(Value::Type::kArray) || v.is(Value::Type::kObject) ||
        v.is(Value::Type::kSet))) {
    return operand_error("count", 1, "a string, array, object or set", v);
  }
  return Value::integer(static_cast<std::int64_t>(v.size()));
}

Result<Value> fold_numbers(std::string_view fn, const Value& v, Value init,
                           Value (*op)(const Value&, const Value&)) {
  if (!v.is(Value::Type::kArray) && !v.is(Value::Type::kSet)) {
    return operand_error(fn, 1, "an array or set of numbers", v);
  }
  Value acc = std::move(init);
  bool bad = false;
  v.for_each([&](const Value&, const Value& e) {
    if (!e.is(Value::Type::kNumber)) {
      bad = true;
      return false;
    }
    acc = op(acc, e);
    return true;
  });
  if (bad) return operand_error(fn, 1, "an array or set of numbers", v);
  return acc;
}

Result<Value> sum(BuiltinContext&, Args a) {
  return fold_numbers("sum", a[0], Value::integer(0), add_numbers);
}
Result<Value> product(BuiltinContext&, Args a) {
  return fold_numbers("product", a[0], Value::integer(1), mul_numbers);
}

Result<Value> extreme(std::string_view fn, const Value& v, bool want_max) {
  if (!v.is(Value::Type::kArray) && !v.is(Value::Type::kSet)) {
    return operand_error(fn, 1, "an array or set", v);
  }
  Value best;
  v.for_each([&](const Value&, const Value& e) {
    if (!best.defined() || (want_max ? best < e : e < best)) best = e;
    return true;
  });
  return best;  // undefined for an empty collection, as in OPA
}

Result<Value> max_fn(BuiltinContext&, Args a) { return extreme("max", a[0], true); }
Result<Value> min_fn(BuiltinContext&, Args a) { return extreme("min", a[0], false); }

Result<Value> sort(BuiltinContext&, Args a) {
  if (!a[0].is(Value::Type::kArray) && !a[0].is(Value::Type::kSet)) {
    return operand_error("sort", 1, "an array or set", a[0]);
  }
  auto items = elements(a[0]);
  std::stable_sort(items.begin(), items.end());
  return Value::array(std::move(items));
}

}  // namespace

void add_aggregate_builtins(std::vector<BuiltinDef>& out) {
  out.push_back({"count", 1, count, {kTStr | kTColl}});
  out.push_back({"sum", 1, sum, {kTArr | kTSet}});
  out.push_back({"product", 1, product, {kTArr | kTSet}});
  out.push_back({"max", 1, max_fn, {kTArr | kTSet}});
  out.push_back({"min", 1, min_fn, {kTArr | kTSet}});
  out.push_back({"sort", 1, sort, {kTArr | kTSet}});
}

}  // namespace coffer::policy
