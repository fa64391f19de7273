// Tokens of the Rego language (OPA policy reference, "Grammar").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace coffer::policy {

struct Location {
  std::uint32_t line = 0;
  std::uint32_t column = 0;
  std::uint32_t offset = 0;  // byte offset into the module source
};

enum class TokenKind : std::uint8_t {
  kEof,
  kNewline,
  kIdent,
  kString,  // value holds the decoded text (raw strings too)
  kNumber,
  kLBrace,
  kRBrace,
  kLBracket,
  kRBracket,
  kLParen,
  kRParen,
  kComma,
  kSemicolon,
  kDot,
  kColon,
  kAssign,  // :=
  kUnify,   // =
  kEq,      // ==
  kNe,      // !=
  kLt,
  kLe,
  kGt,
  kGe,
  kPlus,
  kMinus,
  kStar,
  kSlash,
  kPercent,
  kPipe,
  kAmp,
};

struct Token {
  TokenKind kind = TokenKind::kEof;
  std::string_view text;  // as written in the source
  std::string value;      // decoded string literal
  Location loc;
};

std::string_view token_kind_name(TokenKind kind);

// Splits a module into tokens; `file` names the module in error messages
// ("rego_parse_error: policy.rego:3:7: unterminated string").
Result<std::vector<Token>> tokenize(std::string_view file, std::string_view source);

std::string format_location(std::string_view file, const Location& loc);

}  // namespace coffer::policy
