// The agent policy: every request from the host is evaluated by Rego before the agent acts on it.
// The host is untrusted; what it may ask comes only from the attested init-data (`policy.rego`)
// or, without one, from the built-in default (default_agent_policy(), docs/agent-api.md).
//
// Model (Kata's agent policy): the policy is `package agent_policy`; for a call to method M the
// agent evaluates `data.agent_policy.<M>Request` with input
//   {"method": "M", "request": <the request message as proto3 JSON, field names as in the .proto>}
// and acts only when the value is exactly `true`. Undefined, false, any other value and any
// evaluation error deny (fail closed). A denial ("policy_denied") names the rule and, from the
// engine's explanation, the first expression that failed and where; it never quotes input values.
//
// Decisions are counted per method (allowed, denied). Methods are the API's fixed set, so the
// counters are bounded.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/json.h"
#include "policy/policy.h"

namespace coffer::agent {

// The Rego text of the built-in default policy.
std::string_view default_agent_policy();

struct DecisionCount {
  std::uint64_t allowed = 0;
  std::uint64_t denied = 0;
};

class AgentPolicy {
 public:
  // Compiles `rego`; "bad_agent_policy" when it does not parse or compile (the agent refuses to
  // start with it rather than run with no policy).
  static Result<std::unique_ptr<AgentPolicy>> load(std::string_view rego, bool from_init_data,
                                                   const policy::Limits& limits = {});
  // The built-in default (always compiles; a failure is a bug and aborts).
  static std::unique_ptr<AgentPolicy> builtin();

  // Ok when data.agent_policy.<method>Request is true for this request; "policy_denied" otherwise.
  Status check(std::string_view method, const Json& request);

  [[nodiscard]] bool from_init_data() const { return from_init_data_; }
  [[nodiscard]] std::map<std::string, DecisionCount, std::less<>> decisions() const;

 private:
  AgentPolicy(std::shared_ptr<const policy::CompiledPolicy> compiled, bool from_init_data)
      : compiled_(std::move(compiled)), from_init_data_(from_init_data) {}
  void count(std::string_view method, bool allowed);

  std::shared_ptr<const policy::CompiledPolicy> compiled_;
  bool from_init_data_;
  mutable std::mutex mu_;  // guards decisions_
  std::map<std::string, DecisionCount, std::less<>> decisions_;
};

}  // namespace coffer::agent
