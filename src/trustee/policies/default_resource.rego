# coffer default resource policy: release a resource only when the attestation token says
# every submodule's appraisal is "affirming" (stricter than Trustee's default, which only
# requires a token).
#
# Input: the EAR token claims. Data: {"plugin": "resource", "resource-path": [repo, type, tag],
# "query": {...}}. Rule: data.policy.allow.
package policy

import rego.v1

default allow := false

allow if {
	count(input.submods) > 0
	every submod in input.submods {
		submod["ear.status"] == "affirming"
	}
}
