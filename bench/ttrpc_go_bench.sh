#!/usr/bin/env bash
# Health round trips against one coffer-agent (sample TEE) from containerd's Go ttrpc client
# (`ttrpc-go bench`, apps/test/ttrpc_go_interop/main.go, Debian's Go ttrpc 1.1.1 in GOPATH mode)
# and from coffer's C++ client (bench/agent_health_bench), alternating, RUNS times each, N calls a
# run on one connection. Each line: p50/p90/p99/max of one run.
# Usage: bench/ttrpc_go_bench.sh [BUILD_DIR] [N] [RUNS]
set -euo pipefail
BUILD=$(cd "${1:-build/ci}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
N=${2:-5000}
RUNS=${3:-3}
work=$(mktemp -d /tmp/coffer-ttrpc-go-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; wait "$p" 2> /dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
(cd "$HERE/../apps/test/ttrpc_go_interop" &&
  env GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$BUILD/go-cache" GOFLAGS= GOPROXY=off \
    go build -o "$work/ttrpc-go" main.go)
"$BUILD/apps/coffer-agent" --socket "$work/agent.sock" --tee sample --state-dir "$work/state" \
  > "$work/agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 200); do
  [[ -S "$work/agent.sock" ]] && break
  sleep 0.05
done
for _ in $(seq 1 "$RUNS"); do
  "$work/ttrpc-go" bench "$work/agent.sock" "$N"
  "$BUILD/bench/agent_health_bench" "$work/agent.sock" "$N"
done
