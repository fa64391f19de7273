# Release a resource only when every submodule of the EAR token is affirming.
package policy

import rego.v1

default allow := false

allow if {
	count(input.submods) > 0
	every name, submod in input.submods {
		submod["ear.status"] == "affirming"
	}
}
