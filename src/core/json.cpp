#include "core/json.h"

#include "core/bytes.h"

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

namespace coffer {
namespace {

constexpr std::size_t kQuotedKeyMax = 64;

// A member name as it may appear in a message: JSON-escaped (so control bytes and quotes cannot
// forge log lines) and cut at kQuotedKeyMax bytes on a UTF-8 character boundary.
std::string quote_key(const std::string& key) {
  std::string cut = key;
  if (cut.size() > kQuotedKeyMax) {
    std::size_t end = kQuotedKeyMax;
    while (end > 0 && (static_cast<unsigned char>(cut[end]) & 0xC0U) == 0x80U) --end;
    cut.resize(end);
    cut += "...";
  }
  return Json(cut).dump(-1, ' ', /*ensure_ascii=*/true, Json::error_handler_t::replace);
}

}  // namespace

Result<Json> parse_json(std::string_view text, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return make_error("too_large", "JSON document of " + std::to_string(text.size()) +
                                       " bytes exceeds the limit of " +
                                       std::to_string(limits.max_bytes));
  }
  // Depth and repeated member names are checked in the parser's callback, before the value is
  // built, so hostile nesting never recurses far and a repeated key never reaches the DOM.
  std::size_t depth = 0;
  bool too_deep = false;
  std::optional<std::string> repeated;
  std::vector<std::set<std::string, std::less<>>> names;  // member names of each open object
  auto callback = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
        names.emplace_back();
        [[fallthrough]];
      case Json::parse_event_t::array_start:
        if (++depth > limits.max_depth) too_deep = true;
        break;
      case Json::parse_event_t::object_end:
        if (!names.empty()) names.pop_back();
        --depth;
        break;
      case Json::parse_event_t::array_end:
        --depth;
        break;
      case Json::parse_event_t::key:
        if (!names.empty() && !names.back().insert(parsed.get<std::string>()).second) {
          repeated = parsed.get<std::string>();
        }
        break;
      case Json::parse_event_t::value:
        break;
    }
    return !too_deep && !repeated;
  };
  auto rejected = [&]() -> std::optional<Error> {
    if (too_deep) {
      return Error{"bad_json",
                   "JSON nesting exceeds " + std::to_string(limits.max_depth) + " levels"};
    }
    if (repeated) {
      return Error{"bad_json", "JSON object repeats the member name " + quote_key(*repeated) +
                                   "; a document with repeated names is refused"};
    }
    return std::nullopt;
  };
  try {
    Json j = Json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true);
    if (auto e = rejected()) return std::unexpected(*e);
    return j;
  } catch (const Json::exception& e) {
    if (auto r = rejected()) return std::unexpected(*r);
    // nlohmann's message quotes the last token read with its raw bytes (invalid UTF-8 included):
    // make it ASCII so that the error itself can always be serialised.
    return make_error("bad_json", "malformed JSON: " + printable_excerpt(e.what(), 256));
  }
}

Result<std::string> json_string(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return make_error("bad_json", "expected a JSON object");
  auto it = obj.find(key);
  if (it == obj.end()) return make_error("bad_json", "missing field '" + std::string(key) + "'");
  if (!it->is_string())
    return make_error("bad_json", "field '" + std::string(key) + "' must be a string");
  return it->get<std::string>();
}

Result<const Json*> json_object(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return make_error("bad_json", "expected a JSON object");
  auto it = obj.find(key);
  if (it == obj.end()) return make_error("bad_json", "missing field '" + std::string(key) + "'");
  if (!it->is_object())
    return make_error("bad_json", "field '" + std::string(key) + "' must be an object");
  return &*it;
}

std::size_t json_depth(const Json& value, std::size_t limit) {
  std::size_t deepest = 0;
  std::vector<std::pair<const Json*, std::size_t>> pending{{&value, 0}};
  while (!pending.empty()) {
    auto [j, depth] = pending.back();
    pending.pop_back();
    if (!j->is_structured()) continue;
    deepest = std::max(deepest, depth + 1);
    if (deepest > limit) return deepest;
    for (const auto& child : *j) pending.emplace_back(&child, depth + 1);
  }
  return deepest;
}

std::optional<std::string> json_optional_string(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return std::nullopt;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

}  // namespace coffer
