#!/usr/bin/env bash
# `coffer run` through real executables: coffer with the process enclave (an enclave image built
# from the tree's coffer-agent with `coffer enclave build`; sim-tdx and sim-snp), a busybox image
# (umoci) on a loopback docker-registry. Output streaming, exit codes, stdin, signals, --tty,
# --detach + ps/logs/stop/rm, a SIGKILLed `coffer run` and supervisor, refusals, a changed
# enclave image refused before launch.
# Usage: run_cli.sh BIN_DIR (holding coffer and coffer-agent)
set -euo pipefail
BIN=$(cd "$1" && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/coffer-run-cli.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  [[ -n "${RUN_CLI_KEEP:-}" ]] && { echo "kept $work"; return; }
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
fail() { echo "run_cli: FAIL: $*" >&2; exit 1; }
# nothing mounted under the work directory, no process rooted in it (a container) or naming it
# The host pids of the enclaves' first processes (coffer-agent) that FILEs' progress lines name;
# each enclave is a PID namespace, so its containers end with it.
agent_pids() { sed -n 's/.*enclave up: agent pid \([0-9]*\),.*/\1/p' "$@" 2>/dev/null; }
assert_enclave_gone() {  # WHAT PID...
  local what=$1 p
  shift
  for p in "$@"; do
    for _ in $(seq 1 100); do [[ -d /proc/$p ]] || break; sleep 0.05; done
    [[ -d /proc/$p ]] && fail "$what: the enclave's agent (pid $p) is still running"
  done
  return 0
}
assert_nothing_left() {
  local what=$1
  for _ in $(seq 1 100); do
    pgrep -f "$work/rundir" >/dev/null || break
    sleep 0.05
  done
  pgrep -f "$work/rundir" >/dev/null && fail "$what: processes left: $(pgrep -af "$work/rundir")"
  grep -q " $work/" /proc/self/mountinfo && fail "$what: mounts left: $(grep " $work/" /proc/self/mountinfo)"
  for r in /proc/[0-9]*/root; do
    [[ "$(readlink "$r" 2>/dev/null)" == "$work"/* ]] && fail "$what: a container process is left: $r"
  done
  return 0
}
ok() { echo "run_cli: ok: $*"; }
C="$BIN/coffer"
export COFFER_RUN_DIR="$work/rundir"

# shellcheck source=trustee_env.sh
source "$SRC/apps/test/trustee_env.sh"
start_registry
port=${REGISTRY##*:}

# the image: busybox-static, no entrypoint, cmd prints a line
busybox_rootfs B sh echo cat sleep tty stty ls
"$C" image build -q --insecure-registry "$REGISTRY" --from-dir B --cmd /bin/sh --cmd=-c \
  --cmd 'echo hello from the enclave; echo to stderr >&2' "docker://$REGISTRY/app:v1" > /dev/null
image="docker://127.0.0.1:$port/app:v1"
"$C" sim init --dir sim --rsa-bits 2048 >/dev/null
"$C" enclave build --agent "$BIN/coffer-agent" --out enclave > /dev/null
export COFFER_ENCLAVE_IMAGE=$work/enclave

# an agent policy allowing exactly the overrides used below (the built-in policy's rules)
sig_cmd='trap "echo got TERM; exit 143" TERM; echo ready; sleep 60 & wait'
stubborn_cmd='trap "echo got INT" INT; echo ready; while true; do sleep 60 & wait; done'
escape_cmd='ls -d /work /etc/shadow /usr/bin/coffer-agent 2>&1; echo pids: $(ls -d /proc/[0-9]*)'
/usr/bin/python3 - "$SRC/src/agent/default_policy.cpp" "$sig_cmd" "$stubborn_cmd" "$escape_cmd" > policy.rego <<'PY'
import json, sys
src = open(sys.argv[1]).read()
rego = src.split('R"rego(', 1)[1].split(')rego"', 1)[0]
cmds = [["sh", "-c", "exit 7"], ["cat"], ["sh", "-c", sys.argv[4]], ["sh", "-c", sys.argv[2]],
        ["sh", "-c", "tty; stty size; echo $GREETING"], ["sh", "-c", "echo detached; sleep 60"],
        ["sh", "-c", sys.argv[3]]]
rego = rego.replace('"allowed_commands": [],', '"allowed_commands": %s,' % json.dumps(cmds))
rego = rego.replace('"allowed_env_names": [],', '"allowed_env_names": ["GREETING"],')
print(rego, end="")
PY
common=(--tee sim-tdx --enclave process --sim-dir sim --trustee http://127.0.0.1:9
  --insecure-registry "127.0.0.1:$port")
run() { "$C" run -q "${common[@]}" --agent-policy policy.rego "$@"; }
# in the background: exec, so that $! is coffer run itself
run_bg() { exec "$C" run -q "${common[@]}" --agent-policy policy.rego "$@"; }

# 0. an enclave image with one changed byte in a library is refused before anything starts
cp -a enclave changed
lib=$(find changed/rootfs -name 'libc.so*' -type f | head -n1)
[[ -n "$lib" ]] || fail "no libc in the enclave image"
printf '\1' | dd of="$lib" bs=1 seek=4096 conv=notrunc status=none
set +e
msg=$(COFFER_ENCLAVE_IMAGE=$work/changed "$C" run -q "${common[@]}" "$image" 2>&1); rc=$?
set -e
[[ $rc -ne 0 && "$msg" == *"launching the enclave: "*enclave_image_digest_mismatch*libc* ]] ||
  fail "a changed enclave image (rc $rc): $msg"
[[ -z "$(ls -A rundir 2>/dev/null)" ]] || fail "a refused launch left $(ls rundir)"
ok "a changed library in the enclave image is refused before launch"

# 1. output streamed (stdout and stderr apart), exit 0
out=$(run "$image" 2> err.txt) || fail "plain run: $(cat err.txt)"
[[ "$out" == "hello from the enclave" ]] || fail "stdout: '$out'"
grep -qx 'to stderr' err.txt || fail "stderr: $(cat err.txt)"
# progress: plain one-line steps on a non-terminal stderr, nothing with -q
"$C" run "${common[@]}" "$image" > /dev/null 2> progress.txt || fail "progress run: $(cat progress.txt)"
grep -q '^coffer run: enclave up: agent pid [0-9]*, tee tdx, init-data [0-9a-f]\{16\}\.\.\., agent policy built-in ([0-9.]* s)$' progress.txt &&
  grep -q "^coffer run: pulled $image sha256:[0-9a-f]\{64\} ([0-9.]* s)$" progress.txt &&
  grep -q '^coffer run: created container [0-9a-f]\{12\} ' progress.txt &&
  grep -q '^coffer run: started ' progress.txt || fail "progress: $(cat progress.txt)"
[[ "$(grep -c . err.txt)" == 1 ]] || fail "-q printed progress: $(cat err.txt)"
ok "output"

# per-layer progress: a pull kept in flight by a proxy that sends blobs at 4 MiB/s (a 6 MiB
# layer, about 1.5 s); on a non-terminal stderr each layer seen gets one plain line
mkdir -p big/bin
cp -a B/bin/. big/bin/
head -c $((6 * 1024 * 1024)) /dev/urandom > big/noise
"$C" image build -q --insecure-registry "$REGISTRY" --from-dir big --cmd /bin/sh --cmd=-c \
  --cmd 'echo big ran' "docker://$REGISTRY/big:v1" > /dev/null
/usr/bin/python3 "$SRC/apps/test/slow_registry.py" "$REGISTRY" $((4 * 1024 * 1024)) > proxy.out &
pids+=($!)
slow=$(wait_for_line proxy.out "listening on " "${pids[-1]}")
out=$("$C" run "${common[@]}" --insecure-registry "$slow" "docker://$slow/big:v1" 2> progress.txt) ||
  fail "slow pull: $(cat progress.txt)"
[[ "$out" == "big ran" ]] || fail "slow pull output: '$out'"
grep -q '^coffer run: pulling layer 1/1: ' progress.txt ||
  fail "no per-layer progress line: $(cat progress.txt)"
ok "per-layer pull progress ($(grep -m1 '^coffer run: pulling layer' progress.txt | cut -c13-))"

# the same with a simulated SEV-SNP enclave (init-data digest sha256 in HOST_DATA)
out=$("$C" run -q --tee sim-snp --sim-dir sim --trustee http://127.0.0.1:9 \
  --insecure-registry "127.0.0.1:$port" "$image" 2> err.txt) || fail "sim-snp run: $(cat err.txt)"
[[ "$out" == "hello from the enclave" ]] || fail "sim-snp stdout: '$out'"
ok "sim-snp"

# 2. exit code propagated (a command override the init-data policy allows)
set +e; run "$image" -- sh -c 'exit 7' 2>err.txt; rc=$?; set -e
[[ $rc -eq 7 ]] || fail "exit code $rc: $(cat err.txt)"
ok "exit code 7"

# two enclaves at once
run_bg "$image" > two-a.out 2> two-a.err &
a=$!
run_bg "$image" -- sh -c 'exit 7' > two-b.out 2> two-b.err &
b=$!
set +e; wait $a; rca=$?; wait $b; rcb=$?; set -e
[[ $rca -eq 0 && $rcb -eq 7 && "$(cat two-a.out)" == "hello from the enclave" ]] ||
  fail "two at once: $rca $rcb $(cat two-a.err two-b.err)"
ok "two enclaves at once"

# a container sees neither host paths nor the enclave's files, and no process but its own: the
# agent is not even there to ptrace (the enclave's seccomp filter denies ptrace too)
out=$(run "$image" -- sh -c "$escape_cmd" 2>&1) || true
[[ "$out" == *"/work: No such file or directory"* && "$out" == *"/etc/shadow: No such file"* &&
   "$out" == *"/usr/bin/coffer-agent: No such file"* && "$out" == *"pids: /proc/1 /proc/"[0-9]* &&
   $(grep -o '/proc/[0-9]*' <<< "$out" | wc -l) -le 3 ]] || fail "escape attempt: $out"
ok "a container sees no host path, no enclave file and no other process"

# 3. stdin piped through
out=$(echo hi | run "$image" -- cat 2>err.txt) || fail "stdin: $(cat err.txt)"
[[ "$out" == "hi" ]] || fail "stdin echoed '$out'"
head -c 300000 /dev/urandom | base64 > big.txt
run "$image" -- cat < big.txt > big.out 2>err.txt || fail "big stdin: $(cat err.txt)"
cmp -s big.txt big.out || fail "300 KB through stdin and stdout differ"
ok "stdin"

# 4. SIGTERM to coffer run reaches the container: 143
run_bg "$image" -- sh -c "$sig_cmd" > sig.out 2> sig.err &
rp=$!
for _ in $(seq 1 400); do grep -q ready sig.out 2>/dev/null && break; sleep 0.05; done
grep -q ready sig.out || fail "the signal container never started: $(cat sig.err)"
kill -TERM $rp
set +e; wait $rp; rc=$?; set -e
[[ $rc -eq 143 ]] || fail "SIGTERM: exit $rc: $(cat sig.err)"
grep -q 'got TERM' sig.out || fail "the container did not see SIGTERM: $(cat sig.out)"
ok "SIGTERM forwarded, 143"

# a container that ignores SIGINT: the first Ctrl-C is forwarded, the second tears down (130)
run_bg "$image" -- sh -c "$stubborn_cmd" > int.out 2> int.err &
rp=$!
for _ in $(seq 1 400); do grep -q ready int.out 2>/dev/null && break; sleep 0.05; done
grep -q ready int.out || fail "the stubborn container never started: $(cat int.err)"
kill -INT $rp
for _ in $(seq 1 400); do grep -q 'got INT' int.out 2>/dev/null && break; sleep 0.05; done
grep -q 'got INT' int.out || fail "the first SIGINT did not reach the container: $(cat int.out)"
kill -INT $rp
set +e; wait $rp; rc=$?; set -e
[[ $rc -eq 130 ]] || fail "second SIGINT: exit $rc: $(cat int.err)"
grep -q 'torn down after a second signal' int.err || fail "second SIGINT: $(cat int.err)"
assert_nothing_left "second SIGINT"
ok "first SIGINT forwarded, the second tears down (130)"

# 5. --tty through a pty: the container sees a terminal of the local size; the local terminal is
# restored afterwards
/usr/bin/python3 "$SRC/apps/test/pty_run.py" "$C" run -q "${common[@]}" --agent-policy policy.rego \
  --env GREETING=hello-tty --tty "$image" -- sh -c 'tty; stty size; echo $GREETING' > tty.out ||
  fail "tty: $(cat tty.out)"
grep -q '^/dev/pts/' tty.out || fail "no tty in the container: $(cat tty.out)"
grep -q '33 101' tty.out || fail "tty size not forwarded: $(cat tty.out)"
grep -q 'hello-tty' tty.out || fail "env not passed: $(cat tty.out)"
ok "--tty"

# 6. refusals: an override the policy does not list, an override under the built-in policy, an
# unknown image
set +e
msg=$(run "$image" -- sh -c 'echo not allowed' 2>&1); rc=$?
set -e
[[ $rc -eq 1 && "$msg" == *"creating the container"* && "$msg" == *policy_denied* ]] ||
  fail "override not denied (rc $rc): $msg"
set +e
msg=$("$C" run -q "${common[@]}" "$image" -- sh -c 'exit 7' 2>&1); rc=$?
set -e
[[ $rc -eq 1 && "$msg" == *"the built-in policy denies every override"* ]] ||
  fail "default policy override (rc $rc): $msg"
# a complete --init-data instead of generating one (COFFER_KBS_CA_FILE in the environment, as the
# KBS commands share it, does not clash with it); its policy.rego decides
"$C" run "${common[@]}" --agent-policy policy.rego --print-init-data > given-init-data.toml
out=$(COFFER_KBS_CA_FILE="$work/registry/config.yml" "$C" run -q --tee sim-tdx --sim-dir sim \
  --init-data given-init-data.toml "$image" -- sh -c 'exit 7' 2>&1) && rc=0 || rc=$?
[[ $rc -eq 7 ]] || fail "--init-data (rc $rc): $out"
set +e
msg=$("$C" run -q --tee sim-tdx --sim-dir sim --init-data given-init-data.toml \
  --trustee http://127.0.0.1:9 "$image" 2>&1); rc=$?
set -e
[[ $rc -eq 2 && "$msg" == *"--trustee excludes --init-data"* ]] || fail "--init-data with --trustee (rc $rc): $msg"
set +e
msg=$(run "docker://127.0.0.1:$port/nothing:v1" 2>&1); rc=$?
set -e
[[ $rc -eq 6 && "$msg" == *"pulling the image: the image does not exist: manifest_unknown"* ]] || fail "unknown image (rc $rc): $msg"
echo "  unknown image: $msg"
ok "refusals"

# nothing of those runs is left
[[ -z "$(ls -A rundir)" ]] || fail "run directory not empty: $(ls rundir)"
assert_nothing_left "foreground runs"
ok "nothing left after foreground runs"

# 7. --detach, ps, logs, stop, rm
id=$(run -d --name web "$image" -- sh -c 'echo detached; sleep 60' 2>err.txt) ||
  fail "detach: $(cat err.txt)"
[[ "$id" =~ ^[0-9a-f]{12}$ ]] || fail "detach printed '$id'"
"$C" ps | grep -q "^$id  web .* running" || fail "ps: $("$C" ps)"
for _ in $(seq 1 100); do "$C" logs web | grep -q detached && break; sleep 0.05; done
[[ "$("$C" logs web)" == detached ]] || fail "logs: $("$C" logs web)"
set +e; msg=$("$C" rm web 2>&1); rc=$?; set -e
[[ $rc -eq 5 && "$msg" == *"is running"* ]] || fail "rm of a running container (rc $rc): $msg"
timeout 30 "$C" logs -f web > follow.out &
fp=$!
"$C" stop -t 1 web >/dev/null   # sh ignores SIGTERM as pid 1: killed after 1 s
set +e; wait $fp; rc=$?; set -e
[[ $rc -eq 0 && "$(cat follow.out)" == detached ]] || fail "logs -f (rc $rc): $(cat follow.out)"
"$C" ps | grep -q "$id" && fail "stopped container still in ps"
"$C" ps -a | grep -q "^$id  web .* exited" || fail "ps -a: $("$C" ps -a)"
assert_nothing_left "stop"
"$C" rm web >/dev/null
[[ -z "$(ls -A rundir)" ]] || fail "rm left $(ls rundir)"
[[ "$(stat -c %a rundir)" == 700 ]] || fail "run directory mode $(stat -c %a rundir)"
ok "--detach, ps, logs, stop, rm"

# 8. a dead supervisor shows as dead; nothing of its enclave is left
id=$(run -d --name victim "$image" -- sh -c 'echo detached; sleep 60' 2>err.txt) ||
  fail "detach 2: $(cat err.txt)"
sup=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["supervisor_pid"])' \
  "rundir/$id/state.json")
victim_agent=$(agent_pids "rundir/$id/supervisor.log")
[[ -n "$victim_agent" ]] || fail "no agent pid in the supervisor's log: $(cat "rundir/$id/supervisor.log")"
kill -KILL "$sup"
for _ in $(seq 1 100); do kill -0 "$sup" 2>/dev/null || break; sleep 0.05; done
assert_enclave_gone "SIGKILLed supervisor" $victim_agent
"$C" ps -a | grep -q "^$id  victim .* dead" || fail "ps after SIGKILL: $("$C" ps -a)"
assert_nothing_left "SIGKILLed supervisor"
"$C" rm victim >/dev/null
ok "SIGKILLed supervisor: shown dead, nothing left"

# 9. a SIGKILLed foreground coffer run leaves no agent or quote service
(exec "$C" run "${common[@]}" --agent-policy policy.rego "$image" -- sh -c "$sig_cmd" > k.out 2> k.err) &
rp=$!
for _ in $(seq 1 400); do grep -q ready k.out 2>/dev/null && break; sleep 0.05; done
grep -q ready k.out || fail "the container never started: $(cat k.err)"
killed_agent=$(agent_pids k.err)
[[ -n "$killed_agent" ]] || fail "no agent pid in the progress: $(cat k.err)"
kill -KILL $rp; wait $rp 2>/dev/null || true
assert_enclave_gone "SIGKILLed coffer run" $killed_agent
assert_nothing_left "SIGKILLed coffer run"
ok "SIGKILLed coffer run: no agent or quote service left"

# 10. what a SIGKILLed launcher cannot remove itself (the enclave's socket directory with its dead
# agent.sock, the enclave root's empty mount point) goes with the next coffer run; its state and
# logs stay for ps -a / rm
killed_dir=$(ls -d rundir/*/ | head -n1)
[[ -n "$killed_dir" && -S "${killed_dir}enclave/agent/agent.sock" && -d "${killed_dir}enclave/root" ]] ||
  fail "expected the killed run's stale enclave files: $(find rundir)"
set +e; run "$image" -- sh -c "exit 7" > /dev/null 2> err.txt; rc=$?; set -e
[[ $rc -eq 7 ]] || fail "run after a killed run (rc $rc): $(cat err.txt)"
[[ ! -e "${killed_dir}enclave" ]] || fail "stale enclave files left: $(find "${killed_dir}enclave")"
[[ -f "${killed_dir}state.json" ]] || fail "the killed run's state went too"
killed_id=$(basename "$killed_dir")
"$C" ps -a | grep -q "^$killed_id .* dead" || fail "ps -a after the sweep: $("$C" ps -a)"
"$C" rm "$killed_id" > /dev/null
[[ -z "$(ls -A rundir)" ]] || fail "rm left $(find rundir)"
ok "stale enclave files of a SIGKILLed launcher removed by the next run"
echo "run_cli: ok"
