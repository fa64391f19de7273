// Compilation: groups rules by path, resolves every name (locals to frame slots, rules, imports,
// functions, builtins), checks variable safety, arity and literal operand types, folds constant
// terms, and rejects recursion.
#include <algorithm>
#include <set>
#include <unordered_map>

#include "policy/parser.h"
#include "policy/program.h"

namespace coffer::policy {

namespace {

struct Scope {
  Scope* parent = nullptr;
  std::unordered_map<std::string, int> vars;

  [[nodiscard]] int lookup(const std::string& name) const {
    for (const Scope* s = this; s != nullptr; s = s->parent) {
      auto it = s->vars.find(name);
      if (it != s->vars.end()) return it->second;
    }
    return -1;
  }
};

std::string join_path(const std::vector<std::string>& path) {
  std::string out = "data";
  for (const auto& p : path) {
    out += '.';
    out += p;
  }
  return out;
}

std::vector<std::string> split_name(std::string_view name) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (true) {
    std::size_t dot = name.find('.', pos);
    out.emplace_back(name.substr(pos, dot == std::string_view::npos ? name.npos : dot - pos));
    if (dot == std::string_view::npos) return out;
    pos = dot + 1;
  }
}

std::string_view kind_name(RuleKind k) {
  switch (k) {
    case RuleKind::kComplete:
      return "complete rule";
    case RuleKind::kPartialSet:
      return "partial set rule";
    case RuleKind::kPartialObject:
      return "partial object rule";
    case RuleKind::kFunction:
      return "function";
  }
  return "rule";
}

std::string mask_text(std::uint16_t mask) {
  std::string out;
  for (int t = 1; t <= 7; ++t) {
    if ((mask & (1 << t)) == 0) continue;
    if (!out.empty()) out += " or ";
    out += type_name(static_cast<Value::Type>(t));
  }
  return out;
}

class Compiler {
 public:
  explicit Compiler(const Program& prog) : prog_(prog) {}

  void set_module(std::string_view file, int package_node, const std::vector<Import>* imports) {
    file_ = file;
    package_node_ = package_node;
    imports_.clear();
    if (imports != nullptr) {
      for (const auto& imp : *imports) {
        if (imp.path[0] == "data" || imp.path[0] == "input") imports_[imp.alias] = imp.path;
      }
    }
  }

  Status compile_rule(Rule& r, std::set<int>& deps) {
    deps_ = &deps;
    next_slot_ = 0;
    bound_.clear();
    Scope root;
    if (r.is_default) {
      for (auto& a : r.args) {
        if (a->kind == TermKind::kVar && a->name == "_") {
          a->slot = new_slot();
        } else {
          COFFER_TRY_STATUS(compile_pattern(*a, root, false));
        }
      }
      Term& v = *r.clauses[0].value;
      COFFER_TRY_STATUS(compile_term(v, root));
      if (!v.constant) {
        return error("rego_compile_error", v.loc, "default rule value must be a constant");
      }
      r.num_slots = next_slot_;
      return ok();
    }
    for (auto& a : r.args) {
      COFFER_TRY_STATUS(compile_pattern(*a, root, false));
      mark_bound(*a);
    }
    for (std::size_t i = 0; i < r.clauses.size(); ++i) {
      Clause& c = r.clauses[i];
      Scope cs{&root, {}};
      auto saved = bound_;
      COFFER_TRY_STATUS(compile_body(c.body, cs));
      if (i == 0 && r.key) COFFER_TRY_STATUS(compile_term(*r.key, cs));
      if (c.value) COFFER_TRY_STATUS(compile_term(*c.value, cs));
      restore(saved);
    }
    r.num_slots = next_slot_;
    return ok();
  }

  Result<int> compile_query_body(Body& b) {
    deps_ = nullptr;
    next_slot_ = 0;
    bound_.clear();
    Scope root;
    COFFER_TRY_STATUS(compile_body(b, root));
    return next_slot_;
  }

 private:
  std::unexpected<Error> error(std::string_view code, const Location& loc, const std::string& msg) {
    return make_error(std::string(code), format_location(file_, loc) + ": " + msg);
  }
  std::unexpected<Error> unsafe(const Term& t) {
    return error("rego_unsafe_var_error", t.loc, "var " + t.name + " is unsafe");
  }

  int new_slot() {
    bound_.push_back(0);
    return next_slot_++;
  }
  void restore(const std::vector<char>& saved) {
    for (std::size_t i = 0; i < saved.size(); ++i) bound_[i] = saved[i];
  }
  void mark_bound(const Term& t) {
    if (t.kind == TermKind::kVar && t.slot >= 0) bound_[static_cast<std::size_t>(t.slot)] = 1;
    if (t.kind == TermKind::kArray || t.kind == TermKind::kObject) {
      for (const auto& i : t.items) mark_bound(*i);
    }
  }

  // --- global names ---------------------------------------------------------------------------

  int package_child_group(const std::string& name) const {
    if (package_node_ < 0) return -1;
    const auto& node = prog_.nodes[static_cast<std::size_t>(package_node_)];
    auto it = node.children.find(name);
    if (it == node.children.end()) return -1;
    return prog_.nodes[static_cast<std::size_t>(it->second)].group;
  }

  bool is_global(const std::string& name) const {
    return name == "input" || name == "data" || imports_.contains(name) ||
           package_child_group(name) >= 0;
  }

  // Turns a variable term into a reference whose head is that variable.
  static void var_to_ref(Term& t) {
    auto head = std::make_unique<Term>();
    head->kind = TermKind::kVar;
    head->loc = t.loc;
    head->end = t.end;
    head->name = t.name;
    t.kind = TermKind::kRef;
    t.items.clear();
    t.items.push_back(std::move(head));
  }

  void add_deps_under(int node) {
    if (deps_ == nullptr) return;
    const auto& n = prog_.nodes[static_cast<std::size_t>(node)];
    if (n.group >= 0) deps_->insert(n.group);
    for (const auto& [name, child] : n.children) add_deps_under(child);
  }

  // data.a.b...: the longest prefix of constant operands that names a rule or package.
  void resolve_data(Term& t) {
    std::size_t i = 1;
    int node = 0;
    while (i < t.items.size()) {
      const Term& op = *t.items[i];
      if (op.kind != TermKind::kScalar || !op.value.is(Value::Type::kString)) break;
      const auto& children = prog_.nodes[static_cast<std::size_t>(node)].children;
      auto it = children.find(op.value.as_string());
      if (it == children.end()) {
        // Below the rule tree: base documents only.
        t.ref_head = RefHead::kData;
        t.ref_start = 1;
        return;
      }
      node = it->second;
      ++i;
      int group = prog_.nodes[static_cast<std::size_t>(node)].group;
      if (group >= 0) {
        t.ref_head = RefHead::kRule;
        t.ref_index = group;
        t.ref_start = i;
        if (deps_ != nullptr) deps_->insert(group);
        return;
      }
    }
    if (node == 0 && prog_.nodes[0].children.empty()) {
      t.ref_head = RefHead::kData;
      t.ref_start = 1;
      return;
    }
    t.ref_head = RefHead::kPackage;
    t.ref_index = node;
    t.ref_start = i;
    t.data_path = prog_.nodes[static_cast<std::size_t>(node)].path;
    add_deps_under(node);
  }

  Status compile_ref(Term& t, Scope& s) {
    Term& head = *t.items[0];
    if (head.kind == TermKind::kVar) {
      const std::string name = head.name;
      int slot = name == "_" ? -1 : s.lookup(name);
      if (slot >= 0) {
        if (bound_[static_cast<std::size_t>(slot)] == 0) return unsafe(head);
        head.slot = slot;
        t.ref_head = RefHead::kLocal;
        t.ref_start = 1;
      } else if (int g = package_child_group(name); g >= 0) {
        if (prog_.groups[static_cast<std::size_t>(g)].kind == RuleKind::kFunction) {
          return error("rego_type_error", head.loc, "function " + name + " used as a value");
        }
        t.ref_head = RefHead::kRule;
        t.ref_index = g;
        t.ref_start = 1;
        if (deps_ != nullptr) deps_->insert(g);
      } else if (auto it = imports_.find(name); it != imports_.end()) {
        // Rewrite alias.rest into root.path.rest.
        const auto& path = it->second;
        std::vector<TermPtr> items;
        auto root = std::make_unique<Term>();
        root->kind = TermKind::kVar;
        root->loc = head.loc;
        root->end = head.end;
        root->name = path[0];
        items.push_back(std::move(root));
        for (std::size_t i = 1; i < path.size(); ++i) {
          auto op = std::make_unique<Term>();
          op->kind = TermKind::kScalar;
          op->loc = head.loc;
          op->value = Value::string(path[i]);
          op->constant = true;
          items.push_back(std::move(op));
        }
        for (std::size_t i = 1; i < t.items.size(); ++i) items.push_back(std::move(t.items[i]));
        t.items = std::move(items);
        return compile_global_ref(t, s);
      } else if (name == "input" || name == "data") {
        return compile_global_ref(t, s);
      } else {
        return unsafe(head);
      }
    } else {
      COFFER_TRY_STATUS(compile_term(head, s));
      t.ref_head = RefHead::kTerm;
      t.ref_start = 1;
    }
    return compile_operands(t, s);
  }

  Status compile_global_ref(Term& t, Scope& s) {
    if (t.items[0]->name == "input") {
      t.ref_head = RefHead::kInput;
      t.ref_start = 1;
    } else {
      resolve_data(t);
    }
    return compile_operands(t, s);
  }

  Status compile_operands(Term& t, Scope& s) {
    for (std::size_t i = 1; i < t.items.size(); ++i) {
      Term& op = *t.items[i];
      if (op.kind == TermKind::kVar) {
        if (op.name == "_") {
          op.slot = new_slot();
          continue;
        }
        int slot = s.lookup(op.name);
        if (slot >= 0) {
          op.slot = slot;
          bound_[static_cast<std::size_t>(slot)] = 1;  // bound here by iteration if it was not
          continue;
        }
        if (!is_global(op.name)) {
          op.slot = new_slot();
          s.vars[op.name] = op.slot;
          bound_[static_cast<std::size_t>(op.slot)] = 1;
          continue;
        }
      }
      COFFER_TRY_STATUS(compile_term(op, s));
    }
    return ok();
  }

  // --- terms ------------------------------------------------------------------------------------

  Status compile_term(Term& t, Scope& s) {
    switch (t.kind) {
      case TermKind::kScalar:
        t.constant = true;
        return ok();
      case TermKind::kVar: {
        if (t.name == "_") return unsafe(t);
        int slot = s.lookup(t.name);
        if (slot >= 0) {
          if (bound_[static_cast<std::size_t>(slot)] == 0) return unsafe(t);
          t.slot = slot;
          return ok();
        }
        if (!is_global(t.name)) return unsafe(t);
        var_to_ref(t);
        return compile_ref(t, s);
      }
      case TermKind::kRef:
        return compile_ref(t, s);
      case TermKind::kCall:
        return compile_call(t, s);
      case TermKind::kArray:
      case TermKind::kSet:
      case TermKind::kObject: {
        bool all_const = true;
        for (auto& item : t.items) {
          COFFER_TRY_STATUS(compile_term(*item, s));
          all_const = all_const && item->constant;
        }
        if (all_const) fold(t);
        return ok();
      }
      case TermKind::kArrayCompr:
      case TermKind::kSetCompr:
      case TermKind::kObjectCompr: {
        Scope inner{&s, {}};
        auto saved = bound_;
        COFFER_TRY_STATUS(compile_body(*t.body, inner));
        for (auto& item : t.items) COFFER_TRY_STATUS(compile_term(*item, inner));
        restore(saved);
        return ok();
      }
    }
    return ok();
  }

  void fold(Term& t) {
    if (t.kind == TermKind::kArray) {
      std::vector<Value> items;
      for (const auto& i : t.items) items.push_back(i->value);
      t.value = Value::array(std::move(items));
    } else if (t.kind == TermKind::kSet) {
      std::vector<Value> items;
      for (const auto& i : t.items) items.push_back(i->value);
      t.value = Value::set(std::move(items));
    } else {
      std::vector<std::pair<Value, Value>> items;
      for (std::size_t i = 0; i + 1 < t.items.size(); i += 2) {
        Value k = t.items[i]->value;
        auto dup =
            std::find_if(items.begin(), items.end(), [&](const auto& kv) { return kv.first == k; });
        if (dup != items.end()) {
          dup->second = t.items[i + 1]->value;
        } else {
          items.emplace_back(k, t.items[i + 1]->value);
        }
      }
      t.value = Value::object(std::move(items));
    }
    t.constant = true;
  }

  int find_function_group(const std::string& name) const {
    auto parts = split_name(name);
    if (parts.size() == 1) return package_child_group(parts[0]);
    std::vector<std::string> path;
    if (auto it = imports_.find(parts[0]); it != imports_.end()) {
      path = it->second;
      path.insert(path.end(), parts.begin() + 1, parts.end());
    } else {
      path = parts;
    }
    if (path[0] != "data") return -1;
    int node = 0;
    for (std::size_t i = 1; i < path.size(); ++i) {
      const auto& children = prog_.nodes[static_cast<std::size_t>(node)].children;
      auto it = children.find(path[i]);
      if (it == children.end()) return -1;
      node = it->second;
    }
    return prog_.nodes[static_cast<std::size_t>(node)].group;
  }

  Status compile_call(Term& t, Scope& s) {
    auto argc = static_cast<int>(t.items.size());
    int expected = 0;
    if (int g = find_function_group(t.name); g >= 0) {
      const RuleGroup& group = prog_.groups[static_cast<std::size_t>(g)];
      if (group.kind != RuleKind::kFunction) {
        return error("rego_type_error", t.loc, group.path + " is not a function");
      }
      t.call_kind = CallKind::kFunction;
      t.call_index = g;
      expected = group.arity;
      if (deps_ != nullptr) deps_->insert(g);
    } else if (auto h = std::find_if(prog_.host.begin(), prog_.host.end(),
                                     [&](const HostBuiltin& b) { return b.name == t.name; });
               h != prog_.host.end()) {
      t.call_kind = CallKind::kHost;
      t.call_index = static_cast<int>(h - prog_.host.begin());
      expected = h->arity;
    } else if (const BuiltinDef* b = find_builtin(t.name); b != nullptr) {
      t.call_kind = CallKind::kBuiltin;
      t.builtin = b;
      expected = b->arity;
    } else {
      return error("rego_type_error", t.loc, "undefined function " + t.name);
    }
    if (argc != expected) {
      return error("rego_type_error", t.loc,
                   t.name + ": arity mismatch: expected " + std::to_string(expected) +
                       " arguments, got " + std::to_string(argc));
    }
    for (std::size_t i = 0; i < t.items.size(); ++i) {
      Term& arg = *t.items[i];
      COFFER_TRY_STATUS(compile_term(arg, s));
      if (t.builtin != nullptr && arg.constant && i < 4) {
        std::uint16_t mask = t.builtin->params[i];
        if ((mask & (1u << static_cast<unsigned>(arg.value.type()))) == 0) {
          return error("rego_type_error", arg.loc,
                       t.name + ": operand " + std::to_string(i + 1) + " must be " +
                           mask_text(mask) + " but got " +
                           std::string(type_name(arg.value.type())));
        }
      }
    }
    return ok();
  }

  // A term in a position that can bind variables (:= and = operands, some, function args).
  Status compile_pattern(Term& t, Scope& s, bool declare) {
    switch (t.kind) {
      case TermKind::kVar: {
        if (t.name == "_") {
          t.slot = new_slot();
          return ok();
        }
        if (declare) {
          if (s.vars.contains(t.name)) {
            return error("rego_compile_error", t.loc, "var " + t.name + " assigned above");
          }
          t.slot = new_slot();
          s.vars[t.name] = t.slot;
          return ok();
        }
        int slot = s.lookup(t.name);
        if (slot >= 0) {
          t.slot = slot;
          return ok();
        }
        if (is_global(t.name)) return compile_term(t, s);
        t.slot = new_slot();
        s.vars[t.name] = t.slot;
        return ok();
      }
      case TermKind::kArray: {
        bool all_const = true;
        for (auto& item : t.items) {
          COFFER_TRY_STATUS(compile_pattern(*item, s, declare));
          all_const = all_const && item->constant;
        }
        if (all_const) fold(t);
        return ok();
      }
      case TermKind::kObject: {
        bool all_const = true;
        for (std::size_t i = 0; i < t.items.size(); i += 2) {
          COFFER_TRY_STATUS(compile_term(*t.items[i], s));
          COFFER_TRY_STATUS(compile_pattern(*t.items[i + 1], s, declare));
          all_const = all_const && t.items[i]->constant && t.items[i + 1]->constant;
        }
        if (all_const) fold(t);
        return ok();
      }
      default:
        if (declare) {
          return error("rego_compile_error", t.loc,
                       "cannot assign to a " +
                           std::string(t.kind == TermKind::kRef ? "reference" : "value"));
        }
        return compile_term(t, s);
    }
  }

  static bool pattern_shape(const Term& t) {
    return t.kind == TermKind::kVar || t.kind == TermKind::kArray || t.kind == TermKind::kObject;
  }

  Status compile_body(Body& b, Scope& s) {
    for (auto& e : b.exprs) COFFER_TRY_STATUS(compile_expr(e, s));
    return ok();
  }

  Status compile_expr(Expr& e, Scope& s) {
    switch (e.kind) {
      case ExprKind::kTerm:
        return compile_term(*e.a, s);
      case ExprKind::kAssign:
        COFFER_TRY_STATUS(compile_term(*e.b, s));
        COFFER_TRY_STATUS(compile_pattern(*e.a, s, true));
        mark_bound(*e.a);
        return ok();
      case ExprKind::kUnify: {
        bool pa = pattern_shape(*e.a);
        bool pb = pattern_shape(*e.b);
        if (pa && !pb) {
          COFFER_TRY_STATUS(compile_term(*e.b, s));
          COFFER_TRY_STATUS(compile_pattern(*e.a, s, false));
        } else if (pb && !pa) {
          COFFER_TRY_STATUS(compile_term(*e.a, s));
          COFFER_TRY_STATUS(compile_pattern(*e.b, s, false));
        } else if (pa && pb) {
          COFFER_TRY_STATUS(compile_pattern(*e.a, s, false));
          COFFER_TRY_STATUS(compile_pattern(*e.b, s, false));
        } else {
          COFFER_TRY_STATUS(compile_term(*e.a, s));
          COFFER_TRY_STATUS(compile_term(*e.b, s));
        }
        mark_bound(*e.a);
        mark_bound(*e.b);
        return ok();
      }
      case ExprKind::kNot: {
        Scope inner{&s, {}};
        auto saved = bound_;
        COFFER_TRY_STATUS(compile_expr(*e.inner, inner));
        restore(saved);
        return ok();
      }
      case ExprKind::kSome:
        for (auto& v : e.vars) {
          v->slot = new_slot();
          s.vars[v->name] = v->slot;
        }
        return ok();
      case ExprKind::kSomeIn:
        COFFER_TRY_STATUS(compile_term(*e.c, s));
        if (e.a) {
          COFFER_TRY_STATUS(compile_some_var(*e.a, s));
        }
        COFFER_TRY_STATUS(compile_some_var(*e.b, s));
        return ok();
      case ExprKind::kEvery: {
        COFFER_TRY_STATUS(compile_term(*e.c, s));
        Scope inner{&s, {}};
        auto saved = bound_;
        if (e.a) COFFER_TRY_STATUS(compile_some_var(*e.a, inner));
        COFFER_TRY_STATUS(compile_some_var(*e.b, inner));
        COFFER_TRY_STATUS(compile_body(*e.body, inner));
        restore(saved);
        return ok();
      }
    }
    return ok();
  }

  // Variables introduced by `some ... in` and `every`: always fresh, shadowing outer names.
  Status compile_some_var(Term& t, Scope& s) {
    if (t.kind == TermKind::kVar) {
      t.slot = new_slot();
      if (t.name != "_") s.vars[t.name] = t.slot;
      bound_[static_cast<std::size_t>(t.slot)] = 1;
      return ok();
    }
    COFFER_TRY_STATUS(compile_pattern(t, s, false));
    mark_bound(t);
    return ok();
  }

  const Program& prog_;
  std::string_view file_;
  int package_node_ = -1;
  std::unordered_map<std::string, std::vector<std::string>> imports_;
  int next_slot_ = 0;
  std::vector<char> bound_;
  std::set<int>* deps_ = nullptr;
};

std::unexpected<Error> located(std::string_view code, const ModuleAst& m, const Location& loc,
                               const std::string& msg) {
  return make_error(std::string(code), format_location(m.file, loc) + ": " + msg);
}

int ensure_child(Program& p, int node, const std::string& name) {
  auto it = p.nodes[static_cast<std::size_t>(node)].children.find(name);
  if (it != p.nodes[static_cast<std::size_t>(node)].children.end()) return it->second;
  PackageNode child;
  child.path = p.nodes[static_cast<std::size_t>(node)].path;
  child.path.push_back(name);
  p.nodes.push_back(std::move(child));
  int id = static_cast<int>(p.nodes.size() - 1);
  p.nodes[static_cast<std::size_t>(node)].children.emplace(name, id);
  return id;
}

Status check_imports(const ModuleAst& m) {
  for (const auto& imp : m.imports) {
    const std::string& root = imp.path[0];
    bool ok_import = root == "data" || root == "input" ||
                     (root == "future" && imp.path.size() >= 2 && imp.path[1] == "keywords") ||
                     (root == "rego" && imp.path.size() == 2 && imp.path[1] == "v1");
    if (!ok_import) {
      return located("rego_compile_error", m, imp.loc,
                     "unsupported import " + root +
                         " (imports must start with data, input, "
                         "future.keywords or be rego.v1)");
    }
  }
  return ok();
}

// Depth-first search for cycles in the rule dependency graph.
Status check_recursion(const Program& p, const std::vector<std::set<int>>& deps) {
  std::vector<int> state(p.groups.size(), 0);  // 0 new, 1 on stack, 2 done
  std::vector<int> stack;
  std::function<Status(int)> visit = [&](int g) -> Status {
    state[static_cast<std::size_t>(g)] = 1;
    stack.push_back(g);
    for (int d : deps[static_cast<std::size_t>(g)]) {
      if (state[static_cast<std::size_t>(d)] == 1) {
        std::string cycle;
        auto it = std::find(stack.begin(), stack.end(), d);
        for (; it != stack.end(); ++it)
          cycle += p.groups[static_cast<std::size_t>(*it)].path + " -> ";
        cycle += p.groups[static_cast<std::size_t>(d)].path;
        const RuleGroup& grp = p.groups[static_cast<std::size_t>(d)];
        const Rule* r = grp.defs.empty() ? grp.default_rule : grp.defs[0];
        const ModuleAst& m = *p.modules[r->module];
        return located("rego_recursion_error", m, r->loc, "rule is recursive: " + cycle);
      }
      if (state[static_cast<std::size_t>(d)] == 0) COFFER_TRY_STATUS(visit(d));
    }
    stack.pop_back();
    state[static_cast<std::size_t>(g)] = 2;
    return ok();
  };
  for (std::size_t g = 0; g < p.groups.size(); ++g) {
    if (state[g] == 0) COFFER_TRY_STATUS(visit(static_cast<int>(g)));
  }
  return ok();
}

}  // namespace

Result<std::shared_ptr<Program>> build_program(std::vector<Module> modules, CompileOptions opts) {
  auto prog = std::make_shared<Program>();
  prog->limits = opts.limits;
  prog->clock = opts.clock ? opts.clock : system_clock();
  prog->strict_builtin_errors = opts.strict_builtin_errors;
  for (auto& [name, def] : opts.builtins) {
    if (def.first < 0 || !def.second) {
      return make_error("rego_compile_error",
                        "host builtin " + name + " needs an arity and a function");
    }
    prog->host.push_back(HostBuiltin{name, def.first, std::move(def.second)});
  }
  ParseLimits plimits;
  for (std::size_t i = 0; i < modules.size(); ++i) {
    auto m =
        COFFER_TRY(parse_module(std::move(modules[i].name), std::move(modules[i].source), plimits));
    COFFER_TRY_STATUS(check_imports(m));
    prog->modules.push_back(std::make_unique<ModuleAst>(std::move(m)));
  }
  prog->nodes.emplace_back();  // data

  // Group rules by path.
  std::vector<int> module_package(prog->modules.size());
  for (std::size_t mi = 0; mi < prog->modules.size(); ++mi) {
    ModuleAst& m = *prog->modules[mi];
    int node = 0;
    for (const auto& seg : m.package) node = ensure_child(*prog, node, seg);
    if (prog->nodes[static_cast<std::size_t>(node)].group >= 0) {
      return located("rego_compile_error", m, m.package_loc,
                     "package " + join_path(m.package) + " conflicts with a rule of that name");
    }
    module_package[mi] = node;
    for (Rule& r : m.rules) {
      r.module = mi;
      int child = ensure_child(*prog, node, r.name);
      PackageNode& cn = prog->nodes[static_cast<std::size_t>(child)];
      if (!cn.children.empty()) {
        return located("rego_compile_error", m, r.loc,
                       "rule " + r.name + " conflicts with package " + join_path(cn.path));
      }
      int arity = static_cast<int>(r.args.size());
      if (cn.group < 0) {
        RuleGroup g;
        g.path = join_path(cn.path);
        g.kind = r.kind;
        g.arity = arity;
        prog->groups.push_back(std::move(g));
        cn.group = static_cast<int>(prog->groups.size() - 1);
      }
      RuleGroup& g = prog->groups[static_cast<std::size_t>(cn.group)];
      if (g.kind != r.kind) {
        return located("rego_compile_error", m, r.loc,
                       "conflicting rules " + g.path + " found: " + std::string(kind_name(g.kind)) +
                           " and " + std::string(kind_name(r.kind)));
      }
      if (g.arity != arity) {
        return located("rego_compile_error", m, r.loc,
                       "function " + g.path + " defined with different numbers of arguments");
      }
      if (r.is_default) {
        if (g.default_rule != nullptr) {
          return located("rego_compile_error", m, r.loc,
                         "multiple default rules " + g.path + " found");
        }
        g.default_rule = &r;
      } else {
        g.defs.push_back(&r);
      }
    }
  }

  // Resolve names inside every rule.
  std::vector<std::set<int>> deps(prog->groups.size());
  Compiler compiler(*prog);
  for (std::size_t mi = 0; mi < prog->modules.size(); ++mi) {
    ModuleAst& m = *prog->modules[mi];
    compiler.set_module(m.file, module_package[mi], &m.imports);
    for (Rule& r : m.rules) {
      int node = prog->nodes[static_cast<std::size_t>(module_package[mi])].children.at(r.name);
      int g = prog->nodes[static_cast<std::size_t>(node)].group;
      COFFER_TRY_STATUS(compiler.compile_rule(r, deps[static_cast<std::size_t>(g)]));
    }
  }
  COFFER_TRY_STATUS(check_recursion(*prog, deps));
  return prog;
}

Result<int> compile_query(const Program& program, Body& query, std::string_view file) {
  Compiler compiler(program);
  compiler.set_module(file, -1, nullptr);
  return compiler.compile_query_body(query);
}

}  // namespace coffer::policy
