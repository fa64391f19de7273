#!/usr/bin/env bash
# coffer-trustee refuses a bad log level at start, from the configuration or --log-level, with a
# message naming the key (issue 12 item 8), through the real executable.
set -euo pipefail
trustee=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

printf 'log_level = "verbose"\n[http_server]\ninsecure_http = true\n' > "$dir/bad.toml"
status=0
"$trustee" --config "$dir/bad.toml" > "$dir/out" 2> "$dir/err" || status=$?
[[ $status -eq 2 ]] || fail "bad log_level: exit $status, expected 2"
grep -q "'log_level' must be one of trace, debug, info, warn, error, critical, off (not 'verbose')" \
  "$dir/err" || fail "bad log_level message: $(cat "$dir/err")"

printf '[http_server]\ninsecure_http = true\n' > "$dir/ok.toml"
status=0
"$trustee" --config "$dir/ok.toml" --log-level loud > "$dir/out" 2> "$dir/err" || status=$?
[[ $status -eq 2 ]] || fail "bad --log-level: exit $status, expected 2"
grep -q -- "--log-level must be one of" "$dir/err" || fail "bad --log-level message: $(cat "$dir/err")"

printf '[http_server]\ninsecure_http = true\n[attestation_service]\ndefault_policy_id = "a b"\n' \
  > "$dir/id.toml"
status=0
"$trustee" --config "$dir/id.toml" > "$dir/out" 2> "$dir/err" || status=$?
[[ $status -eq 2 ]] || fail "bad default_policy_id: exit $status, expected 2"
grep -q "'attestation_service.default_policy_id' must be" "$dir/err" ||
  fail "bad default_policy_id message: $(cat "$dir/err")"
echo "trustee start-up checks: ok"
