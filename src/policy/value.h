// Rego values: the JSON types plus sets, with an undefined state used for unbound variables.
// Values either own their data (shared, immutable) or borrow a view into a Json document that
// outlives the evaluation (input, data, compiled literals), so input is never copied.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/json.h"

namespace coffer::policy {

class Value;

struct ArrayData {
  std::vector<Value> items;
};
// Sorted by key, keys unique.
struct ObjectData {
  std::vector<std::pair<Value, Value>> items;
};
// Sorted, unique.
struct SetData {
  std::vector<Value> items;
};

class Value {
 public:
  // Declaration order is Rego's ordering of types (undefined first, never compared).
  enum class Type : std::uint8_t {
    kUndefined,
    kNull,
    kBoolean,
    kNumber,
    kString,
    kArray,
    kObject,
    kSet
  };

  Value() = default;

  static Value null();
  static Value boolean(bool b);
  static Value integer(std::int64_t i);
  static Value floating(double d);  // integral doubles in int64 range become integers
  // Borrowed: `s` must outlive every use of the value.
  static Value string_view(std::string_view s);
  static Value string(std::string s);
  // Borrowed view into a Json document; scalars are converted eagerly.
  static Value json(const Json& j);
  static Value array(std::vector<Value> items);
  // Keys must be unique; sorts them.
  static Value object(std::vector<std::pair<Value, Value>> items);
  // Sorts and removes duplicates.
  static Value set(std::vector<Value> items);
  // Converts a Json document into an owned value (for json.unmarshal and host results).
  static Value from_owned_json(Json j);

  [[nodiscard]] Type type() const { return type_; }
  [[nodiscard]] bool defined() const { return type_ != Type::kUndefined; }
  [[nodiscard]] bool is(Type t) const { return type_ == t; }
  [[nodiscard]] bool is_false() const { return type_ == Type::kBoolean && !u_.b; }
  [[nodiscard]] bool as_bool() const { return u_.b; }
  [[nodiscard]] bool is_int() const { return is_int_; }
  [[nodiscard]] std::int64_t as_int() const { return u_.i; }
  [[nodiscard]] double as_double() const { return is_int_ ? static_cast<double>(u_.i) : u_.d; }
  [[nodiscard]] std::string_view as_string() const { return {u_.s.data, u_.s.size}; }

  // Number of elements of a collection, or code points of a string.
  [[nodiscard]] std::size_t size() const;
  // Array element, object field, or set member (returns the member); undefined if absent.
  [[nodiscard]] Value get(const Value& key) const;
  [[nodiscard]] Value get_field(std::string_view key) const;

  // Calls f(key, value) for each element: arrays (index, element), objects (key, value) in key
  // order, sets (element, element) in order. Stops when f returns false; returns false then.
  template <typename F>
  bool for_each(F&& f) const;

  [[nodiscard]] Json to_json() const;
  // Rego literal syntax (sets as {..}, set() for empty).
  [[nodiscard]] std::string to_string() const;
  // JSON text, sets as arrays (json.marshal).
  [[nodiscard]] std::string to_json_string() const;

  [[nodiscard]] const Json* borrowed_json() const {
    return type_ >= Type::kArray ? json_ : nullptr;
  }
  [[nodiscard]] const ArrayData* array_data() const { return static_cast<const ArrayData*>(u_.p); }
  [[nodiscard]] const ObjectData* object_data() const {
    return static_cast<const ObjectData*>(u_.p);
  }
  [[nodiscard]] const SetData* set_data() const { return static_cast<const SetData*>(u_.p); }

 private:
  struct Str {
    const char* data;
    std::size_t size;
  };
  union Payload {
    bool b;
    std::int64_t i;
    double d;
    Str s;
    const void* p;  // owned ArrayData/ObjectData/SetData
  };

  Type type_ = Type::kUndefined;
  bool is_int_ = false;
  Payload u_{};
  const Json* json_ = nullptr;         // borrowed array/object when non-null
  std::shared_ptr<const void> owner_;  // keeps owned strings and collections alive
};

// Total order of Rego values (type first, then contents). Undefined sorts before everything.
int compare(const Value& a, const Value& b);
inline bool operator==(const Value& a, const Value& b) { return compare(a, b) == 0; }
inline bool operator<(const Value& a, const Value& b) { return compare(a, b) < 0; }

std::string_view type_name(Value::Type t);

template <typename F>
bool Value::for_each(F&& f) const {
  switch (type_) {
    case Type::kArray:
      if (json_ != nullptr) {
        std::int64_t i = 0;
        for (const auto& e : *json_) {
          if (!f(Value::integer(i++), Value::json(e))) return false;
        }
      } else {
        std::int64_t i = 0;
        for (const auto& e : array_data()->items) {
          if (!f(Value::integer(i++), e)) return false;
        }
      }
      return true;
    case Type::kObject:
      if (json_ != nullptr) {
        for (auto it = json_->begin(); it != json_->end(); ++it) {
          if (!f(Value::string_view(it.key()), Value::json(it.value()))) return false;
        }
      } else {
        for (const auto& [k, v] : object_data()->items) {
          if (!f(k, v)) return false;
        }
      }
      return true;
    case Type::kSet:
      for (const auto& e : set_data()->items) {
        if (!f(e, e)) return false;
      }
      return true;
    default:
      return true;
  }
}

}  // namespace coffer::policy
