#!/usr/bin/env bash
# coffer's ttrpc (src/net/ttrpc) against containerd's Go ttrpc 1.1.1 (Debian's
# golang-github-containerd-ttrpc-dev), both directions, offline:
#  1. apps/test/ttrpc_go_interop/main.go is built in GOPATH mode against Debian's Go sources;
#  2. its Go ttrpc client drives a real coffer-agent (sample TEE, no init-data): Health, a
#     NOT_FOUND and UNIMPLEMENTED status, deadlines sent as timeout_nano (passed, negative, far),
#     metadata, 16 calls in flight on one connection, a 5 MiB request (RESOURCE_EXHAUSTED);
#  3. its Go ttrpc server answers `coffer agent-ctl`: a payload, a NOT_FOUND status, a deadline the
#     Go handler sees, a 1 MiB response, UNIMPLEMENTED; and ttrpc_interop_client (our client on
#     one connection): 16 calls in flight answered out of order, 200 calls, metadata, a 5 MiB
#     response (RESOURCE_EXHAUSTED).
# Missing Go or Debian's ttrpc sources is a failure (scripts/install-deps installs them).
# Usage: ttrpc_go_interop.sh BIN_DIR (holding coffer, coffer-agent, ttrpc_interop_client)
#        [GOCACHE dir]
set -euo pipefail
BIN=$(cd "$1" && pwd)
GOCACHE_DIR=${2:-}
GOSRC=/usr/share/gocode
fail() { echo "ttrpc_go_interop: $*" >&2; exit 1; }

command -v go >/dev/null ||
  fail "'go' not found: install golang-go (scripts/install-deps installs it)"
[[ -f $GOSRC/src/github.com/containerd/ttrpc/client.go ]] ||
  fail "containerd's Go ttrpc is not in $GOSRC: install golang-github-containerd-ttrpc-dev (scripts/install-deps)"
src=$(cd "$(dirname "$0")/ttrpc_go_interop" && pwd)
if [[ -n $GOCACHE_DIR ]]; then GOCACHE_DIR=$(mkdir -p "$GOCACHE_DIR" && cd "$GOCACHE_DIR" && pwd); fi

work=$(mktemp -d /tmp/coffer-ttrpc-go.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
[[ -n $GOCACHE_DIR ]] || GOCACHE_DIR=$work/gocache

(cd "$src" && env GO111MODULE=off GOPATH=$GOSRC GOCACHE="$GOCACHE_DIR" GOFLAGS= GOPROXY=off \
   go build -o "$work/ttrpc-go" main.go) || fail "building the Go program failed"

wait_socket() {  # PATH PID LOG
  for _ in $(seq 1 200); do
    [[ -S $1 ]] && return 0
    kill -0 "$2" 2>/dev/null || { cat "$3" >&2; fail "$3: the server exited"; }
    sleep 0.05
  done
  cat "$3" >&2
  fail "no socket at $1"
}

# --- Go client -> coffer-agent ------------------------------------------------------------------
"$BIN/coffer-agent" --socket "$work/agent.sock" --tee sample --state-dir "$work/state" \
  > agent.log 2>&1 &
pids+=($!)
wait_socket "$work/agent.sock" "${pids[-1]}" agent.log
if ! ./ttrpc-go client "$work/agent.sock"; then
  echo "--- coffer-agent log" >&2
  cat agent.log >&2
  fail "the Go ttrpc client's checks against coffer-agent failed"
fi

# --- coffer agent-ctl -> Go server --------------------------------------------------------------
./ttrpc-go server "$work/go.sock" > go-server.log 2>&1 &
pids+=($!)
wait_socket "$work/go.sock" "${pids[-1]}" go-server.log
ctl() { "$BIN/coffer" agent-ctl --socket "$work/go.sock" "$@"; }
check() { echo "ok   agent-ctl: $*"; }
# run CMD...: sets out, err, rc
run() {
  set +e
  "$@" > out.txt 2> err.txt
  rc=$?
  set -e
  out=$(cat out.txt)
  err=$(cat err.txt)
}

run ctl health
[[ $rc -eq 0 && $out == '{"status":"SERVING"}' ]] || fail "health (rc $rc): $out $err"
check "health answers SERVING (a StringValue from Go read as HealthResponse)"

run ctl state x-17
[[ $rc -eq 1 &&
   $err == '{"code":5,"message":"container_not_found: no container '"'x-17'"'","status":"NOT_FOUND"}' ]] ||
  fail "state of an unknown container (rc $rc): $out $err"
check "state: Go's NOT_FOUND status with its message, exit 1"

run ctl --timeout 0.4 wait c1
[[ $rc -eq 1 && $err == *'"code":4'* && $err == *DEADLINE_EXCEEDED* ]] ||
  fail "wait with a 0.4 s timeout (rc $rc): $out $err"
# the Go handler saw the deadline sent as timeout_nano (0.4 s, less the time on the way)
grep -Eq '^WaitProcess "c1" deadline_ms=(3[0-9]{2}|400)$' go-server.log ||
  fail "the Go server did not see a 0.4 s deadline: $(cat go-server.log)"
check "wait --timeout 0.4: DEADLINE_EXCEEDED, the Go handler saw the deadline"

run ctl --timeout 0 health
[[ $rc -eq 0 ]] || fail "health without a deadline (rc $rc): $err"
[[ $(grep -c '^Health deadline=false$' go-server.log) -eq 1 ]] ||
  fail "--timeout 0 still sent a deadline: $(cat go-server.log)"
check "--timeout 0 sends no deadline"

want=$(sed -n 's/^read-output sha256 //p' go-server.log)
got=$(ctl read-output c1 --raw | sha256sum | cut -d' ' -f1)
[[ -n $want && $got == "$want" ]] || fail "read-output: 1 MiB from Go, sha256 $got, want $want"
check "read-output: a 1 MiB response from Go arrives intact"

run ctl list
[[ $rc -eq 1 && $err == '{"code":12,"message":"method ListContainers","status":"UNIMPLEMENTED"}' ]] ||
  fail "a method the Go server lacks (rc $rc): $out $err"
check "list: Go's UNIMPLEMENTED, exit 1"

# our client on one connection: calls in flight answered out of order, many calls, metadata
"$BIN/ttrpc_interop_client" "$work/go.sock" ||
  fail "the C++ ttrpc client's checks against the Go server failed"

echo "ttrpc_go_interop: ok"
