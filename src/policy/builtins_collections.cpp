// Objects, arrays and sets: object.get/keys/remove/union, array.concat/slice, union, intersection.
#include <algorithm>

#include "policy/builtins.h"

namespace coffer::policy {

namespace {

using Args = std::span<const Value>;

std::vector<std::pair<Value, Value>> entries(const Value& v) {
  std::vector<std::pair<Value, Value>> out;
  out.reserve(v.size());
  v.for_each([&](const Value& k, const Value& e) {
    out.emplace_back(k, e);
    return true;
  });
  return out;
}

std::vector<Value> elements(const Value& v) {
  std::vector<Value> out;
  out.reserve(v.size());
  v.for_each([&](const Value&, const Value& e) {
    out.push_back(e);
    return true;
  });
  return out;
}

// object.get(obj, key, default); a key that is an array is a path into nested objects.
Result<Value> object_get(BuiltinContext&, Args a) {
  if (!a[0].is(Value::Type::kObject)) return operand_error("object.get", 1, "an object", a[0]);
  if (a[1].is(Value::Type::kArray)) {
    Value cur = a[0];
    bool missing = false;
    a[1].for_each([&](const Value&, const Value& k) {
      if (!cur.is(Value::Type::kObject) && !cur.is(Value::Type::kArray) &&
          !cur.is(Value::Type::kSet)) {
        missing = true;
        return false;
      }
      cur = cur.get(k);
      missing = !cur.defined();
      return !missing;
    });
    return missing ? a[2] : cur;
  }
  Value v = a[0].get(a[1]);
  return v.defined() ? v : a[2];
}

Result<Value> object_keys(BuiltinContext&, Args a) {
  if (!a[0].is(Value::Type::kObject)) return operand_error("object.keys", 1, "an object", a[0]);
  std::vector<Value> keys;
  a[0].for_each([&](const Value& k, const Value&) {
    keys.push_back(k);
    return true;
  });
  return Value::set(std::move(keys));
}

Result<Value> object_remove(BuiltinContext&, Args a) {
  if (!a[0].is(Value::Type::kObject)) return operand_error("object.remove", 1, "an object", a[0]);
  std::vector<Value> drop;
  if (a[1].is(Value::Type::kObject)) {
    a[1].for_each([&](const Value& k, const Value&) {
      drop.push_back(k);
      return true;
    });
  } else if (a[1].is(Value::Type::kArray) || a[1].is(Value::Type::kSet)) {
    drop = elements(a[1]);
  } else {
    return operand_error("object.remove", 2, "an array, object or set", a[1]);
  }
  std::sort(drop.begin(), drop.end());
  std::vector<std::pair<Value, Value>> out;
  a[0].for_each([&](const Value& k, const Value& v) {
    if (!std::binary_search(drop.begin(), drop.end(), k)) out.emplace_back(k, v);
    return true;
  });
  return Value::object(std::move(out));
}

// Recursive merge; on conflicts b wins, nested objects merge.
Value merge(const Value& a, const Value& b) {
  if (!a.is(Value::Type::kObject) || !b.is(Value::Type::kObject)) return b;
  auto out = entries(a);
  b.for_each([&](const Value& k, const Value& v) {
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& kv) { return kv.first == k; });
    if (it == out.end()) {
      out.emplace_back(k, v);
    } else {
      it->second = merge(it->second, v);
    }
    return true;
  });
  return Value::object(std::move(out));
}

Result<Value> object_union(BuiltinContext&, Args a) {
  if (!a[0].is(Value::Type::kObject)) return operand_error("object.union", 1, "an object", a[0]);
  if (!a[1].is(Value::Type::kObject)) return operand_error("object.union", 2, "an object", a[1]);
  return merge(a[0], a[1]);
}

Result<Value> array_concat(BuiltinContext& ctx, Args a) {
  if (!a[0].is(Value::Type::kArray)) return operand_error("array.concat", 1, "an array", a[0]);
  if (!a[1].is(Value::Type::kArray)) return operand_error("array.concat", 2, "an array", a[1]);
  COFFER_TRY_STATUS(check_output_size("array.concat", a[0].size() + a[1].size(), ctx));
  auto items = elements(a[0]);
  auto more = elements(a[1]);
  items.insert(items.end(), more.begin(), more.end());
  return Value::array(std::move(items));
}

Result<Value> array_slice(BuiltinContext&, Args a) {
  if (!a[0].is(Value::Type::kArray)) return operand_error("array.slice", 1, "an array", a[0]);
  for (std::size_t i = 1; i < 3; ++i) {
    if (!a[i].is(Value::Type::kNumber) || !a[i].is_int()) {
      return operand_error("array.slice", i + 1, "an integer", a[i]);
    }
  }
  auto n = static_cast<std::int64_t>(a[0].size());
  std::int64_t start = std::clamp<std::int64_t>(a[1].as_int(), 0, n);
  std::int64_t stop = std::clamp<std::int64_t>(a[2].as_int(), 0, n);
  std::vector<Value> out;
  for (std::int64_t i = start; i < stop; ++i) out.push_back(a[0].get(Value::integer(i)));
  return Value::array(std::move(out));
}

Result<Value> set_union(BuiltinContext&, Args a) {
  if (!a[0].is(Value::Type::kSet)) return operand_error("union", 1, "a set of sets", a[0]);
  std::vector<Value> out;
  for (const auto& s : a[0].set_data()->items) {
    if (!s.is(Value::Type::kSet)) return operand_error("union", 1, "a set of sets", a[0]);
    out.insert(out.end(), s.set_data()->items.begin(), s.set_data()->items.end());
  }
  return Value::set(std::move(out));
}

Result<Value> set_intersection(BuiltinContext&, Args a) {
  if (!a[0].is(Value::Type::kSet)) return operand_error("intersection", 1, "a set of sets", a[0]);
  const auto& sets = a[0].set_data()->items;
  if (sets.empty()) return Value::set({});
  for (const auto& s : sets) {
    if (!s.is(Value::Type::kSet)) return operand_error("intersection", 1, "a set of sets", a[0]);
  }
  std::vector<Value> out;
  for (const auto& e : sets[0].set_data()->items) {
    bool all = std::all_of(sets.begin() + 1, sets.end(),
                           [&](const Value& s) { return s.get(e).defined(); });
    if (all) out.push_back(e);
  }
  return Value::set(std::move(out));
}

}  // namespace

void add_collection_builtins(std::vector<BuiltinDef>& out) {
  out.push_back({"object.get", 3, object_get, {kTObj, kTAny, kTAny}});
  out.push_back({"object.keys", 1, object_keys, {kTObj}});
  out.push_back({"object.remove", 2, object_remove, {kTObj, kTColl}});
  out.push_back({"object.union", 2, object_union, {kTObj, kTObj}});
  out.push_back({"array.concat", 2, array_concat, {kTArr, kTArr}});
  out.push_back({"array.slice", 3, array_slice, {kTArr, kTNum, kTNum}});
  out.push_back({"union", 1, set_union, {kTSet}});
  out.push_back({"intersection", 1, set_intersection, {kTSet}});
}

}  // namespace coffer::policy
