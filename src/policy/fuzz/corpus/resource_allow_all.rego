package policy

import rego.v1

default allow := true
