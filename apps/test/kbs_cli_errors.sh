#!/usr/bin/env bash
# `coffer kbs set-reference-values` refuses a file that is not an RVPS message, and
# `set-attestation-policy` a wrong choice of policy, locally (exit 2, a message saying what is
# wrong) before anything is sent. Usage: kbs_cli_errors.sh COFFER_BINARY
set -euo pipefail
coffer=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$coffer" kbs keygen --out "$work/admin.key" >/dev/null

expect_refusal() {  # FILE-CONTENT EXPECTED-MESSAGE
  printf '%s' "$1" > "$work/rv.json"
  set +e
  # port 9 (discard) on loopback: nothing listens, so a request that got out would fail with 3
  "$coffer" kbs --url http://127.0.0.1:9 --admin-key "$work/admin.key" \
    set-reference-values --file "$work/rv.json" 2> "$work/err"
  rc=$?
  set -e
  if [[ $rc -ne 2 ]] || ! grep -qF "$2" "$work/err"; then
    echo "input '$1': expected exit 2 and '$2', got exit $rc:" >&2
    cat "$work/err" >&2
    exit 1
  fi
}
expect_refusal 'not json' 'is not an RVPS message'
expect_refusal '{"version":"0.1.0","type":"sample"}' 'is not an RVPS message'
expect_refusal '{"version":"0.1.0","type":"sample","payload":"%%%"}' 'payload is not base64 of a {name: [values]} object'
# base64 of ["a"]: valid base64, but not an object of names
expect_refusal '{"version":"0.1.0","type":"sample","payload":"WyJhIl0="}' 'payload is not base64 of a {name: [values]} object'
# set-attestation-policy takes exactly one of --file and --builtin, and only the shipped names
expect_usage() {  # EXPECTED-MESSAGE ARGS...
  local want=$1; shift
  set +e
  "$coffer" kbs --url http://127.0.0.1:9 --admin-key "$work/admin.key" "$@" 2> "$work/err"
  rc=$?
  set -e
  if [[ $rc -ne 2 ]] || ! grep -qF "$want" "$work/err"; then
    echo "$*: expected exit 2 and '$want', got exit $rc:" >&2
    cat "$work/err" >&2
    exit 1
  fi
}
printf 'package policy\n' > "$work/p.rego"
expect_usage 'needs --file FILE or --builtin' set-attestation-policy
expect_usage 'not in {default,development}' set-attestation-policy --builtin production
expect_usage 'excludes' set-attestation-policy --builtin development --file "$work/p.rego"
echo "kbs_cli_errors: ok"
