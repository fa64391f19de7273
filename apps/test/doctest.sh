#!/usr/bin/env bash
# The documentation test: runs, in order and in one shell (bash -euo pipefail), every ```sh block
# of a Markdown page that directly follows a line `<!-- doctest -->`, in a fresh directory, with
# `coffer` on PATH and the environment the page assumes: an HTTPS coffer-trustee with a private
# CA (COFFER_KBS_URL, COFFER_KBS_CA_FILE, COFFER_KBS_ADMIN_KEY, development attestation policy),
# the simulated TEE's PKI it trusts (SIM) and a loopback docker-registry (REGISTRY).
# A failing command fails the test with the block it came from. Usage: doctest.sh PAGE.md BIN_DIR
set -euo pipefail
page=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
BIN=$(cd "$2" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/coffer-doctest.XXXXXX)
pids=()
doc_pid=""
cleanup() {
  # the page's own background jobs run in the page's process group
  [[ -n "$doc_pid" ]] && kill -- "-$doc_pid" 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=apps/test/trustee_env.sh
. "$here/trustee_env.sh"

# The marked blocks, each preceded by an echo naming its line in the page.
awk -v page="$(basename "$page")" '
  /^<!-- doctest -->$/ { armed = 1; next }
  armed && /^```sh$/ { inblock = 1; armed = 0; print "echo \"--- " page ":" NR+1 "\" >&2"; next }
  inblock && /^```$/ { inblock = 0; next }
  inblock { print; next }
  { armed = 0 }
' "$page" > "$work/page.sh"
blocks=$(grep -c '^echo "--- ' "$work/page.sh" || true)
[[ $blocks -gt 0 ]] || { echo "no <!-- doctest --> blocks in $page" >&2; exit 1; }

start_https_trustee
start_registry
mkdir "$work/doc"
cd "$work/doc"
export PATH="$BIN:$PATH"
setsid bash -euo pipefail "$work/page.sh" &
doc_pid=$!
if ! wait "$doc_pid"; then
  echo "doctest: $(basename "$page") failed (the last '---' line above names the block)" >&2
  exit 1
fi
echo "doctest: $(basename "$page"): $blocks blocks ok"
