#include "agent/policy.h"

#include <cstdlib>
#include <utility>

#include "core/bytes.h"

namespace coffer::agent {

namespace {

constexpr std::string_view kPackage = "data.agent_policy.";
constexpr std::size_t kMaxReasonBytes = 512;

std::string rule_for(std::string_view method) {
  return std::string(kPackage) + std::string(method) + "Request";
}

}  // namespace

Result<std::unique_ptr<AgentPolicy>> AgentPolicy::load(std::string_view rego, bool from_init_data,
                                                       const policy::Limits& limits) {
  policy::CompileOptions opts;
  opts.limits = limits;
  // a builtin failing on a bad operand is an error (a denial), not a silently undefined expression
  opts.strict_builtin_errors = true;
  auto compiled = policy::compile({{"policy.rego", std::string(rego)}}, std::move(opts));
  if (!compiled) {
    return make_error("bad_agent_policy",
                      "agent policy does not compile: " + compiled.error().to_string());
  }
  return std::unique_ptr<AgentPolicy>(new AgentPolicy(std::move(*compiled), from_init_data));
}

std::unique_ptr<AgentPolicy> AgentPolicy::builtin() {
  auto p = load(default_agent_policy(), false);
  if (!p) std::abort();  // the built-in text is tested; failing to compile it is a bug
  return std::move(*p);
}

Status AgentPolicy::check(std::string_view method, const Json& request) {
  const std::string rule = rule_for(method);
  const Json input = {{"method", method}, {"request", request}};
  auto decision = compiled_->evaluate(rule, input);
  if (!decision) {
    // fail closed: a policy that cannot decide denies
    count(method, false);
    return make_error("policy_denied",
                      "agent policy could not evaluate " + rule + " (" + decision.error().code +
                          "): " + printable_excerpt(decision.error().message, kMaxReasonBytes));
  }
  if (decision->value && *decision->value == Json(true)) {
    count(method, true);
    return ok();
  }
  count(method, false);
  std::string reason =
      "agent policy denied " + std::string(method) + ": rule " + rule + " is " +
      (decision->value ? printable_excerpt(decision->value->dump(), 64) : std::string("undefined"));
  // Re-evaluated with explanation only on the deny path. Only the rule, location and expression
  // text (the policy's own) are quoted, never operand values (which come from the request).
  if (auto explained = compiled_->evaluate(rule, input, Json::object(), true);
      explained && explained->explanation) {
    for (const auto& e : explained->explanation->entries) {
      reason += "; " + e.location + ": " + e.rule + ": failed: " + e.expression;
      if (reason.size() > kMaxReasonBytes) break;
    }
  }
  return make_error("policy_denied", printable_excerpt(reason, kMaxReasonBytes));
}

void AgentPolicy::count(std::string_view method, bool allowed) {
  std::lock_guard lock(mu_);
  auto it = decisions_.find(method);
  if (it == decisions_.end()) it = decisions_.emplace(std::string(method), DecisionCount{}).first;
  ++(allowed ? it->second.allowed : it->second.denied);
}

std::map<std::string, DecisionCount, std::less<>> AgentPolicy::decisions() const {
  std::lock_guard lock(mu_);
  return decisions_;
}

}  // namespace coffer::agent
