// String builtins, sprintf, format_int, to_number and regex.match (RE2).
#include <re2/re2.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "policy/builtins.h"

namespace coffer::policy {

namespace {

using Args = std::span<const Value>;

Status need_strings(std::string_view fn, Args a, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    if (!a[i].is(Value::Type::kString)) return operand_error(fn, i + 1, "a string", a[i]);
  }
  return ok();
}

Result<Value> make_string(std::string_view fn, std::string s, const BuiltinContext& ctx) {
  COFFER_TRY_STATUS(check_output_size(fn, s.size(), ctx));
  return Value::string(std::move(s));
}

// Byte offsets of each code point start, plus the end.
std::vector<std::size_t> rune_offsets(std::string_view s) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) out.push_back(i);
  }
  out.push_back(s.size());
  return out;
}

Result<Value> concat(BuiltinContext& ctx, Args a) {
  if (!a[0].is(Value::Type::kString)) return operand_error("concat", 1, "a string", a[0]);
  if (!a[1].is(Value::Type::kArray) && !a[1].is(Value::Type::kSet)) {
    return operand_error("concat", 2, "an array or set of strings", a[1]);
  }
  std::string out;
  bool first = true;
  bool bad = false;
  std::size_t limit = ctx.limits->max_output_bytes;
  a[1].for_each([&](const Value&, const Value& e) {
    if (!e.is(Value::Type::kString)) {
      bad = true;
      return false;
    }
    if (!first) out += a[0].as_string();
    first = false;
    out += e.as_string();
    return out.size() <= limit;
  });
  if (bad) return operand_error("concat", 2, "an array or set of strings", a[1]);
  return make_string("concat", std::move(out), ctx);
}

Result<Value> contains(BuiltinContext&, Args a) {
  COFFER_TRY_STATUS(need_strings("contains", a, 2));
  return Value::boolean(a[0].as_string().find(a[1].as_string()) != std::string_view::npos);
}
Result<Value> startswith(BuiltinContext&, Args a) {
  COFFER_TRY_STATUS(need_strings("startswith", a, 2));
  return Value::boolean(a[0].as_string().starts_with(a[1].as_string()));
}
Result<Value> endswith(BuiltinContext&, Args a) {
  COFFER_TRY_STATUS(need_strings("endswith", a, 2));
  return Value::boolean(a[0].as_string().ends_with(a[1].as_string()));
}

Result<Value> change_case(std::string_view fn, const Value& v, bool upper) {
  if (!v.is(Value::Type::kString)) return operand_error(fn, 1, "a string", v);
  std::string s(v.as_string());
  for (char& c : s) {
    if (upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (!upper && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return Value::string(std::move(s));
}
Result<Value> lower(BuiltinContext&, Args a) { return change_case("lower", a[0], false); }
Result<Value> upper(BuiltinContext&, Args a) { return change_case("upper", a[0], true); }

Result<Value> split(BuiltinContext&, Args a) {
  COFFER_TRY_STATUS(need_strings("split", a, 2));
  std::string_view s = a[0].as_string();
  std::string_view d = a[1].as_string();
  std::vector<Value> out;
  if (d.empty()) {
    auto offs = rune_offsets(s);
    for (std::size_t i = 0; i + 1 < offs.size(); ++i) {
      out.push_back(Value::string(std::string(s.substr(offs[i], offs[i + 1] - offs[i]))));
    }
    return Value::array(std::move(out));
  }
  std::size_t pos = 0;
  while (true) {
    std::size_t hit = s.find(d, pos);
    if (hit == std::string_view::npos) {
      out.push_back(Value::string(std::string(s.substr(pos))));
      break;
    }
    out.push_back(Value::string(std::string(s.substr(pos, hit - pos))));
    pos = hit + d.size();
  }
  return Value::array(std::move(out));
}

Result<Value> replace(BuiltinContext& ctx, Args a) {
  COFFER_TRY_STATUS(need_strings("replace", a, 3));
  std::string_view s = a[0].as_string();
  std::string_view from = a[1].as_string();
  std::string_view to = a[2].as_string();
  if (from.empty()) return a[0];
  std::string out;
  std::size_t pos = 0;
  while (true) {
    std::size_t hit = s.find(from, pos);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(pos, hit - pos));
    out.append(to);
    pos = hit + from.size();
    if (out.size() > ctx.limits->max_output_bytes) break;
  }
  out.append(s.substr(std::min(pos, s.size())));
  return make_string("replace", std::move(out), ctx);
}

enum class TrimSide { kLeft, kRight, kBoth };

std::string_view trim_cutset(std::string_view s, std::string_view cutset, TrimSide side) {
  if (side != TrimSide::kRight) {
    while (!s.empty() && cutset.find(s.front()) != std::string_view::npos) s.remove_prefix(1);
  }
  if (side != TrimSide::kLeft) {
    while (!s.empty() && cutset.find(s.back()) != std::string_view::npos) s.remove_suffix(1);
  }
  return s;
}

Result<Value> trim(BuiltinContext&, Args a) {
  COFFER_TRY_STATUS(need_strings("trim", a, 2));
  return Value::string(
      std::string(trim_cutset(a[0].as_string(), a[1].as_string(), TrimSide::kBoth)));
}
Result<Value> trim_left(BuiltinContext&, Args a) {
  COFFER_TRY_STATUS(need_strings("trim_left", a, 2));
  return Value::string(
      std::string(trim_cutset(a[0].as_string(), a[1].as_string(), TrimSide::kLeft)));
}
Result<Value> trim_right(BuiltinContext&, Args a) {
  COFFER_TRY_STATUS(need_strings("trim_right", a, 2));
  return Value::string(
      std::string(trim_cutset(a[0].as_string(), a[1].as_string(), TrimSide::kRight)));
}
Result<Value> trim_space(BuiltinContext&, Args a) {
  COFFER_TRY_STATUS(need_strings("trim_space", a, 1));
  return Value::string(std::string(trim_cutset(a[0].as_string(), " \t\n\r\v\f", TrimSide::kBoth)));
}
Result<Value> trim_prefix(BuiltinContext&, Args a) {
  COFFER_TRY_STATUS(need_strings("trim_prefix", a, 2));
  std::string_view s = a[0].as_string();
  if (s.starts_with(a[1].as_string())) s.remove_prefix(a[1].as_string().size());
  return Value::string(std::string(s));
}
Result<Value> trim_suffix(BuiltinContext&, Args a) {
  COFFER_TRY_STATUS(need_strings("trim_suffix", a, 2));
  std::string_view s = a[0].as_string();
  if (s.ends_with(a[1].as_string())) s.remove_suffix(a[1].as_string().size());
  return Value::string(std::string(s));
}

// substring(s, offset, length) in code points; a negative length means "to the end".
Result<Value> substring(BuiltinContext&, Args a) {
  if (!a[0].is(Value::Type::kString)) return operand_error("substring", 1, "a string", a[0]);
  for (std::size_t i = 1; i < 3; ++i) {
    if (!a[i].is(Value::Type::kNumber) || !a[i].is_int()) {
      return operand_error("substring", i + 1, "an integer", a[i]);
    }
  }
  if (a[1].as_int() < 0) return builtin_error("substring", "negative offset");
  std::string_view s = a[0].as_string();
  auto offs = rune_offsets(s);
  auto runes = static_cast<std::int64_t>(offs.size() - 1);
  std::int64_t start = a[1].as_int();
  if (start >= runes) return Value::string("");
  std::int64_t stop = a[2].as_int() < 0 ? runes : std::min(runes, start + a[2].as_int());
  auto b = offs[static_cast<std::size_t>(start)];
  auto e = offs[static_cast<std::size_t>(stop)];
  return Value::string(std::string(s.substr(b, e - b)));
}

Result<Value> indexof(BuiltinContext&, Args a) {
  COFFER_TRY_STATUS(need_strings("indexof", a, 2));
  std::string_view s = a[0].as_string();
  std::size_t hit = s.find(a[1].as_string());
  if (hit == std::string_view::npos) return Value::integer(-1);
  auto offs = rune_offsets(s);
  auto it = std::lower_bound(offs.begin(), offs.end(), hit);
  return Value::integer(static_cast<std::int64_t>(it - offs.begin()));
}

std::string number_text(const Value& v) {
  if (v.is_int()) return std::to_string(v.as_int());
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v.as_double());
  return std::string(buf, r.ptr);
}

// The subset of Go's fmt verbs that policies use: %v %s %d %f %e %x %X %q %t %%, with flags,
// width and precision passed through for numbers.
Result<Value> sprintf(BuiltinContext& ctx, Args a) {
  if (!a[0].is(Value::Type::kString)) return operand_error("sprintf", 1, "a string", a[0]);
  if (!a[1].is(Value::Type::kArray)) return operand_error("sprintf", 2, "an array", a[1]);
  std::string_view f = a[0].as_string();
  std::size_t argi = 0;
  std::size_t nargs = a[1].size();
  std::string out;
  for (std::size_t i = 0; i < f.size(); ++i) {
    if (f[i] != '%') {
      out += f[i];
      continue;
    }
    std::size_t spec_start = i;
    ++i;
    while (i < f.size() && std::string_view("+-# 0").find(f[i]) != std::string_view::npos) ++i;
    while (i < f.size() && ((f[i] >= '0' && f[i] <= '9') || f[i] == '.')) ++i;
    if (i >= f.size()) {
      out += "%!(NOVERB)";
      break;
    }
    char verb = f[i];
    if (verb == '%') {
      out += '%';
      continue;
    }
    if (argi >= nargs) {
      out += "%!";
      out += verb;
      out += "(MISSING)";
      continue;
    }
    Value arg = a[1].get(Value::integer(static_cast<std::int64_t>(argi++)));
    std::string spec(f.substr(spec_start, i - spec_start));
    char buf[512];
    switch (verb) {
      case 'd':
        if (arg.is(Value::Type::kNumber) && arg.is_int()) {
          std::snprintf(buf, sizeof buf, (spec + "lld").c_str(),
                        static_cast<long long>(arg.as_int()));
          out += buf;
        } else if (arg.is(Value::Type::kNumber)) {
          out += "%!d(float=" + number_text(arg) + ")";
        } else {
          out += arg.is(Value::Type::kString) ? std::string(arg.as_string()) : arg.to_string();
        }
        break;
      case 'f':
      case 'e':
      case 'g':
        if (arg.is(Value::Type::kNumber)) {
          std::snprintf(buf, sizeof buf, (spec + verb).c_str(), arg.as_double());
          out += buf;
        } else {
          out += arg.to_string();
        }
        break;
      case 'x':
      case 'X': {
        static constexpr char kLower[] = "0123456789abcdef";
        static constexpr char kUpper[] = "0123456789ABCDEF";
        const char* digits = verb == 'x' ? kLower : kUpper;
        if (arg.is(Value::Type::kString)) {
          for (unsigned char c : arg.as_string()) {
            out += digits[c >> 4];
            out += digits[c & 15];
          }
        } else if (arg.is(Value::Type::kNumber) && arg.is_int()) {
          std::snprintf(buf, sizeof buf, (spec + (verb == 'x' ? "llx" : "llX")).c_str(),
                        static_cast<long long>(arg.as_int()));
          out += buf;
        } else {
          out += arg.to_string();
        }
        break;
      }
      case 'q':
        out += arg.is(Value::Type::kString) ? Value(arg).to_string() : arg.to_string();
        break;
      case 't':
        out += arg.is(Value::Type::kBoolean) ? (arg.as_bool() ? "true" : "false") : arg.to_string();
        break;
      default:  // v, s and anything else
        if (arg.is(Value::Type::kString)) {
          out += arg.as_string();
        } else if (arg.is(Value::Type::kNumber)) {
          out += number_text(arg);
        } else {
          out += arg.to_string();
        }
        break;
    }
    if (out.size() > ctx.limits->max_output_bytes) break;
  }
  if (argi < nargs) {
    out += "%!(EXTRA";
    for (std::size_t j = argi; j < nargs; ++j) {
      out += j == argi ? " " : ", ";
      out += a[1].get(Value::integer(static_cast<std::int64_t>(j))).to_string();
    }
    out += ")";
  }
  return make_string("sprintf", std::move(out), ctx);
}

Result<Value> format_int(BuiltinContext&, Args a) {
  if (!a[0].is(Value::Type::kNumber)) return operand_error("format_int", 1, "a number", a[0]);
  if (!a[1].is(Value::Type::kNumber) || !a[1].is_int()) {
    return operand_error("format_int", 2, "an integer", a[1]);
  }
  int base = static_cast<int>(a[1].as_int());
  if (base != 2 && base != 8 && base != 10 && base != 16) {
    return builtin_error("format_int", "base must be one of 2, 8, 10, 16");
  }
  std::int64_t n =
      a[0].is_int() ? a[0].as_int() : static_cast<std::int64_t>(std::floor(a[0].as_double()));
  char buf[80];
  auto r = std::to_chars(buf, buf + sizeof buf, n, base);
  return Value::string(std::string(buf, r.ptr));
}

Result<Value> to_number(BuiltinContext&, Args a) {
  const Value& v = a[0];
  switch (v.type()) {
    case Value::Type::kNull:
      return Value::integer(0);
    case Value::Type::kBoolean:
      return Value::integer(v.as_bool() ? 1 : 0);
    case Value::Type::kNumber:
      return v;
    case Value::Type::kString: {
      std::string_view s = v.as_string();
      std::int64_t i = 0;
      auto ri = std::from_chars(s.data(), s.data() + s.size(), i);
      if (!s.empty() && ri.ec == std::errc() && ri.ptr == s.data() + s.size()) {
        return Value::integer(i);
      }
      double d = 0;
      auto rd = std::from_chars(s.data(), s.data() + s.size(), d);
      if (s.empty() || rd.ec != std::errc() || rd.ptr != s.data() + s.size() || !std::isfinite(d)) {
        return builtin_error("to_number",
                             "invalid syntax: \"" + std::string(s.substr(0, 64)) + "\"");
      }
      return Value::floating(d);
    }
    default:
      return operand_error("to_number", 1, "a null, boolean, number or string", v);
  }
}

Result<Value> regex_match(BuiltinContext& ctx, Args a) {
  COFFER_TRY_STATUS(need_strings("regex.match", a, 2));
  auto re = COFFER_TRY(ctx.regex->get(a[0].as_string()));
  std::string_view s = a[1].as_string();
  return Value::boolean(RE2::PartialMatch(re2::StringPiece(s.data(), s.size()), *re));
}

}  // namespace

void add_string_builtins(std::vector<BuiltinDef>& out) {
  out.push_back({"concat", 2, concat, {kTStr, kTArr | kTSet}});
  out.push_back({"contains", 2, contains, {kTStr, kTStr}});
  out.push_back({"startswith", 2, startswith, {kTStr, kTStr}});
  out.push_back({"endswith", 2, endswith, {kTStr, kTStr}});
  out.push_back({"lower", 1, lower, {kTStr}});
  out.push_back({"upper", 1, upper, {kTStr}});
  out.push_back({"split", 2, split, {kTStr, kTStr}});
  out.push_back({"replace", 3, replace, {kTStr, kTStr, kTStr}});
  out.push_back({"trim", 2, trim, {kTStr, kTStr}});
  out.push_back({"trim_left", 2, trim_left, {kTStr, kTStr}});
  out.push_back({"trim_right", 2, trim_right, {kTStr, kTStr}});
  out.push_back({"trim_prefix", 2, trim_prefix, {kTStr, kTStr}});
  out.push_back({"trim_suffix", 2, trim_suffix, {kTStr, kTStr}});
  out.push_back({"trim_space", 1, trim_space, {kTStr}});
  out.push_back({"substring", 3, substring, {kTStr, kTNum, kTNum}});
  out.push_back({"indexof", 2, indexof, {kTStr, kTStr}});
  out.push_back({"sprintf", 2, sprintf, {kTStr, kTArr}});
  out.push_back({"format_int", 2, format_int, {kTNum, kTNum}});
  out.push_back({"to_number", 1, to_number, {kTNull | kTBool | kTNum | kTStr}});
  out.push_back({"regex.match", 2, regex_match, {kTStr, kTStr}});
}

}  // namespace coffer::policy
