#include "jose/jcs.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <utility>
#include <vector>

namespace coffer::jose {
namespace {

constexpr std::size_t kMaxDepth = 256;

std::unexpected<Error> bad_json(std::string message) {
  return make_error("bad_json", std::move(message));
}

// Decodes one UTF-8 sequence at s[i], advancing i; -1 if invalid (overlong, surrogate, >10FFFF).
long next_code_point(std::string_view s, std::size_t& i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char b0 = byte(i);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  std::size_t len = 0;
  long cp = 0;
  long min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return -1;
  }
  if (i + len > s.size()) return -1;
  for (std::size_t k = 1; k < len; ++k) {
    unsigned char b = byte(i + k);
    if ((b & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
  i += len;
  return cp;
}

// RFC 8785 section 3.2.2.2 (ECMAScript JSON.stringify's QuoteJSONString).
Status append_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    std::size_t start = i;
    long cp = next_code_point(s, i);
    if (cp < 0) return bad_json("string is not valid UTF-8");
    switch (cp) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (cp < 0x20) {
          out += "\\u00";
          out += kHex[cp >> 4];
          out += kHex[cp & 0xF];
        } else {
          out.append(s.substr(start, i - start));
        }
    }
  }
  out += '"';
  return ok();
}

// Sort key of RFC 8785 section 3.2.3: the UTF-16 code units of the member name.
Result<std::u16string> utf16_units(std::string_view s) {
  std::u16string units;
  units.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    long cp = next_code_point(s, i);
    if (cp < 0) return bad_json("member name is not valid UTF-8");
    if (cp >= 0x10000) {
      cp -= 0x10000;
      units += static_cast<char16_t>(0xD800 + (cp >> 10));
      units += static_cast<char16_t>(0xDC00 + (cp & 0x3FF));
    } else {
      units += static_cast<char16_t>(cp);
    }
  }
  return units;
}

Status append_value(std::string& out, const Json& v, std::size_t depth) {
  if (depth > kMaxDepth) return bad_json("JSON nesting exceeds 256 levels");
  switch (v.type()) {
    case Json::value_t::null:
      out += "null";
      return ok();
    case Json::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      return ok();
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      out += COFFER_TRY(jcs_number(v.get<double>()));
      return ok();
    case Json::value_t::string:
      return append_string(out, v.get_ref<const std::string&>());
    case Json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v) {
        if (!first) out += ',';
        first = false;
        COFFER_TRY_STATUS(append_value(out, e, depth + 1));
      }
      out += ']';
      return ok();
    }
    case Json::value_t::object: {
      // nlohmann orders members by UTF-8 bytes, which differs from UTF-16 order only between
      // U+E000..U+FFFF and supplementary characters; sort explicitly.
      std::vector<std::pair<std::u16string, Json::const_iterator>> members;
      members.reserve(v.size());
      for (auto it = v.begin(); it != v.end(); ++it) {
        members.emplace_back(COFFER_TRY(utf16_units(it.key())), it);
      }
      std::sort(members.begin(), members.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      out += '{';
      bool first = true;
      for (const auto& [units, it] : members) {
        if (!first) out += ',';
        first = false;
        COFFER_TRY_STATUS(append_string(out, it.key()));
        out += ':';
        COFFER_TRY_STATUS(append_value(out, it.value(), depth + 1));
      }
      out += '}';
      return ok();
    }
    default:
      return bad_json("JCS cannot represent binary or discarded JSON values");
  }
}

}  // namespace

Result<std::string> jcs_number(double value) {
  if (!std::isfinite(value)) return bad_json("JCS cannot represent NaN or Infinity");
  if (value == 0) return std::string("0");  // -0 too
  std::string out;
  if (value < 0) {
    out += '-';
    value = -value;
  }
  // Shortest round-trip digits (as ECMAScript requires: the smallest k), in scientific form.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<std::size_t>(res.ptr - buf));
  auto e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos)) {
    if (c != '.') digits += c;
  }
  int exp10 = 0;
  std::string_view exp_text = sci.substr(e_pos + 1);
  if (exp_text.front() == '+') exp_text.remove_prefix(1);
  std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exp10);
  // ES2015 7.1.12.1: value = 0.d1d2...dk x 10^n, k digits.
  const int k = static_cast<int>(digits.size());
  const int n = exp10 + 1;
  if (k <= n && n <= 21) {
    out += digits;
    out.append(static_cast<std::size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out.append(digits, 0, static_cast<std::size_t>(n));
    out += '.';
    out.append(digits, static_cast<std::size_t>(n));
  } else if (-6 < n && n <= 0) {
    out += "0.";
    out.append(static_cast<std::size_t>(-n), '0');
    out += digits;
  } else {
    out += digits[0];
    if (k > 1) {
      out += '.';
      out.append(digits, 1);
    }
    out += 'e';
    out += n - 1 >= 0 ? '+' : '-';
    out += std::to_string(std::abs(n - 1));
  }
  return out;
}

Result<std::string> jcs(const Json& value) {
  std::string out;
  COFFER_TRY_STATUS(append_value(out, value, 0));
  return out;
}

Result<std::string> jcs_from_text(std::string_view json_text) {
  // The one strict parse mode: repeated member names (RFC 8785 section 3.1 requires unique ones),
  // invalid UTF-8, oversize and over-deep input are all "bad_json" or "too_large" there.
  auto value = parse_json(json_text, JsonLimits{16 * 1024 * 1024, kMaxDepth});
  if (!value) {
    if (value.error().code == "too_large")
      return make_error("too_large", "JSON text exceeds 16 MiB");
    return bad_json(value.error().message);
  }
  return jcs(*value);
}

}  // namespace coffer::jose
