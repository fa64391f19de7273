#!/usr/bin/env bash
# coffer-agent as a plain process, driven through `coffer agent-ctl`: an image built from Debian's
# busybox-static (`coffer image build`) is pushed to a loopback docker-registry; the agent pulls it, creates a
# container in a sandbox, starts it with crun; its output and exit code come back through the
# API. The built-in agent policy refuses exec and an entrypoint override.
# This runs the sample TEE without a KBS (plaintext image, no attestation); agent_attested.sh runs
# the attested flow (sim TEE, trustee, encrypted and signed image, secrets, refusals).
# Usage: agent_smoke.sh BIN_DIR (holding coffer and coffer-agent)
set -euo pipefail
BIN=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/coffer-agent-smoke.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
fail() { echo "agent_smoke: $*" >&2; exit 1; }

# shellcheck source=trustee_env.sh
source "$HERE/trustee_env.sh"
start_registry
port=${REGISTRY##*:}

# the image: busybox-static, entrypoint prints a line and exits 7
busybox_rootfs B sh echo cat
"$BIN/coffer" image build -q --insecure-registry "127.0.0.1:$port" --from-dir B \
  --entrypoint /bin/sh --cmd=-c --cmd 'echo hello from the enclave; exit 7' \
  "docker://127.0.0.1:$port/app:v1" >/dev/null

cat > init.toml <<TOML
version = "0.1.0"
algorithm = "sha384"
[data]
"cdh.toml" = '''
[image]
insecure_registries = ["127.0.0.1:$port"]
'''
TOML
"$BIN/coffer-agent" --socket "$work/agent.sock" --tee sample --init-data init.toml \
  --state-dir "$work/state" > agent.log 2>&1 &
pids+=($!)
for _ in $(seq 1 200); do
  [[ -S "$work/agent.sock" ]] && break
  kill -0 "${pids[-1]}" 2>/dev/null || { cat agent.log >&2; fail "coffer-agent exited"; }
  sleep 0.05
done
ctl() { "$BIN/coffer" agent-ctl --socket "$work/agent.sock" "$@"; }
image="docker://127.0.0.1:$port/app:v1"

ctl health | grep -q SERVING || fail "health"
ctl guest-details | grep -q '"config_from_init_data":true' || fail "guest-details"
ctl pull "$image" | grep -q '"manifest_digest":"sha256:' || fail "pull"
ctl create-sandbox s1 >/dev/null
ctl create-container c1 --sandbox s1 --image "$image" >/dev/null
ctl start c1 >/dev/null
exit_json=$(ctl --timeout 0 wait c1)
[[ "$exit_json" == *'"exit_code":7'* ]] || fail "wait: $exit_json"
out=$(ctl read-output c1 --raw)
[[ "$out" == "hello from the enclave" ]] || fail "output: '$out'"

# the built-in policy: exec and an entrypoint override are refused (exit 1, PERMISSION_DENIED)
set +e
denied=$(ctl exec c1 -- /bin/echo x 2>&1); rc=$?
set -e
[[ $rc -eq 1 && "$denied" == *PERMISSION_DENIED* && "$denied" == *ExecProcessRequest* ]] ||
  fail "exec not denied (rc $rc): $denied"
set +e
denied=$(ctl create-container c2 --sandbox s1 --image "$image" --entrypoint /bin/sh 2>&1); rc=$?
set -e
[[ $rc -eq 1 && "$denied" == *PERMISSION_DENIED* && "$denied" == *entrypoint* ]] ||
  fail "entrypoint override not denied (rc $rc): $denied"
ctl state c2 >/dev/null 2>&1 && fail "a denied container exists"

ctl remove c1 >/dev/null
[[ "$(ctl list)" == '{"containers":[]}' ]] || fail "list after remove: $(ctl list)"
ctl remove-sandbox s1 >/dev/null
echo "agent_smoke: ok"
