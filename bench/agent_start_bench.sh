#!/usr/bin/env bash
# coffer-agent: create -> first output byte of a container from a cached image, and the agent's
# idle RSS. Starts a loopback docker-registry with a busybox-static image whose entrypoint prints
# one line, the simulated TEE's quote service (so each create is measured into RTMR3 as in
# production) and coffer-agent; pulls the image once, then runs agent_start_bench for ROUNDS
# containers. Prints the agent's RSS after start (idle), after the pull, and after the rounds.
# Usage: bench/agent_start_bench.sh [BUILD_DIR] [ROUNDS]
set -euo pipefail
BUILD=$(cd "${1:-build/ci}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ROUNDS=${2:-100}
BIN=$BUILD/apps
work=$(mktemp -d /tmp/coffer-agent-start-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; wait "$p" 2> /dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
# shellcheck source=../apps/test/trustee_env.sh
source "$HERE/../apps/test/trustee_env.sh"
start_registry

umoci init --layout L > /dev/null
umoci new --image L:v1
umoci unpack --rootless --image L:v1 B > /dev/null
mkdir -p B/rootfs/bin
cp /bin/busybox B/rootfs/bin/
ln -s busybox B/rootfs/bin/echo
umoci repack --image L:v1 B
umoci config --image L:v1 --config.entrypoint /bin/echo --config.cmd 'ready'
"$BIN/coffer" image copy --insecure-policy -q oci:L:v1 "docker://$REGISTRY/bench/app:v1" \
  --tls-verify=false > /dev/null
image="docker://$REGISTRY/bench/app:v1"

cat > init.toml <<TOML
version = "0.1.0"
algorithm = "sha384"
[data]
"cdh.toml" = '''
[image]
insecure_registries = ["$REGISTRY"]
'''
TOML
"$BIN/coffer" sim init --dir sim --rsa-bits 2048 > /dev/null
printf 'bench rootfs manifest\n' > rootfs.manifest
"$BIN/coffer" sim quote-service --dir sim --socket qs.sock --agent "$BIN/coffer-agent" \
  --rootfs-manifest rootfs.manifest --init-data init.toml 2> qs.log &
pids+=($!)
while [[ ! -S qs.sock ]]; do
  kill -0 "${pids[-1]}" 2> /dev/null || { cat qs.log >&2; exit 1; }
  sleep 0.05
done
"$BIN/coffer-agent" --socket agent.sock --tee sim-tdx --quote-service qs.sock \
  --init-data init.toml --state-dir state --log-level warn > agent.log 2>&1 &
pids+=($!)
agent=$!
while [[ ! -S agent.sock ]]; do
  kill -0 "$agent" 2> /dev/null || { cat agent.log >&2; exit 1; }
  sleep 0.05
done
sleep 1  # let start-up allocations settle before reading the idle RSS
rss() { awk '/^VmRSS|^VmHWM/ {printf "%s %d KiB  ", $1, $2}' "/proc/$agent/status"; echo; }
echo "agent idle:        $(rss)"
"$BIN/coffer" agent-ctl --socket agent.sock --timeout 120 pull "$image" > /dev/null
echo "after the pull:    $(rss)"
"$BUILD/bench/agent_start_bench" agent.sock "$image" "$ROUNDS"
echo "after $ROUNDS rounds: $(rss)"
