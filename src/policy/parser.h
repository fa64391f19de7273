// Recursive-descent parser for Rego modules and queries.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/error.h"
#include "policy/ast.h"

namespace coffer::policy {

struct ParseLimits {
  std::size_t max_nesting = 512;  // terms, bodies and operator chains
};

// Parses one module. Errors: "rego_parse_error" with "file:line:column: reason".
Result<ModuleAst> parse_module(std::string file, std::string source,
                               const ParseLimits& limits = {});

// Parses a query (a body without braces, e.g. "data.policy.allow"). The body's terms point into
// `source`, which must outlive it.
Result<Body> parse_query(std::string_view file, std::string_view source,
                         const ParseLimits& limits = {});

}  // namespace coffer::policy
