# Per-resource rules keyed on the requested path (data["resource-path"] is "repo/type/tag").
package policy

import future.keywords.if
import future.keywords.in

default allow = false

path := split(data["resource-path"], "/")

# Anything under the "public" repository is released to any affirming TEE.
allow if {
	path[0] == "public"
	input.submods.cpu0["ear.status"] == "affirming"
}

# Keys of the "tdx-only" repository need TDX evidence with a hardware claim of 2.
allow if {
	path[0] == "tdx-only"
	path[1] == "key"
	input.submods.cpu0["ear.status"] == "affirming"
	input.submods.cpu0["ear.trustworthiness-vector"].hardware == 2
	input.submods.cpu0["ear.veraison.annotated-evidence"].tdx
}
