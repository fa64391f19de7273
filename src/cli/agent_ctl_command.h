// `coffer agent-ctl --socket S CALL [args]`: drives every call of coffer-agent's API
// (coffer.agent.v1.Agent, docs/agent-api.md) by hand, for tests and debugging. Responses are
// printed as JSON (proto3 JSON mapping, field names as in the .proto; bytes base64) on stdout;
// a refused call prints {"code", "status", "message"} on stderr.
//
// Exit codes: 0 the call succeeded; 1 the agent refused it (any status but UNAVAILABLE:
// policy denial, not found, bad state, deadline...); 2 usage error; 3 the agent is unreachable
// (nothing listens, the connection ended, or UNAVAILABLE).
#pragma once

#include <CLI/CLI.hpp>

namespace coffer::cli {

void add_agent_ctl_command(CLI::App& app);

}  // namespace coffer::cli
