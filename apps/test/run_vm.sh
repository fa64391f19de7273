#!/usr/bin/env bash
# `coffer run --enclave vm` (docs/vm-enclave.md) through the real executables under QEMU TCG: a
# guest image built for sim-tdx, an HTTPS coffer-trustee trusting the simulated TEE, an image
# encrypted with a KBS key on a loopback registry. The guest reaches the host's loopback as
# 10.0.2.2 (QEMU user networking), so the trustee URL and the registry are given as 10.0.2.2
# (the trustee's certificate names it, trustee_env.sh); the reference values are `coffer sim
# measure` of the guest image's kernel, initramfs and command line with the init-data `coffer run`
# generates (`--print-init-data`).
#  - the guest attests, gets the image key, pulls and decrypts in guest memory, the container runs:
#    its line on stdout, its exit code is coffer run's;
#  - a guest image with one changed byte in the initramfs: "the trustee refused the image key";
#  - usage refusals and a guest image built for another TEE (no boot);
#  - while a container runs: ExecProcess denied by the agent policy; QEMU forwards no port and
#    listens on no TCP/UDP socket (the guest is reachable only through the agent API);
#  - SIGTERM to coffer run reaches the container (143); --detach, ps, logs, stop (the guest powers
#    off through its control port), rm; --tty;
#  - a SIGKILLed coffer run: its QEMU dies with it.
# Six VM boots. Usage: [RUN_VM_RUNS=N] run_vm.sh BIN_DIR (coffer, coffer-trustee, coffer-agent, coffer-guest-init)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=apps/test/trustee_env.sh
. "$here/trustee_env.sh"
begin_test run_vm "$1"

start_https_trustee
start_registry
cd "$work"
port=${REGISTRY##*:}
guest_registry=10.0.2.2:$port
guest_kbs=${COFFER_KBS_URL/127.0.0.1/10.0.2.2}

# the image: busybox-static printing a line and exiting 7, encrypted with a key in the trustee
busybox_layout
push_encrypted v1 'echo decrypted and running in the VM; exit 7' default/image-key/vm
image="docker://$guest_registry/enc:v1"
# a second one that runs until it is killed (the killed-CLI case below)
push_encrypted v2 'echo ready; exec sleep 120' default/image-key/vm2
# a third one that says when it gets SIGTERM (signals, --detach)
push_encrypted v3 'trap "echo got TERM; exit 143" TERM; echo ready; sleep 60 & wait' \
  default/image-key/vm3
push_encrypted v4 'tty; stty size' default/image-key/vm4

coffer guest-image build --agent "$BIN/coffer-agent" --init "$BIN/coffer-guest-init" \
  --tee sim-tdx --out guest > /dev/null
opts=(--tee sim-tdx --enclave vm --sim-dir "$SIM" --trustee "$guest_kbs"
      --kbs-ca-file "$COFFER_KBS_CA_FILE" --insecure-registry "$guest_registry"
      --require-encrypted)
"$BIN/coffer" run "${opts[@]}" --guest-image guest --print-init-data > init-data.toml
grep -q "^url = \"$guest_kbs\"" init-data.toml || fail "init-data: $(cat init-data.toml)"
coffer sim measure --kernel guest/vmlinuz --initrd guest/initrd --cmdline "$(cat guest/cmdline)" \
  --init-data init-data.toml --format rvps > rv.json
coffer kbs set-reference-values --file rv.json > /dev/null

# 1. the registered guest: key released, image decrypted in the guest, the container's line and
# exit code
# RUN_VM_RUNS=N repeats this run N times (the cold-start numbers of bench/README.md)
for _ in $(seq 1 "${RUN_VM_RUNS:-1}"); do
start_ns=$(date +%s%N)
set +e
out=$("$BIN/coffer" run --timings "${opts[@]}" --guest-image guest "$image" 2> err.txt); rc=$?
set -e
echo "  attested VM cold start, $(( ($(date +%s%N) - start_ns) / 1000000 )) ms in all:"
sed 's/^/    /' err.txt
[[ $rc -eq 7 ]] || fail "exit code $rc, output '$out': $(cat err.txt)"
[[ "$out" == "decrypted and running in the VM" ]] || fail "output: '$out' $(cat err.txt)"
# the CLI's connections to the agent (calls, pull progress, teardown) share the port through the
# launcher's multiplexer: no answer reaches the wrong connection, teardown is clean
grep -q "pulling layer 1/1" err.txt || fail "no pull progress: $(cat err.txt)"
grep -Eq "removing the|stopping the" err.txt && fail "teardown: $(cat err.txt)"
done
ok "attestation, key release, decryption and the container in the VM (exit code 7)"

# 2. one changed byte in the initramfs (offset 200000 is inside the guest's /bin/busybox, which
# the boot does not use: the guest comes up and attests): the measurement differs, the trustee
# refuses the key
cp -r guest tampered
printf 'X' | dd of=tampered/initrd bs=1 seek=200000 conv=notrunc status=none
cmp -s guest/initrd tampered/initrd && fail "the initramfs did not change"
set +e
msg=$("$BIN/coffer" run -q "${opts[@]}" --guest-image tampered "$image" 2>&1); rc=$?
set -e
echo "  changed initramfs: $msg"
[[ $rc -eq 1 && "$msg" == *"pulling the image: the trustee refused the image key"* ]] ||
  fail "changed initramfs (rc $rc): $msg"
ok "a guest image with one changed byte in the initramfs is refused the key"
# 3. usage: no guest image, the two-enclave TEE, an image built for another TEE, a loopback
# trustee or image (all before a boot)
refused() {  # EXPECTED_RC EXPECTED_TEXT ARGS...
  local want_rc=$1 want=$2; shift 2
  set +e
  msg=$("$BIN/coffer" run -q "$@" 2>&1); rc=$?
  set -e
  [[ $rc -eq $want_rc && "$msg" == *"$want"* ]] || fail "$* (rc $rc): $msg"
}
refused 2 "--enclave vm needs the guest image: --guest-image DIR" "${opts[@]}" "$image"
refused 2 "--tee must be sim-tdx or sim-snp" --tee sim-sgx --enclave vm --guest-image guest \
  --sim-dir "$SIM" --init-data init-data.toml --app-enclave-image guest "$image"
refused 1 "bad_guest_image: the guest image runs the agent with coffer.tee=sim-tdx, not sim-snp" \
  "${opts[@]/#sim-tdx/sim-snp}" --guest-image guest "$image"
refused 2 "--enclave vm: --trustee 'https://127.0.0.1:" --tee sim-tdx --enclave vm \
  --guest-image guest --sim-dir "$SIM" --trustee "$COFFER_KBS_URL" "$image"
refused 2 "--enclave vm: the image 'docker://127.0.0.1:" "${opts[@]}" --guest-image guest \
  "docker://$REGISTRY/enc:v1"
refused 2 "--accel is for --enclave vm only" --tee sim-tdx --accel tcg --sim-dir "$SIM" \
  --init-data init-data.toml "$image"
refused 2 "--accel: hvf not in {auto,tcg,kvm}" "${opts[@]}" --guest-image guest --accel hvf "$image"
ok "usage and TEE mismatch refused"
[[ -z "$(ls -A rundir)" ]] || fail "run directory not empty: $(ls rundir)"

# 4. the same signals and detached runs as the process enclave (two boots): SIGTERM to coffer run
# reaches the container in the VM (143); --detach, ps, logs, stop, rm; the guest powers off when
# told (its console says so) and nothing is left
run_bg() { exec "$BIN/coffer" run "${opts[@]}" --guest-image guest "$@"; }
run_bg "docker://$guest_registry/enc:v3" > sig.out 2> sig.err &
rp=$!
for _ in $(seq 1 600); do grep -q ready sig.out 2>/dev/null && break; sleep 0.05; done
grep -q ready sig.out || fail "the signal container never started: $(cat sig.err)"
kill -TERM $rp
set +e; wait $rp; rc=$?; set -e
[[ $rc -eq 143 ]] || fail "SIGTERM: exit $rc: $(cat sig.err)"
grep -q 'got TERM' sig.out || fail "the container in the VM did not see SIGTERM: $(cat sig.out)"
ok "SIGTERM forwarded into the VM, 143"
id=$("$BIN/coffer" run -d --name vmweb "${opts[@]}" --guest-image guest \
  "docker://$guest_registry/enc:v3" 2> det.err) || fail "detach: $(cat det.err)"
[[ "$id" =~ ^[0-9a-f]{12}$ ]] || fail "detach printed '$id'"
"$BIN/coffer" ps | grep -q "^$id  vmweb .* running" || fail "ps: $("$BIN/coffer" ps)"
for _ in $(seq 1 100); do "$BIN/coffer" logs vmweb | grep -q ready && break; sleep 0.05; done
[[ "$("$BIN/coffer" logs vmweb)" == ready ]] || fail "logs: $("$BIN/coffer" logs vmweb)"
qemu_pid=$(pgrep -f "qemu-system-x86_64.*rundir/$id/") || fail "no QEMU for $id"
"$BIN/coffer" stop -t 10 vmweb > /dev/null
"$BIN/coffer" ps -a | grep -q "^$id  vmweb .* exited (143)" || fail "ps -a: $("$BIN/coffer" ps -a)"
[[ "$("$BIN/coffer" logs vmweb)" == $'ready\ngot TERM' ]] || fail "logs: $("$BIN/coffer" logs vmweb)"
grep -q "the host asked for power-off" "rundir/$id/agent.log" ||
  fail "the guest was not powered off through its control port: $(tail -5 "rundir/$id/agent.log")"
[[ -d /proc/$qemu_pid ]] && fail "QEMU (pid $qemu_pid) outlived coffer stop"
"$BIN/coffer" rm vmweb > /dev/null
[[ -z "$(ls -A rundir)" ]] || fail "rm left $(ls rundir)"
ok "--detach, ps, logs, stop (SIGTERM in the VM, clean power-off), rm"

# --tty through a pty (one more boot): the container in the VM sees a terminal of the local size
/usr/bin/python3 "$here/pty_run.py" "$BIN/coffer" run -q "${opts[@]}" --guest-image guest --tty \
  "docker://$guest_registry/enc:v4" > tty.out || fail "tty: $(cat tty.out)"
grep -q '^/dev/pts/' tty.out || fail "no tty in the container: $(cat tty.out)"
grep -q '33 101' tty.out || fail "tty size not forwarded: $(cat tty.out)"
ok "--tty in the VM"

# 5. a running container (the last boot): exec denied, no port; then a SIGKILLed
# coffer run: QEMU dies with it (PR_SET_PDEATHSIG), the next coffer run sweeps
# the stale sockets
(exec "$BIN/coffer" run "${opts[@]}" --guest-image guest "docker://$guest_registry/enc:v2" \
  > k.out 2> k.err) &
rp=$!
pids+=("$rp")
for _ in $(seq 1 600); do grep -q ready k.out 2>/dev/null && break; sleep 0.05; done
grep -q ready k.out || fail "the container never started: $(cat k.err)"
qemu_pid=$(sed -n 's/.*enclave up: agent pid \([0-9]*\),.*/\1/p' k.err)
[[ -n "$qemu_pid" && "$(cat "/proc/$qemu_pid/comm")" == qemu-system-x86* ]] ||
  fail "no QEMU pid in the progress: $(cat k.err)"
# while it runs: the agent policy (built-in) denies ExecProcess inside the VM, through the
# launcher's agent socket; and the guest is reachable only through that API: QEMU forwards no
# port into the guest (user networking without hostfwd) and listens on no TCP/UDP socket
run_id=$(find rundir -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | head -n1)
set +e
msg=$("$BIN/coffer" agent-ctl --socket "rundir/$run_id/enclave/agent.sock" exec "$run_id" -- \
  /bin/sh -c id 2>&1); rc=$?
set -e
[[ $rc -ne 0 && "$msg" == *policy_denied*ExecProcessRequest* ]] ||
  fail "exec in the VM (rc $rc): $msg"
tr '\0' ' ' < "/proc/$qemu_pid/cmdline" | grep -q hostfwd && fail "QEMU forwards a port"
# (control: ss names the owners of listening sockets here, e.g. the trustee's)
ss -H -ltnp | grep -q "pid=${pids[0]}," || fail "ss shows no owner for the trustee's socket"
ss -H -ltunp | grep -q "pid=$qemu_pid," && fail "QEMU listens: $(ss -H -ltunp | grep "pid=$qemu_pid,")"
ok "exec denied by the agent policy in the VM; no port of the guest reachable from the host"
kill -KILL "$rp"; wait "$rp" 2>/dev/null || true
for _ in $(seq 1 100); do [[ -d /proc/$qemu_pid ]] || break; sleep 0.05; done
[[ -d /proc/$qemu_pid ]] && fail "QEMU (pid $qemu_pid) outlived the killed coffer run"
killed_dir=$(find rundir -mindepth 1 -maxdepth 1 -type d | head -n1)/
[[ -S "${killed_dir}enclave/agent.sock" ]] || fail "expected the killed run's sockets: $(find rundir)"
ok "a SIGKILLed coffer run takes its VM with it"
pgrep -f "qemu-system-x86_64.*$work" >/dev/null && fail "a QEMU of this test is still running"
echo "run_vm: ok"
