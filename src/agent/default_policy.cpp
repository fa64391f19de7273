// The built-in agent policy (documented in docs/agent-api.md; policy.h explains the model).
#include "agent/policy.h"

namespace coffer::agent {

std::string_view default_agent_policy() {
  static constexpr std::string_view kPolicy = R"rego(
# coffer-agent's built-in agent policy (used when the init-data carries no policy.rego).
#
# The host may drive the container lifecycle and read output, but may not change what the image
# runs: no exec, and no override of entrypoint, command, environment, working directory, user,
# mounts or privileges beyond what policy_data below lists (empty here: nothing). To allow more,
# put a policy in the init-data (it is attested), e.g. this file with policy_data filled in.
package agent_policy

import rego.v1

policy_data := {
	# each an exact argv list, e.g. ["/bin/sh", "-c", "echo hi"]
	"allowed_entrypoints": [],
	"allowed_commands": [],
	# exact "KEY=VALUE" entries, and names whose any value is allowed
	"allowed_env": [],
	"allowed_env_names": [],
	"allowed_working_dirs": [],
	"allowed_users": [],
	# exact mount objects {"destination", "type", "source", "options"}
	"allowed_mounts": [],
	"allow_privileged": false,
	# exact argv lists that ExecProcess may run
	"allowed_exec": [],
}

default CreateSandboxRequest := true

default RemoveSandboxRequest := true

default StartContainerRequest := true

default WaitProcessRequest := true

default SignalProcessRequest := true

default RemoveContainerRequest := true

default ContainerStateRequest := true

default ListContainersRequest := true

default ContainerStatsRequest := true

default WriteStdinRequest := true

default CloseStdinRequest := true

default ReadOutputRequest := true

default ResizeTtyRequest := true

default PullImageRequest := true

default PullProgressRequest := true

default GuestDetailsRequest := true

default HealthRequest := true

default ExecProcessRequest := false

ExecProcessRequest if {
	input.request.args in policy_data.allowed_exec
}

default HandOverKeyRequest := true

# An exported bundle (the two-enclave flow) is a container that runs in the app enclave. The agent
# gives the policy its container request's fields (plus bundle_id and key_handover) as
# input.request, so the container rules below apply as they are.
default ExportBundleRequest := false

ExportBundleRequest if {
	entrypoint_allowed
	command_allowed
	env_allowed
	working_dir_allowed
	user_allowed
	mounts_allowed
	privileged_allowed
}

default CreateContainerRequest := false

CreateContainerRequest if {
	entrypoint_allowed
	command_allowed
	env_allowed
	working_dir_allowed
	user_allowed
	mounts_allowed
	privileged_allowed
}

entrypoint_allowed if not input.request.entrypoint

entrypoint_allowed if input.request.entrypoint.values in policy_data.allowed_entrypoints

command_allowed if not input.request.command

command_allowed if input.request.command.values in policy_data.allowed_commands

env_allowed if {
	denied := [e | some e in input.request.env; not env_entry_allowed(e)]
	count(denied) == 0
}

env_entry_allowed(e) if e in policy_data.allowed_env

env_entry_allowed(e) if {
	name := split(e, "=")[0]
	name in policy_data.allowed_env_names
}

working_dir_allowed if not input.request.working_dir

working_dir_allowed if input.request.working_dir in policy_data.allowed_working_dirs

user_allowed if not input.request.user

user_allowed if input.request.user in policy_data.allowed_users

mounts_allowed if {
	denied := [m | some m in input.request.mounts; not m in policy_data.allowed_mounts]
	count(denied) == 0
}

privileged_allowed if input.request.privileged == false

privileged_allowed if policy_data.allow_privileged == true
)rego";
  return kPolicy;
}

}  // namespace coffer::agent
