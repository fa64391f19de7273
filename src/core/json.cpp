#include "core/json.h"

namespace coffer {

Result<Json> parse_json(std::string_view text, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return make_error("too_large", "JSON document of " + std::to_string(text.size()) +
                                       " bytes exceeds the limit of " +
                                       std::to_string(limits.max_bytes));
  }
  // Depth is checked with the SAX-callback parser so that hostile nesting never recurses far.
  std::size_t depth = 0;
  bool too_deep = false;
  auto callback = [&](int /*depth*/, Json::parse_event_t event, Json& /*parsed*/) {
    if (event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start) {
      if (++depth > limits.max_depth) too_deep = true;
    } else if (event == Json::parse_event_t::object_end ||
               event == Json::parse_event_t::array_end) {
      --depth;
    }
    return !too_deep;
  };
  try {
    Json j = Json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true);
    if (too_deep) {
      return make_error("bad_json",
                        "JSON nesting exceeds " + std::to_string(limits.max_depth) + " levels");
    }
    return j;
  } catch (const Json::exception& e) {
    if (too_deep) {
      return make_error("bad_json",
                        "JSON nesting exceeds " + std::to_string(limits.max_depth) + " levels");
    }
    return make_error("bad_json", std::string("malformed JSON: ") + e.what());
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

std::optional<std::string> json_optional_string(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return std::nullopt;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

}  // namespace coffer
