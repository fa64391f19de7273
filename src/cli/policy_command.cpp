#include "cli/policy_command.h"

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/exit.h"
#include "core/file.h"
#include "core/json.h"
#include "policy/policy.h"

namespace coffer::cli {

namespace {

struct PolicyEvalOptions {
  std::vector<std::string> policies;
  std::string input;
  std::string data;
  bool explain = false;
  std::string query;
};

constexpr std::string_view kPrefix = "coffer policy eval";

[[noreturn]] void die(const Error& e) { fail(kPrefix, e); }

Json load_json(const std::string& path) {
  auto text = read_text_file(path);
  if (!text) die(text.error());
  auto j = parse_json(*text);
  if (!j) die(wrap_error(j.error(), path).error());
  return std::move(*j);
}

void run_eval(const PolicyEvalOptions& o) {
  std::vector<policy::Module> modules;
  for (const auto& path : o.policies) {
    auto text = read_text_file(path);
    if (!text) die(text.error());
    modules.push_back({path, std::move(*text)});
  }
  auto compiled = policy::compile(std::move(modules));
  if (!compiled) die(compiled.error());
  Json input = o.input.empty() ? Json(Json::value_t::discarded) : load_json(o.input);
  Json data = o.data.empty() ? Json::object() : load_json(o.data);
  auto result = (*compiled)->evaluate(o.query, input, data, o.explain);
  if (!result) die(result.error());
  if (result->value) {
    std::cout << result->value->dump(2) << "\n";
  } else {
    std::cout << "undefined\n";
  }
  bool denied = !result->value || *result->value == Json(false);
  if (o.explain && denied && result->explanation) {
    std::string text = result->explanation->to_string();
    std::cerr << (text.empty() ? "no rule body was tried\n" : text);
  }
}

}  // namespace

void add_policy_command(CLI::App& app) {
  auto* policy = app.add_subcommand("policy", "Rego policies");
  policy->require_subcommand(1);
  auto opts = std::make_shared<PolicyEvalOptions>();
  auto* eval = policy->add_subcommand("eval", "Evaluate a query against Rego policy files");
  eval->add_option("--policy,-p", opts->policies, "Rego module (repeatable)")
      ->required()
      ->check(CLI::ExistingFile);
  eval->add_option("--input,-i", opts->input, "input document (JSON)")->check(CLI::ExistingFile);
  eval->add_option("--data,-d", opts->data, "base data document (JSON)")->check(CLI::ExistingFile);
  eval->add_flag("--explain", opts->explain, "explain an undefined or false result");
  eval->add_option("query", opts->query, "query, e.g. data.policy.allow")->required();
  eval->callback([opts] { run_eval(*opts); });
}

}  // namespace coffer::cli
