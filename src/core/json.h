// The one JSON library of the codebase (nlohmann::json) and bounded parsing of untrusted text.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace coffer {

using Json = nlohmann::json;

struct JsonLimits {
  std::size_t max_bytes = 16 * 1024 * 1024;
  std::size_t max_depth = 64;
};

// Parses untrusted JSON strictly, the one parse mode for every document we did not write
// ourselves: rejects text over the size limit ("too_large"), nesting deeper than max_depth,
// malformed input or invalid UTF-8, and an object that repeats a member name, compared after
// unescaping ("bad_json"; a parser that kept the last value would let a signed document carry a
// second, unsigned copy of a member). Messages quote input only JSON-escaped and shortened.
Result<Json> parse_json(std::string_view text, const JsonLimits& limits = {});

// Typed field access on untrusted objects, each failing with "bad_json" naming the field.
Result<std::string> json_string(const Json& obj, std::string_view key);
Result<const Json*> json_object(const Json& obj, std::string_view key);
std::optional<std::string> json_optional_string(const Json& obj, std::string_view key);

// Nesting depth of a JSON value (a scalar is 0, [] and {} are 1), measured without recursion and
// stopping once over `limit`: for checking a value built elsewhere before a recursive walk
// (comparison, serialisation, copying) runs over it.
std::size_t json_depth(const Json& value, std::size_t limit);

}  // namespace coffer
