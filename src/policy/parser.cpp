#include "policy/parser.h"

#include <charconv>
#include <set>
#include <utility>

namespace coffer::policy {

namespace {

const std::set<std::string_view>& keywords() {
  static const std::set<std::string_view> k = {"package",  "import", "default", "if",    "else",
                                               "contains", "some",   "every",   "not",   "in",
                                               "with",     "as",     "true",    "false", "null"};
  return k;
}

TermPtr make_term(TermKind kind, Location loc) {
  auto t = std::make_unique<Term>();
  t->kind = kind;
  t->loc = loc;
  return t;
}

class Parser {
 public:
  Parser(std::string_view file, std::vector<Token> tokens, const ParseLimits& limits)
      : file_(file), toks_(std::move(tokens)), limits_(limits) {}

  Result<ModuleAst> module() {
    ModuleAst m;
    skip_separators();
    if (!is_ident("package")) return fail(peek(), "expected 'package' at the start of the module");
    m.package_loc = peek().loc;
    next();
    auto pkg = COFFER_TRY(dotted_path());
    if (!pkg.empty() && pkg.front() == "data") pkg.erase(pkg.begin());
    if (pkg.empty()) return fail(peek(), "package path must not be empty");
    m.package = std::move(pkg);
    COFFER_TRY_STATUS(end_of_statement());
    while (true) {
      skip_separators();
      if (!is_ident("import")) break;
      Import imp;
      imp.loc = peek().loc;
      next();
      imp.path = COFFER_TRY(dotted_path());
      if (is_ident("as")) {
        next();
        if (peek().kind != TokenKind::kIdent) return fail(peek(), "expected an alias after 'as'");
        imp.alias = std::string(next().text);
      } else {
        imp.alias = imp.path.back();
      }
      COFFER_TRY_STATUS(end_of_statement());
      m.imports.push_back(std::move(imp));
    }
    while (true) {
      skip_separators();
      if (peek().kind == TokenKind::kEof) break;
      if (is_ident("import")) return fail(peek(), "imports must come before rules");
      m.rules.push_back(COFFER_TRY(rule()));
    }
    return m;
  }

  Result<Body> query() {
    Body b;
    b.loc = peek().loc;
    while (true) {
      skip_separators();
      if (peek().kind == TokenKind::kEof) break;
      b.exprs.push_back(COFFER_TRY(literal()));
      COFFER_TRY_STATUS(end_of_expr(TokenKind::kEof));
    }
    if (b.exprs.empty()) return fail(peek(), "empty query");
    return b;
  }

 private:
  // Newlines are insignificant inside (), [] and term braces; nl_depth_ counts those.
  const Token& peek() {
    if (nl_depth_ > 0) {
      while (toks_[pos_].kind == TokenKind::kNewline) ++pos_;
    }
    return toks_[pos_];
  }
  const Token& next() {
    const Token& t = peek();
    if (t.kind != TokenKind::kEof) ++pos_;
    last_end_ = t.loc.offset + static_cast<std::uint32_t>(t.text.size());
    return t;
  }
  bool is(TokenKind k) { return peek().kind == k; }
  bool is_ident(std::string_view word) {
    return peek().kind == TokenKind::kIdent && peek().text == word;
  }
  void skip_newlines() {
    while (toks_[pos_].kind == TokenKind::kNewline) ++pos_;
  }
  void skip_separators() {
    while (toks_[pos_].kind == TokenKind::kNewline || toks_[pos_].kind == TokenKind::kSemicolon) {
      ++pos_;
    }
  }

  std::unexpected<Error> fail(const Token& at, const std::string& msg) {
    return make_error("rego_parse_error", format_location(file_, at.loc) + ": " + msg);
  }
  std::unexpected<Error> unexpected_token(const Token& t, std::string_view wanted) {
    std::string got = t.kind == TokenKind::kEof ? "end of file"
                      : t.kind == TokenKind::kNewline
                          ? "newline"
                          : "'" + std::string(t.text.substr(0, 40)) + "'";
    return fail(t, "unexpected " + got + ", expected " + std::string(wanted));
  }
  Status expect(TokenKind k) {
    if (!is(k)) return unexpected_token(peek(), token_kind_name(k));
    next();
    return ok();
  }

  Status enter(const Token& at) {
    if (++depth_ > limits_.max_nesting) {
      return fail(at, "nesting exceeds " + std::to_string(limits_.max_nesting) + " levels");
    }
    return ok();
  }
  struct DepthGuard {
    Parser* p;
    ~DepthGuard() { --p->depth_; }
  };

  Status end_of_statement() {
    if (is(TokenKind::kNewline) || is(TokenKind::kSemicolon) || is(TokenKind::kEof)) return ok();
    return unexpected_token(peek(), "end of line");
  }

  Status end_of_expr(TokenKind closer) {
    if (is(TokenKind::kNewline) || is(TokenKind::kSemicolon) || is(closer)) return ok();
    if (is_ident("with")) return fail(peek(), "'with' modifiers are not supported");
    return unexpected_token(peek(), "end of expression");
  }

  Result<std::vector<std::string>> dotted_path() {
    std::vector<std::string> out;
    if (peek().kind != TokenKind::kIdent) return unexpected_token(peek(), "a name");
    out.emplace_back(next().text);
    while (true) {
      if (is(TokenKind::kDot)) {
        next();
        if (peek().kind != TokenKind::kIdent) return unexpected_token(peek(), "a name after '.'");
        out.emplace_back(next().text);
      } else if (is(TokenKind::kLBracket)) {
        next();
        if (!is(TokenKind::kString)) return unexpected_token(peek(), "a string");
        out.push_back(next().value);
        COFFER_TRY_STATUS(expect(TokenKind::kRBracket));
      } else {
        return out;
      }
    }
  }

  // --- rules -------------------------------------------------------------------------------

  Result<Rule> rule() {
    Rule r;
    r.loc = peek().loc;
    if (is_ident("default")) {
      next();
      r.is_default = true;
    }
    if (peek().kind != TokenKind::kIdent || keywords().contains(peek().text)) {
      return unexpected_token(peek(), "a rule name");
    }
    r.name = std::string(next().text);
    Clause head;
    head.loc = r.loc;
    if (is(TokenKind::kLParen)) {
      r.kind = RuleKind::kFunction;
      next();
      ++nl_depth_;
      while (!is(TokenKind::kRParen)) {
        r.args.push_back(COFFER_TRY(term_expr()));
        if (!is(TokenKind::kComma)) break;
        next();
      }
      COFFER_TRY_STATUS(expect(TokenKind::kRParen));
      --nl_depth_;
    } else if (is(TokenKind::kLBracket)) {
      next();
      ++nl_depth_;
      r.key = COFFER_TRY(term_expr());
      COFFER_TRY_STATUS(expect(TokenKind::kRBracket));
      --nl_depth_;
      r.kind = RuleKind::kPartialSet;  // becomes an object rule if a value follows
    } else if (is_ident("contains")) {
      next();
      r.kind = RuleKind::kPartialSet;
      r.key = COFFER_TRY(term_expr());
    }
    if (is(TokenKind::kAssign) || is(TokenKind::kUnify)) {
      if (r.kind == RuleKind::kPartialSet && is_ident_prev_contains()) {
        return fail(peek(), "a 'contains' rule has no value");
      }
      next();
      if (r.kind == RuleKind::kPartialSet) r.kind = RuleKind::kPartialObject;
      head.value = COFFER_TRY(term_expr());
    }
    if (r.is_default) {
      if (!head.value) return fail(peek(), "default rule needs a value (default name := value)");
      if (r.kind == RuleKind::kPartialSet || r.kind == RuleKind::kPartialObject) {
        return fail(toks_[pos_], "default rules cannot be partial");
      }
      r.clauses.push_back(std::move(head));
      COFFER_TRY_STATUS(end_of_statement());
      return r;
    }
    bool has_body = COFFER_TRY(rule_body(head.body));
    if (!has_body && !head.value && r.kind != RuleKind::kPartialSet) {
      return unexpected_token(peek(), "':=', 'if' or a rule body");
    }
    r.clauses.push_back(std::move(head));
    // `else` may follow on the same line as the closing brace or on a later line.
    while (true) {
      std::size_t save = pos_;
      skip_newlines();
      if (!is_ident("else")) {
        pos_ = save;
        break;
      }
      if (r.kind != RuleKind::kComplete && r.kind != RuleKind::kFunction) {
        return fail(peek(), "'else' is only allowed on complete rules and functions");
      }
      Clause c;
      c.loc = next().loc;
      if (is(TokenKind::kAssign) || is(TokenKind::kUnify)) {
        next();
        c.value = COFFER_TRY(term_expr());
      }
      COFFER_TRY(rule_body(c.body));
      r.clauses.push_back(std::move(c));
    }
    COFFER_TRY_STATUS(end_of_statement());
    return r;
  }

  bool is_ident_prev_contains() {
    // True when the head was written `p contains x`, which cannot take a value.
    for (std::size_t i = pos_; i > 0; --i) {
      const Token& t = toks_[i - 1];
      if (t.kind == TokenKind::kNewline) return false;
      if (t.kind == TokenKind::kIdent && t.text == "contains") return true;
    }
    return false;
  }

  // Parses `if { ... }`, `if expr`, or `{ ... }`; returns false when there is none.
  Result<bool> rule_body(Body& body) {
    bool had_if = false;
    if (is_ident("if")) {
      next();
      had_if = true;
    }
    if (is(TokenKind::kLBrace)) {
      body = COFFER_TRY(braced_body());
      return true;
    }
    if (had_if) {
      body.loc = peek().loc;
      body.exprs.push_back(COFFER_TRY(literal()));
      return true;
    }
    return false;
  }

  Result<Body> braced_body() {
    COFFER_TRY_STATUS(enter(peek()));
    DepthGuard g{this};
    Body b;
    b.loc = peek().loc;
    COFFER_TRY_STATUS(expect(TokenKind::kLBrace));
    int saved = nl_depth_;
    nl_depth_ = 0;
    while (true) {
      skip_separators();
      if (is(TokenKind::kRBrace)) break;
      if (is(TokenKind::kEof)) return unexpected_token(peek(), "'}'");
      b.exprs.push_back(COFFER_TRY(literal()));
      COFFER_TRY_STATUS(end_of_expr(TokenKind::kRBrace));
    }
    if (b.exprs.empty()) return fail(peek(), "empty body");
    nl_depth_ = saved;
    next();
    return b;
  }

  // --- expressions (literals) --------------------------------------------------------------

  Result<Expr> literal() {
    COFFER_TRY_STATUS(enter(peek()));
    DepthGuard g{this};
    Expr e;
    e.loc = peek().loc;
    if (is_ident("some")) {
      next();
      COFFER_TRY_STATUS(some(e));
    } else if (is_ident("every")) {
      next();
      COFFER_TRY_STATUS(every(e));
    } else if (is_ident("not")) {
      next();
      e.kind = ExprKind::kNot;
      e.inner = std::make_unique<Expr>(COFFER_TRY(literal()));
      if (e.inner->kind == ExprKind::kSome || e.inner->kind == ExprKind::kSomeIn ||
          e.inner->kind == ExprKind::kEvery) {
        return fail(toks_[pos_ - 1], "'not' cannot be applied to 'some' or 'every'");
      }
    } else {
      TermPtr first = COFFER_TRY(term_in());
      if (is(TokenKind::kComma)) {
        // k, v in collection
        next();
        TermPtr second = COFFER_TRY(term_relation());
        if (!is_ident("in")) return unexpected_token(peek(), "'in'");
        next();
        TermPtr coll = COFFER_TRY(term_relation());
        auto call = make_term(TermKind::kCall, first->loc);
        call->name = "internal.member_3";
        call->items.push_back(std::move(first));
        call->items.push_back(std::move(second));
        call->items.push_back(std::move(coll));
        call->end = last_end_;
        first = std::move(call);
      }
      if (is(TokenKind::kAssign) || is(TokenKind::kUnify)) {
        e.kind = is(TokenKind::kAssign) ? ExprKind::kAssign : ExprKind::kUnify;
        next();
        e.a = std::move(first);
        e.b = COFFER_TRY(term_in());
      } else {
        e.kind = ExprKind::kTerm;
        e.a = std::move(first);
      }
    }
    e.end = last_end_;
    return e;
  }

  Status some(Expr& e) {
    std::vector<TermPtr> terms;
    terms.push_back(COFFER_TRY(term_relation()));
    while (is(TokenKind::kComma)) {
      next();
      terms.push_back(COFFER_TRY(term_relation()));
    }
    if (is_ident("in")) {
      next();
      if (terms.size() > 2) return fail(peek(), "'some' takes at most two variables before 'in'");
      e.kind = ExprKind::kSomeIn;
      if (terms.size() == 2) e.a = std::move(terms[0]);
      e.b = std::move(terms.back());
      e.c = COFFER_TRY(term_relation());
      return ok();
    }
    for (auto& t : terms) {
      if (t->kind != TermKind::kVar) {
        return make_error("rego_parse_error",
                          format_location(file_, t->loc) + ": 'some' declares variables only");
      }
    }
    e.kind = ExprKind::kSome;
    e.vars = std::move(terms);
    return ok();
  }

  Status every(Expr& e) {
    e.kind = ExprKind::kEvery;
    TermPtr first = COFFER_TRY(term_relation());
    if (is(TokenKind::kComma)) {
      next();
      e.a = std::move(first);
      e.b = COFFER_TRY(term_relation());
    } else {
      e.b = std::move(first);
    }
    for (const Term* v : {e.a.get(), e.b.get()}) {
      if (v != nullptr && v->kind != TermKind::kVar) {
        return make_error("rego_parse_error",
                          format_location(file_, v->loc) + ": 'every' declares variables only");
      }
    }
    if (!is_ident("in")) return unexpected_token(peek(), "'in'");
    next();
    e.c = COFFER_TRY(term_relation());
    e.body = std::make_unique<Body>(COFFER_TRY(braced_body()));
    return ok();
  }

  // --- terms, by increasing precedence -------------------------------------------------------

  TermPtr binary(std::string name, TermPtr lhs, TermPtr rhs) {
    auto t = make_term(TermKind::kCall, lhs->loc);
    t->name = std::move(name);
    t->end = rhs->end;
    t->items.push_back(std::move(lhs));
    t->items.push_back(std::move(rhs));
    return t;
  }

  // A term as written in a rule head, argument list, or collection element.
  Result<TermPtr> term_expr() { return term_in(); }

  Result<TermPtr> term_in() {
    COFFER_TRY_STATUS(enter(peek()));
    DepthGuard g{this};
    TermPtr lhs = COFFER_TRY(term_relation());
    std::size_t chain = 0;
    while (is_ident("in")) {
      COFFER_TRY_STATUS(chain_step(chain));
      next();
      TermPtr rhs = COFFER_TRY(term_relation());
      lhs = binary("internal.member_2", std::move(lhs), std::move(rhs));
    }
    return lhs;
  }

  Status chain_step(std::size_t& chain) {
    if (depth_ + ++chain > limits_.max_nesting) {
      return fail(peek(), "nesting exceeds " + std::to_string(limits_.max_nesting) + " levels");
    }
    return ok();
  }

  Result<TermPtr> term_relation() {
    TermPtr lhs = COFFER_TRY(term_or());
    std::size_t chain = 0;
    while (true) {
      const char* op = nullptr;
      switch (peek().kind) {
        case TokenKind::kEq:
          op = "equal";
          break;
        case TokenKind::kNe:
          op = "neq";
          break;
        case TokenKind::kLt:
          op = "lt";
          break;
        case TokenKind::kLe:
          op = "lte";
          break;
        case TokenKind::kGt:
          op = "gt";
          break;
        case TokenKind::kGe:
          op = "gte";
          break;
        default:
          return lhs;
      }
      COFFER_TRY_STATUS(chain_step(chain));
      next();
      skip_newlines_after_operator();
      TermPtr rhs = COFFER_TRY(term_or());
      lhs = binary(op, std::move(lhs), std::move(rhs));
    }
  }

  void skip_newlines_after_operator() { skip_newlines(); }

  Result<TermPtr> term_or() {
    TermPtr lhs = COFFER_TRY(term_and());
    std::size_t chain = 0;
    while (is(TokenKind::kPipe) && !no_pipe_) {
      COFFER_TRY_STATUS(chain_step(chain));
      next();
      skip_newlines_after_operator();
      TermPtr rhs = COFFER_TRY(term_and());
      lhs = binary("or", std::move(lhs), std::move(rhs));
    }
    return lhs;
  }

  Result<TermPtr> term_and() {
    TermPtr lhs = COFFER_TRY(term_arith());
    std::size_t chain = 0;
    while (is(TokenKind::kAmp)) {
      COFFER_TRY_STATUS(chain_step(chain));
      next();
      skip_newlines_after_operator();
      TermPtr rhs = COFFER_TRY(term_arith());
      lhs = binary("and", std::move(lhs), std::move(rhs));
    }
    return lhs;
  }

  Result<TermPtr> term_arith() {
    TermPtr lhs = COFFER_TRY(term_factor());
    std::size_t chain = 0;
    while (is(TokenKind::kPlus) || is(TokenKind::kMinus)) {
      COFFER_TRY_STATUS(chain_step(chain));
      const char* op = is(TokenKind::kPlus) ? "plus" : "minus";
      next();
      skip_newlines_after_operator();
      TermPtr rhs = COFFER_TRY(term_factor());
      lhs = binary(op, std::move(lhs), std::move(rhs));
    }
    return lhs;
  }

  Result<TermPtr> term_factor() {
    TermPtr lhs = COFFER_TRY(term_unary());
    std::size_t chain = 0;
    while (is(TokenKind::kStar) || is(TokenKind::kSlash) || is(TokenKind::kPercent)) {
      COFFER_TRY_STATUS(chain_step(chain));
      const char* op = is(TokenKind::kStar) ? "mul" : is(TokenKind::kSlash) ? "div" : "rem";
      next();
      skip_newlines_after_operator();
      TermPtr rhs = COFFER_TRY(term_unary());
      lhs = binary(op, std::move(lhs), std::move(rhs));
    }
    return lhs;
  }

  Result<TermPtr> term_unary() {
    if (is(TokenKind::kMinus)) {
      COFFER_TRY_STATUS(enter(peek()));
      DepthGuard g{this};
      Location loc = next().loc;
      TermPtr operand = COFFER_TRY(term_unary());
      if (operand->kind == TermKind::kScalar && operand->value.is(Value::Type::kNumber)) {
        const Value& v = operand->value;
        if (v.is_int() && v.as_int() != INT64_MIN) {
          operand->value = Value::integer(-v.as_int());
        } else {
          operand->value = Value::floating(-v.as_double());
        }
        operand->loc = loc;
        return operand;
      }
      auto zero = make_term(TermKind::kScalar, loc);
      zero->value = Value::integer(0);
      zero->end = loc.offset;
      auto t = binary("minus", std::move(zero), std::move(operand));
      t->loc = loc;
      return t;
    }
    return term_postfix();
  }

  static bool is_dotted_name(const Term& t) {
    if (t.kind == TermKind::kVar) return true;
    if (t.kind != TermKind::kRef || t.items[0]->kind != TermKind::kVar) return false;
    for (std::size_t i = 1; i < t.items.size(); ++i) {
      if (!t.items[i]->value.is(Value::Type::kString) || t.items[i]->kind != TermKind::kScalar ||
          t.items[i]->name != ".") {
        return false;
      }
    }
    return true;
  }

  static std::string dotted_name(const Term& t) {
    if (t.kind == TermKind::kVar) return t.name;
    std::string out = t.items[0]->name;
    for (std::size_t i = 1; i < t.items.size(); ++i) {
      out += '.';
      out += t.items[i]->value.as_string();
    }
    return out;
  }

  Result<TermPtr> term_postfix() {
    TermPtr t = COFFER_TRY(primary());
    while (true) {
      // Suffixes must follow without a newline at expression level.
      if (toks_[pos_].kind == TokenKind::kNewline) return t;
      if (is(TokenKind::kDot)) {
        next();
        if (peek().kind != TokenKind::kIdent) return unexpected_token(peek(), "a name after '.'");
        const Token& name = next();
        auto op = make_term(TermKind::kScalar, name.loc);
        op->value = Value::string(std::string(name.text));
        op->name = ".";  // marks a dotted operand (for dotted function names)
        op->end = last_end_;
        t = append_operand(std::move(t), std::move(op));
      } else if (is(TokenKind::kLBracket)) {
        COFFER_TRY_STATUS(enter(peek()));
        DepthGuard g{this};
        next();
        ++nl_depth_;
        TermPtr op = COFFER_TRY(term_expr());
        COFFER_TRY_STATUS(expect(TokenKind::kRBracket));
        --nl_depth_;
        t = append_operand(std::move(t), std::move(op));
      } else if (is(TokenKind::kLParen)) {
        if (!is_dotted_name(*t)) return fail(peek(), "only named functions can be called");
        COFFER_TRY_STATUS(enter(peek()));
        DepthGuard g{this};
        auto call = make_term(TermKind::kCall, t->loc);
        call->name = dotted_name(*t);
        next();
        ++nl_depth_;
        while (!is(TokenKind::kRParen)) {
          call->items.push_back(COFFER_TRY(term_expr()));
          if (!is(TokenKind::kComma)) break;
          next();
        }
        COFFER_TRY_STATUS(expect(TokenKind::kRParen));
        --nl_depth_;
        if (call->name == "set") {
          if (!call->items.empty()) return fail(toks_[pos_ - 1], "set() takes no arguments");
          call = make_term(TermKind::kSet, call->loc);
        }
        t = std::move(call);
      } else {
        break;
      }
      t->end = last_end_;
    }
    return t;
  }

  TermPtr append_operand(TermPtr t, TermPtr op) {
    if (t->kind != TermKind::kRef) {
      auto ref = make_term(TermKind::kRef, t->loc);
      ref->items.push_back(std::move(t));
      t = std::move(ref);
    }
    t->items.push_back(std::move(op));
    return t;
  }

  Result<TermPtr> primary() {
    const Token& tok = peek();
    switch (tok.kind) {
      case TokenKind::kNumber: {
        auto t = make_term(TermKind::kScalar, tok.loc);
        t->value = COFFER_TRY(number(tok));
        next();
        t->end = last_end_;
        return t;
      }
      case TokenKind::kString: {
        auto t = make_term(TermKind::kScalar, tok.loc);
        t->value = Value::string(tok.value);
        next();
        t->end = last_end_;
        return t;
      }
      case TokenKind::kIdent: {
        auto t = make_term(TermKind::kScalar, tok.loc);
        if (tok.text == "true" || tok.text == "false") {
          t->value = Value::boolean(tok.text == "true");
        } else if (tok.text == "null") {
          t->value = Value::null();
        } else if (keywords().contains(tok.text) && tok.text != "contains") {
          return fail(tok, "unexpected keyword '" + std::string(tok.text) + "'");
        } else {
          t->kind = TermKind::kVar;
          t->name = std::string(tok.text);
        }
        next();
        t->end = last_end_;
        return t;
      }
      case TokenKind::kLParen: {
        COFFER_TRY_STATUS(enter(tok));
        DepthGuard g{this};
        next();
        ++nl_depth_;
        bool saved = no_pipe_;
        no_pipe_ = false;
        TermPtr t = COFFER_TRY(term_expr());
        no_pipe_ = saved;
        COFFER_TRY_STATUS(expect(TokenKind::kRParen));
        --nl_depth_;
        return t;
      }
      case TokenKind::kLBracket:
        return collection(TokenKind::kLBracket, TokenKind::kRBracket);
      case TokenKind::kLBrace:
        return collection(TokenKind::kLBrace, TokenKind::kRBrace);
      default:
        return unexpected_token(tok, "a term");
    }
  }

  Result<Value> number(const Token& tok) {
    std::string_view s = tok.text;
    bool integral = s.find_first_of(".eE") == std::string_view::npos;
    if (integral) {
      std::int64_t i = 0;
      auto r = std::from_chars(s.data(), s.data() + s.size(), i);
      if (r.ec == std::errc() && r.ptr == s.data() + s.size()) return Value::integer(i);
    }
    double d = 0;
    auto r = std::from_chars(s.data(), s.data() + s.size(), d);
    if (r.ec != std::errc() || r.ptr != s.data() + s.size()) {
      return fail(tok, "number out of range");
    }
    return Value::floating(d);
  }

  // Arrays, sets, objects and their comprehensions.
  Result<TermPtr> collection(TokenKind open, TokenKind close) {
    COFFER_TRY_STATUS(enter(peek()));
    DepthGuard g{this};
    Location loc = next().loc;
    ++nl_depth_;
    bool saved_pipe = no_pipe_;
    bool is_array = open == TokenKind::kLBracket;
    TermPtr out = make_term(is_array ? TermKind::kArray : TermKind::kSet, loc);
    if (is(close)) {
      next();
      if (!is_array) out->kind = TermKind::kObject;  // {} is the empty object
    } else {
      no_pipe_ = true;
      TermPtr first = COFFER_TRY(term_expr());
      bool object = !is_array && is(TokenKind::kColon);
      TermPtr first_value;
      if (object) {
        next();
        first_value = COFFER_TRY(term_expr());
        out->kind = TermKind::kObject;
      }
      no_pipe_ = false;
      if (is(TokenKind::kPipe)) {
        next();
        out->kind = is_array ? TermKind::kArrayCompr
                             : (object ? TermKind::kObjectCompr : TermKind::kSetCompr);
        out->items.push_back(std::move(first));
        if (object) out->items.push_back(std::move(first_value));
        out->body = std::make_unique<Body>(COFFER_TRY(compr_body(close)));
      } else {
        out->items.push_back(std::move(first));
        if (object) out->items.push_back(std::move(first_value));
        while (is(TokenKind::kComma)) {
          next();
          if (is(close)) break;
          out->items.push_back(COFFER_TRY(term_expr()));
          if (object) {
            COFFER_TRY_STATUS(expect(TokenKind::kColon));
            out->items.push_back(COFFER_TRY(term_expr()));
          }
        }
        COFFER_TRY_STATUS(expect(close));
      }
    }
    no_pipe_ = saved_pipe;
    --nl_depth_;
    out->end = last_end_;
    return out;
  }

  // The body of a comprehension, up to the closing bracket; newlines and ';' separate
  // expressions as in rule bodies.
  Result<Body> compr_body(TokenKind close) {
    Body b;
    b.loc = peek().loc;
    int saved = nl_depth_;
    nl_depth_ = 0;
    while (true) {
      skip_separators();
      if (is(close)) break;
      if (is(TokenKind::kEof)) return unexpected_token(peek(), token_kind_name(close));
      b.exprs.push_back(COFFER_TRY(literal()));
      COFFER_TRY_STATUS(end_of_expr(close));
    }
    nl_depth_ = saved;
    if (b.exprs.empty()) return fail(peek(), "empty comprehension body");
    next();
    return b;
  }

  std::string_view file_;
  std::vector<Token> toks_;
  ParseLimits limits_;
  std::size_t pos_ = 0;
  std::size_t depth_ = 0;
  int nl_depth_ = 0;
  bool no_pipe_ = false;
  std::uint32_t last_end_ = 0;
};

}  // namespace

Result<ModuleAst> parse_module(std::string file, std::string source, const ParseLimits& limits) {
  auto tokens = COFFER_TRY(tokenize(file, source));
  ModuleAst m = COFFER_TRY(Parser(file, std::move(tokens), limits).module());
  m.file = std::move(file);
  m.source = std::move(source);
  return m;
}

Result<Body> parse_query(std::string_view file, std::string_view source,
                         const ParseLimits& limits) {
  auto tokens = COFFER_TRY(tokenize(file, source));
  return Parser(file, std::move(tokens), limits).query();
}

}  // namespace coffer::policy
