// Time, semantic versions and type predicates.
#include <charconv>
#include <chrono>

#include "core/clock.h"
#include "policy/builtins.h"

namespace coffer::policy {

namespace {

using Args = std::span<const Value>;

Result<Value> now_ns(BuiltinContext& ctx, Args) { return Value::integer(ctx.now_ns); }

Result<Value> parse_rfc3339_ns(BuiltinContext&, Args a) {
  if (!a[0].is(Value::Type::kString)) {
    return operand_error("time.parse_rfc3339_ns", 1, "a string", a[0]);
  }
  auto t = parse_rfc3339(a[0].as_string());
  if (!t) return builtin_error("time.parse_rfc3339_ns", t.error().message);
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t->time_since_epoch()).count();
  return Value::integer(static_cast<std::int64_t>(ns));
}

// Semantic Versioning 2.0.0: MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD].
struct SemVer {
  std::uint64_t major = 0, minor = 0, patch = 0;
  std::vector<std::string_view> pre;
};

bool numeric_id(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool valid_ident(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    bool ok =
        (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::vector<std::string_view> split_dots(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (true) {
    std::size_t dot = s.find('.', pos);
    out.push_back(
        s.substr(pos, dot == std::string_view::npos ? std::string_view::npos : dot - pos));
    if (dot == std::string_view::npos) return out;
    pos = dot + 1;
  }
}

std::optional<SemVer> parse_semver(std::string_view s) {
  std::size_t plus = s.find('+');
  if (plus != std::string_view::npos) {
    for (auto id : split_dots(s.substr(plus + 1))) {
      if (!valid_ident(id)) return std::nullopt;
    }
    s = s.substr(0, plus);
  }
  SemVer v;
  std::size_t dash = s.find('-');
  if (dash != std::string_view::npos) {
    v.pre = split_dots(s.substr(dash + 1));
    for (auto id : v.pre) {
      if (!valid_ident(id) || (numeric_id(id) && id.size() > 1 && id[0] == '0'))
        return std::nullopt;
    }
    s = s.substr(0, dash);
  }
  auto core = split_dots(s);
  if (core.size() != 3) return std::nullopt;
  std::uint64_t* out[3] = {&v.major, &v.minor, &v.patch};
  for (int i = 0; i < 3; ++i) {
    auto p = core[static_cast<std::size_t>(i)];
    if (!numeric_id(p) || (p.size() > 1 && p[0] == '0')) return std::nullopt;
    auto r = std::from_chars(p.data(), p.data() + p.size(), *out[i]);
    if (r.ec != std::errc()) return std::nullopt;
  }
  return v;
}

int cmp3(std::uint64_t a, std::uint64_t b) { return a < b ? -1 : (a > b ? 1 : 0); }

int compare_semver(const SemVer& a, const SemVer& b) {
  if (int c = cmp3(a.major, b.major)) return c;
  if (int c = cmp3(a.minor, b.minor)) return c;
  if (int c = cmp3(a.patch, b.patch)) return c;
  // A version with a pre-release has lower precedence than the release.
  if (a.pre.empty() || b.pre.empty())
    return a.pre.empty() == b.pre.empty() ? 0 : (a.pre.empty() ? 1 : -1);
  for (std::size_t i = 0; i < std::min(a.pre.size(), b.pre.size()); ++i) {
    auto x = a.pre[i];
    auto y = b.pre[i];
    bool nx = numeric_id(x);
    bool ny = numeric_id(y);
    if (nx && ny) {
      if (x.size() != y.size()) return x.size() < y.size() ? -1 : 1;
      if (int c = x.compare(y)) return c < 0 ? -1 : 1;
    } else if (nx != ny) {
      return nx ? -1 : 1;  // numeric identifiers have lower precedence
    } else if (int c = x.compare(y)) {
      return c < 0 ? -1 : 1;
    }
  }
  return cmp3(a.pre.size(), b.pre.size());
}

Result<Value> semver_compare(BuiltinContext&, Args a) {
  std::optional<SemVer> v[2];
  for (std::size_t i = 0; i < 2; ++i) {
    if (!a[i].is(Value::Type::kString))
      return operand_error("semver.compare", i + 1, "a string", a[i]);
    v[i] = parse_semver(a[i].as_string());
    if (!v[i]) {
      return builtin_error(
          "semver.compare",
          "string \"" + std::string(a[i].as_string().substr(0, 64)) + "\" is not a valid SemVer");
    }
  }
  return Value::integer(compare_semver(*v[0], *v[1]));
}

Result<Value> semver_is_valid(BuiltinContext&, Args a) {
  return Value::boolean(a[0].is(Value::Type::kString) &&
                        parse_semver(a[0].as_string()).has_value());
}

template <Value::Type T>
Result<Value> is_type(BuiltinContext&, Args a) {
  return Value::boolean(a[0].is(T));
}

Result<Value> type_name_fn(BuiltinContext&, Args a) {
  return Value::string_view(type_name(a[0].type()));
}

}  // namespace

void add_misc_builtins(std::vector<BuiltinDef>& out) {
  out.push_back({"time.now_ns", 0, now_ns, {}});
  out.push_back({"time.parse_rfc3339_ns", 1, parse_rfc3339_ns, {kTStr}});
  out.push_back({"semver.compare", 2, semver_compare, {kTStr, kTStr}});
  out.push_back({"semver.is_valid", 1, semver_is_valid, {kTAny}});
  out.push_back({"is_string", 1, is_type<Value::Type::kString>, {kTAny}});
  out.push_back({"is_number", 1, is_type<Value::Type::kNumber>, {kTAny}});
  out.push_back({"is_boolean", 1, is_type<Value::Type::kBoolean>, {kTAny}});
  out.push_back({"is_array", 1, is_type<Value::Type::kArray>, {kTAny}});
  out.push_back({"is_object", 1, is_type<Value::Type::kObject>, {kTAny}});
  out.push_back({"is_set", 1, is_type<Value::Type::kSet>, {kTAny}});
  out.push_back({"is_null", 1, is_type<Value::Type::kNull>, {kTAny}});
  out.push_back({"type_name", 1, type_name_fn, {kTAny}});
}

}  // namespace coffer::policy
