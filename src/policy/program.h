// The compiled form of a set of modules: annotated syntax trees, rules grouped by path, the
// package tree under `data`, and bound host builtins. Immutable after compile() except for the
// internally synchronised regex cache.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "policy/ast.h"
#include "policy/builtins.h"
#include "policy/policy.h"

namespace coffer::policy {

// All definitions of one rule path (incremental definitions, else chains inside each).
struct RuleGroup {
  std::string path;  // "data.policy.allow"
  RuleKind kind = RuleKind::kComplete;
  int arity = 0;                  // functions
  std::vector<const Rule*> defs;  // excluding the default
  const Rule* default_rule = nullptr;
};

struct PackageNode {
  std::vector<std::string> path;  // below data
  std::map<std::string, int, std::less<>> children;
  int group = -1;  // a rule lives at this path
};

struct HostBuiltin {
  std::string name;
  int arity = 0;
  Builtin fn;
};

struct Program {
  std::vector<std::unique_ptr<ModuleAst>> modules;
  std::vector<RuleGroup> groups;
  std::vector<PackageNode> nodes;  // nodes[0] is data
  std::vector<HostBuiltin> host;
  Limits limits;
  std::shared_ptr<const Clock> clock;
  bool strict_builtin_errors = false;
  mutable RegexCache regex;
};

Result<std::shared_ptr<Program>> build_program(std::vector<Module> modules, CompileOptions opts);

// Resolves a query against a compiled program (the query's terms are annotated in place).
// Returns the frame size needed to evaluate it.
Result<int> compile_query(const Program& program, Body& query, std::string_view file);

}  // namespace coffer::policy
