#include "policy/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

namespace coffer::policy {

namespace {

std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

int compare_numbers(const Value& a, const Value& b) {
  if (a.is_int() && b.is_int()) {
    return a.as_int() < b.as_int() ? -1 : (a.as_int() > b.as_int() ? 1 : 0);
  }
  double x = a.as_double();
  double y = b.as_double();
  return x < y ? -1 : (x > y ? 1 : 0);
}

template <typename T>
int three_way(const T& x, const T& y) {
  return x < y ? -1 : (y < x ? 1 : 0);
}

void append_number(std::string& out, const Value& v) {
  if (v.is_int()) {
    out += std::to_string(v.as_int());
    return;
  }
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v.as_double());
  out.append(buf, r.ptr);
}

void append_quoted(std::string& out, std::string_view s) { out += Json(std::string(s)).dump(); }

void append_text(std::string& out, const Value& v, bool json_style) {
  switch (v.type()) {
    case Value::Type::kUndefined:
      out += "undefined";
      return;
    case Value::Type::kNull:
      out += "null";
      return;
    case Value::Type::kBoolean:
      out += v.as_bool() ? "true" : "false";
      return;
    case Value::Type::kNumber:
      append_number(out, v);
      return;
    case Value::Type::kString:
      append_quoted(out, v.as_string());
      return;
    case Value::Type::kArray:
    case Value::Type::kSet: {
      if (!json_style && v.is(Value::Type::kSet) && v.size() == 0) {
        out += "set()";
        return;
      }
      bool set_syntax = !json_style && v.is(Value::Type::kSet);
      out += set_syntax ? '{' : '[';
      bool first = true;
      v.for_each([&](const Value&, const Value& e) {
        if (!first) out += json_style ? "," : ", ";
        first = false;
        append_text(out, e, json_style);
        return true;
      });
      out += set_syntax ? '}' : ']';
      return;
    }
    case Value::Type::kObject: {
      out += '{';
      bool first = true;
      v.for_each([&](const Value& k, const Value& e) {
        if (!first) out += json_style ? "," : ", ";
        first = false;
        if (json_style && !k.is(Value::Type::kString)) {
          append_quoted(out, k.to_json_string());
        } else {
          append_text(out, k, json_style);
        }
        out += json_style ? ":" : ": ";
        append_text(out, e, json_style);
        return true;
      });
      out += '}';
      return;
    }
  }
}

}  // namespace

Value Value::null() {
  Value v;
  v.type_ = Type::kNull;
  return v;
}

Value Value::boolean(bool b) {
  Value v;
  v.type_ = Type::kBoolean;
  v.u_.b = b;
  return v;
}

Value Value::integer(std::int64_t i) {
  Value v;
  v.type_ = Type::kNumber;
  v.is_int_ = true;
  v.u_.i = i;
  return v;
}

Value Value::floating(double d) {
  // 2^63 is exactly representable; anything in [-2^63, 2^63) converts without overflow.
  if (std::isfinite(d) && d == std::trunc(d) && d >= -9223372036854775808.0 &&
      d < 9223372036854775808.0) {
    return integer(static_cast<std::int64_t>(d));
  }
  Value v;
  v.type_ = Type::kNumber;
  v.u_.d = d;
  return v;
}

Value Value::string_view(std::string_view s) {
  Value v;
  v.type_ = Type::kString;
  v.u_.s = Str{s.data(), s.size()};
  return v;
}

Value Value::string(std::string s) {
  auto owned = std::make_shared<const std::string>(std::move(s));
  Value v = string_view(*owned);
  v.owner_ = std::move(owned);
  return v;
}

Value Value::json(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null:
      return null();
    case Json::value_t::boolean:
      return boolean(j.get<bool>());
    case Json::value_t::number_integer:
      return integer(j.get<std::int64_t>());
    case Json::value_t::number_unsigned: {
      auto u = j.get<std::uint64_t>();
      if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return integer(static_cast<std::int64_t>(u));
      }
      return floating(static_cast<double>(u));
    }
    case Json::value_t::number_float:
      return floating(j.get<double>());
    case Json::value_t::string:
      return string_view(j.get_ref<const std::string&>());
    case Json::value_t::array: {
      Value v;
      v.type_ = Type::kArray;
      v.json_ = &j;
      return v;
    }
    case Json::value_t::object: {
      Value v;
      v.type_ = Type::kObject;
      v.json_ = &j;
      return v;
    }
    default:
      return {};
  }
}

Value Value::from_owned_json(Json j) {
  auto owned = std::make_shared<const Json>(std::move(j));
  Value v = json(*owned);
  if (v.type_ >= Type::kString) v.owner_ = std::move(owned);
  return v;
}

Value Value::array(std::vector<Value> items) {
  auto data = std::make_shared<ArrayData>(ArrayData{std::move(items)});
  Value v;
  v.type_ = Type::kArray;
  v.u_.p = data.get();
  v.owner_ = std::move(data);
  return v;
}

Value Value::object(std::vector<std::pair<Value, Value>> items) {
  std::sort(items.begin(), items.end(),
            [](const auto& a, const auto& b) { return compare(a.first, b.first) < 0; });
  auto data = std::make_shared<ObjectData>(ObjectData{std::move(items)});
  Value v;
  v.type_ = Type::kObject;
  v.u_.p = data.get();
  v.owner_ = std::move(data);
  return v;
}

Value Value::set(std::vector<Value> items) {
  std::sort(items.begin(), items.end());
  items.erase(std::unique(items.begin(), items.end()), items.end());
  auto data = std::make_shared<SetData>(SetData{std::move(items)});
  Value v;
  v.type_ = Type::kSet;
  v.u_.p = data.get();
  v.owner_ = std::move(data);
  return v;
}

std::size_t Value::size() const {
  switch (type_) {
    case Type::kString:
      return utf8_length(as_string());
    case Type::kArray:
      return json_ != nullptr ? json_->size() : array_data()->items.size();
    case Type::kObject:
      return json_ != nullptr ? json_->size() : object_data()->items.size();
    case Type::kSet:
      return set_data()->items.size();
    default:
      return 0;
  }
}

Value Value::get_field(std::string_view key) const {
  if (type_ != Type::kObject) return {};
  if (json_ != nullptr) {
    auto it = json_->find(key);
    if (it == json_->end()) return {};
    return json(*it);
  }
  const auto& items = object_data()->items;
  auto it =
      std::lower_bound(items.begin(), items.end(), key, [](const auto& kv, std::string_view k) {
        if (kv.first.type() != Type::kString) return kv.first.type() < Type::kString;
        return kv.first.as_string() < k;
      });
  if (it == items.end() || !it->first.is(Type::kString) || it->first.as_string() != key) return {};
  return it->second;
}

Value Value::get(const Value& key) const {
  switch (type_) {
    case Type::kArray: {
      if (key.type_ != Type::kNumber) return {};
      std::int64_t i = 0;
      if (key.is_int_) {
        i = key.u_.i;
      } else {
        return {};
      }
      if (i < 0 || static_cast<std::size_t>(i) >= size()) return {};
      if (json_ != nullptr) return json((*json_)[static_cast<std::size_t>(i)]);
      return array_data()->items[static_cast<std::size_t>(i)];
    }
    case Type::kObject: {
      if (key.type_ == Type::kString) return get_field(key.as_string());
      if (json_ != nullptr) return {};
      const auto& items = object_data()->items;
      auto it = std::lower_bound(items.begin(), items.end(), key,
                                 [](const auto& kv, const Value& k) { return kv.first < k; });
      if (it == items.end() || !(it->first == key)) return {};
      return it->second;
    }
    case Type::kSet: {
      const auto& items = set_data()->items;
      auto it = std::lower_bound(items.begin(), items.end(), key);
      if (it == items.end() || !(*it == key)) return {};
      return *it;
    }
    default:
      return {};
  }
}

int compare(const Value& a, const Value& b) {
  if (a.type() != b.type()) return a.type() < b.type() ? -1 : 1;
  switch (a.type()) {
    case Value::Type::kUndefined:
    case Value::Type::kNull:
      return 0;
    case Value::Type::kBoolean:
      return three_way(a.as_bool(), b.as_bool());
    case Value::Type::kNumber:
      return compare_numbers(a, b);
    case Value::Type::kString: {
      int c = a.as_string().compare(b.as_string());
      return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    case Value::Type::kArray:
    case Value::Type::kSet: {
      if (a.borrowed_json() != nullptr && a.borrowed_json() == b.borrowed_json()) return 0;
      std::size_t na = a.size();
      std::size_t nb = b.size();
      for (std::size_t i = 0; i < std::min(na, nb); ++i) {
        Value x;
        Value y;
        if (a.is(Value::Type::kSet)) {
          x = a.set_data()->items[i];
          y = b.set_data()->items[i];
        } else {
          x = a.get(Value::integer(static_cast<std::int64_t>(i)));
          y = b.get(Value::integer(static_cast<std::int64_t>(i)));
        }
        int c = compare(x, y);
        if (c != 0) return c;
      }
      return three_way(na, nb);
    }
    case Value::Type::kObject: {
      if (a.borrowed_json() != nullptr && a.borrowed_json() == b.borrowed_json()) return 0;
      // Compare as sorted (key, value) sequences.
      std::vector<std::pair<Value, Value>> ea;
      std::vector<std::pair<Value, Value>> eb;
      ea.reserve(a.size());
      eb.reserve(b.size());
      a.for_each([&](const Value& k, const Value& v) {
        ea.emplace_back(k, v);
        return true;
      });
      b.for_each([&](const Value& k, const Value& v) {
        eb.emplace_back(k, v);
        return true;
      });
      for (std::size_t i = 0; i < std::min(ea.size(), eb.size()); ++i) {
        int c = compare(ea[i].first, eb[i].first);
        if (c != 0) return c;
        c = compare(ea[i].second, eb[i].second);
        if (c != 0) return c;
      }
      return three_way(ea.size(), eb.size());
    }
  }
  return 0;
}

std::string_view type_name(Value::Type t) {
  switch (t) {
    case Value::Type::kUndefined:
      return "undefined";
    case Value::Type::kNull:
      return "null";
    case Value::Type::kBoolean:
      return "boolean";
    case Value::Type::kNumber:
      return "number";
    case Value::Type::kString:
      return "string";
    case Value::Type::kArray:
      return "array";
    case Value::Type::kObject:
      return "object";
    case Value::Type::kSet:
      return "set";
  }
  return "undefined";
}

Json Value::to_json() const {
  switch (type_) {
    case Type::kUndefined:
      return Json(Json::value_t::discarded);
    case Type::kNull:
      return Json(nullptr);
    case Type::kBoolean:
      return Json(u_.b);
    case Type::kNumber:
      return is_int_ ? Json(u_.i) : Json(u_.d);
    case Type::kString:
      return Json(std::string(as_string()));
    case Type::kArray:
    case Type::kSet: {
      if (json_ != nullptr) return *json_;
      Json out = Json::array();
      for_each([&](const Value&, const Value& e) {
        out.push_back(e.to_json());
        return true;
      });
      return out;
    }
    case Type::kObject: {
      if (json_ != nullptr) return *json_;
      Json out = Json::object();
      for (const auto& [k, v] : object_data()->items) {
        std::string key = k.is(Type::kString) ? std::string(k.as_string()) : k.to_json_string();
        out[key] = v.to_json();
      }
      return out;
    }
  }
  return Json();
}

std::string Value::to_string() const {
  std::string out;
  append_text(out, *this, false);
  return out;
}

std::string Value::to_json_string() const {
  std::string out;
  append_text(out, *this, true);
  return out;
}

}  // namespace coffer::policy
