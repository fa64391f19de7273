// Abstract syntax of Rego modules, annotated in place by the compiler (resolved references,
// variable slots, bound functions) so that evaluation never looks names up.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "policy/lexer.h"
#include "policy/value.h"

namespace coffer::policy {

struct Body;
struct BuiltinDef;

enum class TermKind : std::uint8_t {
  kScalar,
  kVar,
  kRef,
  kCall,
  kArray,
  kObject,  // items: k0, v0, k1, v1, ...
  kSet,
  kArrayCompr,   // items[0]: head
  kSetCompr,     // items[0]: head
  kObjectCompr,  // items[0]: key, items[1]: value
};

// Where a reference starts, after compilation.
enum class RefHead : std::uint8_t {
  kUnresolved,
  kLocal,    // items[0] is a variable (slot)
  kInput,    // the input document
  kData,     // base documents under data, operands from items[ref_start]
  kRule,     // rule group ref_index, remaining operands from items[ref_start]
  kPackage,  // package node ref_index (rules and base data merged), operands from ref_start
  kTerm,     // items[0] is an arbitrary term (call result, literal)
};

enum class CallKind : std::uint8_t { kUnresolved, kBuiltin, kHost, kFunction };

struct Term;
using TermPtr = std::unique_ptr<Term>;

struct Term {
  TermKind kind = TermKind::kScalar;
  Location loc;
  std::uint32_t end = 0;  // byte offset just past the term in the source
  Value value;            // kScalar, or the folded value when `constant`
  std::string name;       // kVar: variable name; kCall: function name as written
  std::vector<TermPtr> items;
  std::unique_ptr<Body> body;  // comprehensions

  // Compiler annotations.
  bool constant = false;  // ground term: `value` holds it
  int slot = -1;          // kVar
  RefHead ref_head = RefHead::kUnresolved;
  int ref_index = -1;
  std::size_t ref_start = 1;
  std::vector<std::string> data_path;  // kPackage: path of the base data under the node
  CallKind call_kind = CallKind::kUnresolved;
  int call_index = -1;
  const BuiltinDef* builtin = nullptr;
};

enum class ExprKind : std::uint8_t {
  kTerm,    // a: succeeds when defined and not false
  kUnify,   // a = b
  kAssign,  // a := b
  kNot,     // not inner
  kSome,    // some x, y (declarations only)
  kSomeIn,  // some a, b in c  (a may be null)
  kEvery,   // every a, b in c { body }  (a may be null)
};

struct Expr {
  ExprKind kind = ExprKind::kTerm;
  Location loc;
  std::uint32_t end = 0;
  TermPtr a;
  TermPtr b;
  TermPtr c;
  std::unique_ptr<Expr> inner;
  std::vector<TermPtr> vars;   // kSome
  std::unique_ptr<Body> body;  // kEvery
};

struct Body {
  Location loc;
  std::vector<Expr> exprs;
};

enum class RuleKind : std::uint8_t { kComplete, kPartialSet, kPartialObject, kFunction };

// One `else` branch, or the rule's own value and body.
struct Clause {
  Location loc;
  TermPtr value;  // null means `true`
  Body body;      // empty body: always succeeds
};

struct Rule {
  RuleKind kind = RuleKind::kComplete;
  bool is_default = false;
  std::string name;
  Location loc;
  std::vector<TermPtr> args;    // kFunction
  TermPtr key;                  // partial rules
  std::vector<Clause> clauses;  // clauses[0] is the rule itself, then the else chain
  std::size_t module = 0;       // index of the module in the policy
  int num_slots = 0;            // compiler: frame size
};

struct Import {
  Location loc;
  std::vector<std::string> path;  // e.g. {"data", "lib"}
  std::string alias;              // last path element unless `as` was given
};

struct ModuleAst {
  std::string file;
  std::string source;
  Location package_loc;
  std::vector<std::string> package;  // without the leading "data"
  std::vector<Import> imports;
  std::vector<Rule> rules;
};

}  // namespace coffer::policy
