#include "policy/lexer.h"

#include <cstdint>
#include <optional>

namespace coffer::policy {

namespace {

bool is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ident_char(char c) { return is_ident_start(c) || is_digit(c); }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Lexer {
 public:
  Lexer(std::string_view file, std::string_view src) : file_(file), src_(src) {}

  Result<std::vector<Token>> run() {
    std::vector<Token> out;
    while (true) {
      skip_space_and_comments();
      Token t;
      t.loc = here();
      if (pos_ >= src_.size()) {
        t.kind = TokenKind::kEof;
        out.push_back(std::move(t));
        return out;
      }
      std::size_t start = pos_;
      char c = src_[pos_];
      if (c == '\n') {
        advance();
        t.kind = TokenKind::kNewline;
      } else if (is_ident_start(c)) {
        while (pos_ < src_.size() && is_ident_char(src_[pos_])) advance();
        t.kind = TokenKind::kIdent;
      } else if (is_digit(c)) {
        if (auto s = lex_number(); !s) return std::unexpected(s.error());
        t.kind = TokenKind::kNumber;
      } else if (c == '"') {
        auto s = lex_string();
        if (!s) return std::unexpected(s.error());
        t.value = std::move(*s);
        t.kind = TokenKind::kString;
      } else if (c == '`') {
        advance();
        std::size_t body = pos_;
        while (pos_ < src_.size() && src_[pos_] != '`') advance();
        if (pos_ >= src_.size()) return error(t.loc, "unterminated raw string");
        t.value = std::string(src_.substr(body, pos_ - body));
        advance();
        t.kind = TokenKind::kString;
      } else {
        auto k = lex_punct();
        if (!k) return error(t.loc, "unexpected character '" + printable(c) + "'");
        t.kind = *k;
      }
      t.text = src_.substr(start, pos_ - start);
      out.push_back(std::move(t));
    }
  }

 private:
  static std::string printable(char c) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7F) return std::string(1, c);
    static constexpr char kHex[] = "0123456789abcdef";
    return std::string("\\x") + kHex[u >> 4] + kHex[u & 15];
  }

  Location here() const {
    return Location{line_, static_cast<std::uint32_t>(pos_ - line_start_ + 1),
                    static_cast<std::uint32_t>(pos_)};
  }

  void advance() {
    if (src_[pos_] == '\n') {
      ++line_;
      line_start_ = pos_ + 1;
    }
    ++pos_;
  }

  std::unexpected<Error> error(const Location& loc, const std::string& msg) const {
    return make_error("rego_parse_error", format_location(file_, loc) + ": " + msg);
  }

  void skip_space_and_comments() {
    while (pos_ < src_.size()) {
      char c = src_[pos_];
      if (c == ' ' || c == '\t' || c == '\r') {
        advance();
      } else if (c == '#') {
        while (pos_ < src_.size() && src_[pos_] != '\n') advance();
      } else {
        return;
      }
    }
  }

  Status lex_number() {
    Location loc = here();
    while (pos_ < src_.size() && is_digit(src_[pos_])) advance();
    if (pos_ + 1 < src_.size() && src_[pos_] == '.' && is_digit(src_[pos_ + 1])) {
      advance();
      while (pos_ < src_.size() && is_digit(src_[pos_])) advance();
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      advance();
      if (pos_ < src_.size() && (src_[pos_] == '+' || src_[pos_] == '-')) advance();
      if (pos_ >= src_.size() || !is_digit(src_[pos_])) return error(loc, "malformed number");
      while (pos_ < src_.size() && is_digit(src_[pos_])) advance();
    }
    if (pos_ < src_.size() && is_ident_start(src_[pos_])) return error(loc, "malformed number");
    return ok();
  }

  Result<std::uint32_t> hex4(const Location& loc) {
    if (pos_ + 4 > src_.size()) return error(loc, "bad \\u escape in string");
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      int h = hex_value(src_[pos_]);
      if (h < 0) return error(loc, "bad \\u escape in string");
      v = v * 16 + static_cast<std::uint32_t>(h);
      advance();
    }
    return v;
  }

  Result<std::string> lex_string() {
    Location start = here();
    advance();  // opening quote
    std::string out;
    while (true) {
      if (pos_ >= src_.size() || src_[pos_] == '\n') return error(start, "unterminated string");
      char c = src_[pos_];
      if (c == '"') {
        advance();
        return out;
      }
      if (c != '\\') {
        out += c;
        advance();
        continue;
      }
      Location esc = here();
      advance();
      if (pos_ >= src_.size()) return error(start, "unterminated string");
      char e = src_[pos_];
      advance();
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          std::uint32_t cp = COFFER_TRY(hex4(esc));
          if (cp >= 0xD800 && cp < 0xDC00 && pos_ + 1 < src_.size() && src_[pos_] == '\\' &&
              src_[pos_ + 1] == 'u') {
            advance();
            advance();
            std::uint32_t lo = COFFER_TRY(hex4(esc));
            if (lo < 0xDC00 || lo > 0xDFFF) return error(esc, "bad surrogate pair in string");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default:
          return error(esc, "bad escape sequence '\\" + printable(e) + "' in string");
      }
    }
  }

  std::optional<TokenKind> lex_punct() {
    char c = src_[pos_];
    char n = pos_ + 1 < src_.size() ? src_[pos_ + 1] : '\0';
    auto one = [&](TokenKind k) {
      advance();
      return k;
    };
    auto two = [&](TokenKind k) {
      advance();
      advance();
      return k;
    };
    switch (c) {
      case '{':
        return one(TokenKind::kLBrace);
      case '}':
        return one(TokenKind::kRBrace);
      case '[':
        return one(TokenKind::kLBracket);
      case ']':
        return one(TokenKind::kRBracket);
      case '(':
        return one(TokenKind::kLParen);
      case ')':
        return one(TokenKind::kRParen);
      case ',':
        return one(TokenKind::kComma);
      case ';':
        return one(TokenKind::kSemicolon);
      case '.':
        return one(TokenKind::kDot);
      case ':':
        return n == '=' ? two(TokenKind::kAssign) : one(TokenKind::kColon);
      case '=':
        return n == '=' ? two(TokenKind::kEq) : one(TokenKind::kUnify);
      case '!':
        if (n == '=') return two(TokenKind::kNe);
        return std::nullopt;
      case '<':
        return n == '=' ? two(TokenKind::kLe) : one(TokenKind::kLt);
      case '>':
        return n == '=' ? two(TokenKind::kGe) : one(TokenKind::kGt);
      case '+':
        return one(TokenKind::kPlus);
      case '-':
        return one(TokenKind::kMinus);
      case '*':
        return one(TokenKind::kStar);
      case '/':
        return one(TokenKind::kSlash);
      case '%':
        return one(TokenKind::kPercent);
      case '|':
        return one(TokenKind::kPipe);
      case '&':
        return one(TokenKind::kAmp);
      default:
        return std::nullopt;
    }
  }

  std::string_view file_;
  std::string_view src_;
  std::size_t pos_ = 0;
  std::uint32_t line_ = 1;
  std::size_t line_start_ = 0;
};

}  // namespace

std::string format_location(std::string_view file, const Location& loc) {
  return std::string(file) + ":" + std::to_string(loc.line) + ":" + std::to_string(loc.column);
}

std::string_view token_kind_name(TokenKind kind) {
  switch (kind) {
    case TokenKind::kEof:
      return "end of file";
    case TokenKind::kNewline:
      return "newline";
    case TokenKind::kIdent:
      return "identifier";
    case TokenKind::kString:
      return "string";
    case TokenKind::kNumber:
      return "number";
    case TokenKind::kLBrace:
      return "'{'";
    case TokenKind::kRBrace:
      return "'}'";
    case TokenKind::kLBracket:
      return "'['";
    case TokenKind::kRBracket:
      return "']'";
    case TokenKind::kLParen:
      return "'('";
    case TokenKind::kRParen:
      return "')'";
    case TokenKind::kComma:
      return "','";
    case TokenKind::kSemicolon:
      return "';'";
    case TokenKind::kDot:
      return "'.'";
    case TokenKind::kColon:
      return "':'";
    case TokenKind::kAssign:
      return "':='";
    case TokenKind::kUnify:
      return "'='";
    case TokenKind::kEq:
      return "'=='";
    case TokenKind::kNe:
      return "'!='";
    case TokenKind::kLt:
      return "'<'";
    case TokenKind::kLe:
      return "'<='";
    case TokenKind::kGt:
      return "'>'";
    case TokenKind::kGe:
      return "'>='";
    case TokenKind::kPlus:
      return "'+'";
    case TokenKind::kMinus:
      return "'-'";
    case TokenKind::kStar:
      return "'*'";
    case TokenKind::kSlash:
      return "'/'";
    case TokenKind::kPercent:
      return "'%'";
    case TokenKind::kPipe:
      return "'|'";
    case TokenKind::kAmp:
      return "'&'";
  }
  return "token";
}

Result<std::vector<Token>> tokenize(std::string_view file, std::string_view source) {
  return Lexer(file, source).run();
}

}  // namespace coffer::policy
