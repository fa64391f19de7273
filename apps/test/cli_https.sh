#!/usr/bin/env bash
# `coffer kbs` against a real coffer-trustee over HTTPS with a test CA: the exit codes of
# docs/cli.md and errors that say what to do (unknown CA, http:// to the HTTPS port, a missing CA
# file, a URL without scheme or with a trailing '/'), and --version on both executables.
# Usage: cli_https.sh BIN_DIR (holding coffer and coffer-trustee)
set -euo pipefail
bin=$1
coffer="$bin/coffer"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
failures=0

# expect EXIT-CODE TEXT... -- COMMAND...: runs COMMAND, checks its exit code and that its output
# (stdout and stderr) holds every TEXT.
expect() {
  local want=$1; shift
  local texts=()
  while [[ $1 != "--" ]]; do texts+=("$1"); shift; done
  shift
  set +e
  "$@" > "$work/out" 2>&1
  local rc=$?
  set -e
  local ok=1
  [[ $rc -eq $want ]] || ok=0
  for t in "${texts[@]}"; do grep -qF -- "$t" "$work/out" || ok=0; done
  if [[ $ok -eq 0 ]]; then
    echo "FAIL: $* (want exit $want and: ${texts[*]}), got exit $rc:" >&2
    cat "$work/out" >&2
    failures=$((failures + 1))
  fi
}

# --version on every executable
for exe in coffer coffer-trustee; do
  out=$("$bin/$exe" --version 2>&1) || true
  if ! [[ "$out" =~ ^$exe\ [0-9]+\.[0-9]+\.[0-9]+(\ \(git\ [^\)]+\))?$ ]]; then
    echo "FAIL: $exe --version printed '$out'" >&2
    failures=$((failures + 1))
  fi
done

# An HTTPS coffer-trustee with a private test CA (apps/test/trustee_env.sh), the sample TEE too.
BIN=$bin
# shellcheck source=trustee_env.sh
source "$(dirname "$0")/trustee_env.sh"
TRUSTEE_SAMPLE=1 start_https_trustee
# the commands below name the KBS on their command line
unset COFFER_KBS_URL COFFER_KBS_CA_FILE COFFER_KBS_ADMIN_KEY
url=$(sed -n 's|^coffer-trustee listening on ||p' "$work/trustee/out" | head -n1)
port=${url##*:}
cp "$work/trustee/ca.pem" "$work/ca.pem"
cp "$work/trustee/admin.key" "$work/admin.key"
admin=(--admin-key "$work/admin.key")

# The CA is unknown: unreachable (3), and the hint names the KBS CA option, for the admin API
# and for the attestation client alike.
expect 3 tls_untrusted "hint: the KBS's certificate is not trusted" "--kbs-ca-file FILE" "--kbs-insecure" -- \
  "$coffer" kbs --url "https://localhost:$port" "${admin[@]}" get-resource-policy
expect 3 tls_untrusted "--kbs-ca-file FILE" -- \
  "$coffer" kbs --url "https://localhost:$port" attest --tee sample
# With the CA, and a trailing '/' on the URL (it used to make admin paths start with //).
expect 0 "updated to the built-in development policy" -- \
  "$coffer" kbs --url "https://localhost:$port/" --ca-file "$work/ca.pem" "${admin[@]}" \
  set-attestation-policy --builtin development
expect 0 "package policy" -- \
  "$coffer" kbs --url "https://localhost:$port//" --ca-file "$work/ca.pem" "${admin[@]}" \
  get-attestation-policy
# --insecure skips verification (development only).
expect 0 "package policy" -- \
  "$coffer" kbs --url "https://localhost:$port" --insecure "${admin[@]}" get-attestation-policy
# Not found on the KBS: 6.
expect 6 "KBS answered 404" -- \
  "$coffer" kbs --url "https://localhost:$port" --ca-file "$work/ca.pem" "${admin[@]}" \
  get-reference-value no.such.name
# http:// to the HTTPS port: the server drops the connection; the hint says https://.
expect 3 empty_reply "use an https:// URL" -- \
  "$coffer" kbs --url "http://localhost:$port" "${admin[@]}" get-resource-policy
# A missing CA file is a usage error naming the file, before anything is sent.
expect 2 "ca-file" "$work/missing-ca.pem" "does not exist" -- \
  "$coffer" kbs --url "https://localhost:$port" --ca-file "$work/missing-ca.pem" "${admin[@]}" \
  get-resource-policy
# A URL needs a scheme.
expect 2 "needs a scheme" -- \
  "$coffer" kbs --url "localhost:$port" "${admin[@]}" get-resource-policy
# A command-line error is a usage error (2), not CLI11's 105-109.
expect 2 "--no-such-option" -- "$coffer" kbs --no-such-option get-resource-policy
expect 2 "A subcommand is required" -- "$coffer" kbs

# A binary resource is not written to a terminal (escape sequences would reach it) unless asked.
kbs=(--url "https://localhost:$port" --ca-file "$work/ca.pem" "${admin[@]}")
"$coffer" kbs "${kbs[@]}" set-attestation-policy --builtin development > /dev/null
"$coffer" kbs "${kbs[@]}" set-reference-value sample.svn 1 > /dev/null
"$coffer" kbs "${kbs[@]}" set-resource-policy --allow-affirming > /dev/null
printf '\033]0;owned\007\377\000' > "$work/secret.bin"
"$coffer" kbs "${kbs[@]}" set-resource --path default/key/bin --file "$work/secret.bin" > /dev/null
on_tty() {  # runs the command with stdout and stderr on a pseudo-terminal
  /usr/bin/python3 -c 'import os, pty, sys; sys.exit(os.waitstatus_to_exitcode(pty.spawn(sys.argv[1:])))' "$@"
}
expect 2 "the resource is binary and stdout is a terminal: pass --out FILE" -- \
  on_tty "$coffer" kbs "${kbs[@]}" get-resource --tee sample --path default/key/bin
expect 0 -- "$coffer" kbs "${kbs[@]}" get-resource --tee sample --path default/key/bin \
  --out "$work/got.bin"
cmp -s "$work/secret.bin" "$work/got.bin" || { echo "FAIL: resource bytes differ" >&2; failures=$((failures + 1)); }

if [[ $failures -ne 0 ]]; then
  echo "cli_https: $failures failure(s)" >&2
  exit 1
fi
echo "cli_https: ok"
