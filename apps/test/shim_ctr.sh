#!/usr/bin/env bash
# containerd-shim-coffer-v2 through a private containerd 1.6 (`ctr run --runtime
# io.containerd.coffer.v2`), the process enclave: an HTTPS trustee trusting the simulated TEE, an
# encrypted, cosign-signed busybox image on a loopback registry, the init-data as a pod
# annotation (io.coffer.init-data), the image reference as io.coffer.image, an empty --rootfs
# (the shim never runs the host's rootfs).
#  1. the container prints its KBS secret (attestation, key release, pull and decryption inside
#     the enclave) and ctr exits with the container's status (3); TaskCreate/Start/Exit/Delete
#     reached containerd; nothing is left afterwards;
#  2. refusals leave no enclave: init-data that is not base64 / not init-data, an image for a
#     key the trustee does not have, no image reference;
#  3. `ctr run -d` (its configuration through the runtime options' ConfigPath): `ctr task exec`
#     denied by the agent policy, the denial shown by ctr; `task pause` not supported; `task ps`
#     the enclave's pid; `task kill --all`, `task delete`, `container delete`: no shim, enclave
#     process, socket or run-dir entry left;
#  4. a pod grouped the way CRI does (its annotations given by hand): the sandbox container starts
#     the enclave, the pod's container (image named as CRI names it) runs in it through the same
#     shim; a container with other init-data is refused; the pod torn down;
#  5. a SIGKILLed shim takes its enclave with it; containerd's `delete` run removes its state;
#  6. init-data whose agent policy allows one exec: it runs, its output through containerd.
# The shim's debug log (containerd at debug level) records the order of containerd's calls.
# With MODE vm the same runs in the VM enclave under QEMU TCG (6 boots): the guest reaches the
# host's loopback as 10.0.2.2, so the image, registry and trustee are named that way, and the
# signature policy maps that name to the one the image was signed under (remapIdentity).
# Usage: shim_ctr.sh BIN_DIR [process|vm] (coffer, coffer-trustee, coffer-agent,
# containerd-shim-coffer-v2; coffer-guest-init for vm)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=apps/test/trustee_env.sh
. "$here/trustee_env.sh"
mode=${2:-process}
case $mode in process) name=shim_ctr ;; vm) name=shim_ctr_vm ;; *) echo "bad mode $mode" >&2; exit 2 ;; esac
begin_test "$name" "$1"
# shellcheck source=apps/test/containerd_env.sh
. "$here/containerd_env.sh"
[[ -x "$BIN/containerd-shim-coffer-v2" ]] || fail "no containerd-shim-coffer-v2 in $BIN"

start_https_trustee
start_registry
cd "$work"
confidential_app "$mode"   # containerd_env.sh: the image, policies, init-data, shim.toml
printf '[debug]\n  level = "debug"\n' > extra.toml
start_containerd extra.toml
mkdir -m 755 rootfs  # empty: what the shim would never use anyway
image="docker://$ref_registry/demo/app:v1"
run_opts=(--runtime io.containerd.coffer.v2 --rootfs --annotation "io.coffer.init-data=$init_data")

alive() {  # PID: running (an exited child not yet reaped by init is not)
  [[ -d /proc/$1 ]] && ! grep -q '^State:.*zombie' "/proc/$1/status" 2> /dev/null
}
leftovers() {  # WHAT: no shim, enclave process, socket or run-dir entry
  local what=$1
  grep -q ": enclave up (pid" "$CTRD_LOG" || fail "$what: the shim's log names no enclave"
  local pid enclaves
  enclaves=$(sed -n 's/.*: enclave up (pid \([0-9]*\)).*/\1/p' "$CTRD_LOG")
  for _ in $(seq 1 100); do
    local busy=0
    pgrep -f -- "-address $CTRD_SOCK" > /dev/null && busy=1
    pgrep -f "$work/shimrun" > /dev/null && busy=1
    for pid in $enclaves; do alive "$pid" && busy=1; done
    [[ $busy == 0 ]] && break
    sleep 0.1  # polling for the shim's exit after containerd's Shutdown
  done
  pgrep -af -- "-address $CTRD_SOCK" && fail "$what: a shim is left"
  pgrep -af "$work/shimrun" && fail "$what: enclave processes are left"
  pgrep -af "qemu-system-x86_64.*$work" && fail "$what: QEMU is left"
  # every enclave the shim reported (its first process: the agent, or QEMU) is gone
  for pid in $enclaves; do
    alive "$pid" && fail "$what: the enclave with pid $pid is left: $(tr '\0' ' ' < "/proc/$pid/cmdline")"
  done
  for d in shimrun shimrun2; do
    if [[ -d $d && -n "$(ls -A $d)" ]]; then fail "$what: left in $d: $(ls -A $d)"; fi
  done
  return 0
}
fail() {  # with the logs that tell why
  show_logs
  echo "$TEST_NAME: FAIL: $*" >&2
  exit 1
}
show_logs() {
  [[ -f $CTRD_LOG ]] || return 0
  echo "--- containerd log" >&2
  grep -v "level=debug" "$CTRD_LOG" | tail -n 60 >&2 || true
  for f in shimrun*/*/agent.log; do
    [[ -f $f ]] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
  done
  return 0
}

# 1. the container runs in the enclave: its KBS secret, its exit status, its stderr
set +e
start_ns=$(date +%s%N)
ctr run "${run_opts[@]}" --annotation "io.coffer.image=$image" --rm rootfs c1 \
  < /dev/null > out.txt 2> err.txt
rc=$?
set -e
echo "  ctr run ($mode enclave, cold: launch, attestation, pull, run, teardown):" \
  "$(( ($(date +%s%N) - start_ns) / 1000000 )) ms"
[[ $rc -eq 3 ]] || fail "ctr run exited $rc: $(cat out.txt err.txt)"
grep -qx "kbs: kbs-secret-42" out.txt || fail "output: $(cat out.txt err.txt)"
grep -qx "to stderr" err.txt || fail "stderr: $(cat err.txt)"
ok "ctr run: the KBS secret from inside the enclave, exit status 3, stdout and stderr"
leftovers "ctr run --rm"
ok "ctr run --rm: no shim, enclave, socket or run-dir entry left"
# the order of containerd's calls, from the shim's debug log (containerd copies it to its own)
grep -o 'task api: [A-Za-z]* id=c1' "$CTRD_LOG" | awk '{print $3}' | paste -sd' ' > calls.txt
echo "  containerd's calls for ctr run: $(cat calls.txt)"
# where the time went (the shim's log lines, with their timestamps)
grep -E "pod c1: (launching|enclave up)|container c1: (pulling|pulled|cached)|task api: (Start|Delete|Shutdown) id=c1|c1: exited|shutdown: no task left" \
  "$CTRD_LOG" | head -n 9 | sed 's/^/    /'
for call in Create Start Wait Delete Shutdown; do
  grep -qw "$call" calls.txt || fail "no $call in the shim's log: $(cat calls.txt)"
done
# containerd's exchange logs each event the shim forwarded (and refuses malformed envelopes)
for ev in create:TaskCreate start:TaskStart exit:TaskExit delete:TaskDelete; do
  grep -q "event forwarded.*topic=/tasks/${ev%%:*} type=containerd.events.${ev#*:}" "$CTRD_LOG" ||
    fail "containerd got no /tasks/${ev%%:*} event"
done
grep -q 'error forwarding event' "$CTRD_LOG" && fail "containerd refused an event"
# after Shutdown containerd runs `containerd-shim-coffer-v2 ... delete`: a DeleteResponse, no noise
grep -q 'cleaning up dead shim' "$CTRD_LOG" || fail "containerd did not run the shim's delete"
grep -q 'failed to delete\|cleanup warnings' "$CTRD_LOG" && fail "the shim's delete failed"
ok "the shim's events reached containerd: TaskCreate, TaskStart, TaskExit, TaskDelete"

# 2. refusals: clear errors, no enclave left
refused() {  # NAME EXPECTED_MESSAGE ctr run options...
  local name=$1 expected=$2
  shift 2
  set +e
  ctr run --runtime io.containerd.coffer.v2 --rootfs "$@" --rm rootfs "$name" \
    < /dev/null > r.out 2> r.err
  local rc=$?
  set -e
  echo "  $name: $(tr '\n' ' ' < r.err | cut -c1-300)"
  [[ $rc -ne 0 ]] || fail "$name: ctr run succeeded: $(cat r.out)"
  grep -q -- "$expected" r.err || fail "$name: expected '$expected': $(cat r.err)"
  ctr task delete "$name" > /dev/null 2>&1 || true
  ctr container delete "$name" > /dev/null 2>&1 || true
  leftovers "$name"
}
refused bad-b64 "bad_init_data" --annotation "io.coffer.init-data=not base64!" \
  --annotation "io.coffer.image=$image"
refused bad-toml "bad_init_data" --annotation "io.coffer.init-data=$(printf 'version = ' | base64 -w0)" \
  --annotation "io.coffer.image=$image"
refused no-image "no_image_ref" --annotation "io.coffer.init-data=$init_data"
refused bad-kind "io.coffer.enclave must be process or vm" --annotation "io.coffer.enclave=kvm" \
  --annotation "io.coffer.image=$image"
refused wrong-key "pulling docker://$ref_registry/demo/other:v1 in the enclave" \
  --annotation "io.coffer.init-data=$init_data" \
  --annotation "io.coffer.image=docker://$ref_registry/demo/other:v1"
ok "refusals (bad init-data, no image, bad enclave kind, a key the trustee refuses): clear errors, no enclave left"

# 3. a detached container: exec denied by the agent policy; kill, delete, clean up
# (its configuration through the runtime options' ConfigPath, which wins over the environment)
sed "s|$work/shimrun|$work/shimrun2|" shim.toml > shim2.toml
ctr run "${run_opts[@]}" --runtime-config-path "$work/shim2.toml" \
  --annotation "io.coffer.image=docker://$ref_registry/demo/app:wait" -d rootfs c2 > /dev/null
for _ in $(seq 1 100); do
  ctr task ls | grep -q '^c2 .*RUNNING' && break
  sleep 0.1  # polling the task's status
done
ctr task ls | grep -q '^c2 .*RUNNING' || fail "c2 is not running: $(ctr task ls)"
compgen -G "$work/shimrun2/*.sock" > /dev/null || fail "the runtime options' ConfigPath was not used"
set +e
ctr task exec --exec-id e1 c2 /bin/sh -c 'echo escaped' > x.out 2> x.err
rc=$?
set -e
echo "  exec: $(cat x.err)"
[[ $rc -ne 0 ]] || fail "exec allowed: $(cat x.out)"
grep -q "policy_denied" x.err || fail "exec: no policy denial: $(cat x.err)"
grep -q escaped x.out && fail "exec ran"
ok "ctr task exec: denied by the agent policy, the denial shown"
# what the host cannot do to a confidential container: a clear "not supported"
for verb in pause; do
  set +e
  ctr task "$verb" c2 > v.out 2> v.err
  rc=$?
  set -e
  [[ $rc -ne 0 ]] && grep -q "not_supported" v.err || fail "ctr task $verb: rc $rc: $(cat v.out v.err)"
done
ok "ctr task pause: not_supported"
# the host sees one process: the enclave (Pids)
enclave_pid=$(ctr task ps c2 | awk 'NR==2 {print $1}')
[[ -n "$enclave_pid" ]] && grep -q "pod c2: enclave up (pid $enclave_pid)" "$CTRD_LOG" ||
  fail "ctr task ps: $(ctr task ps c2) is not the enclave's pid"
echo "  the enclave: $(tr '\0' ' ' < "/proc/$enclave_pid/cmdline")"
ok "ctr task ps: the enclave's pid"
ctr task kill --signal SIGKILL --all c2  # sleep is the container's PID 1: TERM is ignored
for _ in $(seq 1 100); do
  ctr task ls | grep -q '^c2 .*STOPPED' && break
  sleep 0.1  # polling the task's status after the kill
done
ctr task ls | grep -q '^c2 .*STOPPED' || fail "c2 did not stop: $(ctr task ls)"
ctr task delete c2 > /dev/null
ctr container delete c2
leftovers "ctr task kill/delete"
grep -o 'task api: [A-Za-z]* id=c2' "$CTRD_LOG" | awk '{print $3}' | paste -sd' ' > calls2.txt
echo "  containerd's calls for ctr run -d, exec, pause, ps, kill, delete: $(cat calls2.txt)"
ok "ctr run -d, task kill, task delete, container delete: nothing left"
# 4. a pod the way CRI groups it (its annotations given by hand): the sandbox container starts
# the enclave and the pod's sandbox in it (no image runs for it); a container of the pod is
# served by the same shim and enclave, its image named as CRI names it (no transport)
pod_ann=(--annotation io.kubernetes.cri.sandbox-id=pod1)
ctr run "${run_opts[@]}" "${pod_ann[@]}" --annotation io.kubernetes.cri.container-type=sandbox \
  -d rootfs pod1 > /dev/null
ctr task ls | grep -q '^pod1 .*RUNNING' || fail "the pod's sandbox is not running: $(ctr task ls)"
shims_before=$(pgrep -fc -- "-address $CTRD_SOCK")
set +e
ctr run --runtime io.containerd.coffer.v2 --rootfs "${pod_ann[@]}" \
  --annotation io.kubernetes.cri.container-type=container \
  --annotation "io.kubernetes.cri.image-name=$ref_registry/demo/app:v1" --rm rootfs app1 \
  < /dev/null > p.out 2> p.err
rc=$?
set -e
[[ $rc -eq 3 ]] && grep -qx "kbs: kbs-secret-42" p.out || fail "the pod's container (rc $rc): $(cat p.out p.err)"
[[ $(grep -c "pod pod1: launching" "$CTRD_LOG") -eq 1 ]] || fail "pod1 launched more than one enclave"
[[ $(pgrep -fc -- "-address $CTRD_SOCK") -eq $shims_before ]] || fail "a second shim for pod1"
ok "a pod: the sandbox starts the enclave, the pod's container runs in it through the same shim"
# a container of the pod with other init-data is refused (the enclave is bound to the pod's)
set +e
ctr run --runtime io.containerd.coffer.v2 --rootfs "${pod_ann[@]}" \
  --annotation io.kubernetes.cri.container-type=container \
  --annotation "io.kubernetes.cri.image-name=$ref_registry/demo/app:v1" \
  --annotation "io.coffer.init-data=$(sed 's/sha384/sha512/' init-data.toml | base64 -w0)" \
  --rm rootfs app2 < /dev/null > p.out 2> p.err
rc=$?
set -e
[[ $rc -ne 0 ]] && grep -q "bad_init_data: the pod's enclave runs with other init-data" p.err ||
  fail "other init-data in the pod (rc $rc): $(cat p.out p.err)"
ctr container delete app2 > /dev/null 2>&1 || true
ok "a container of the pod with other init-data is refused"
ctr task kill --signal SIGKILL pod1
ctr task delete pod1 > /dev/null
ctr container delete pod1
leftovers "the pod"
grep -o 'task api: [A-Za-z]* id=\(pod1\|app1\)' "$CTRD_LOG" | awk '{print $3 "(" substr($4, 4) ")"}' |
  paste -sd' ' > calls3.txt
echo "  containerd's calls for the pod: $(cat calls3.txt)"
ok "the pod's sandbox killed and deleted: nothing left"
# 5. a shim that dies (SIGKILL): its enclave dies with it, containerd runs the binary's `delete`,
# which removes the socket and the pod's state; the container can be deleted
ctr run "${run_opts[@]}" --annotation "io.coffer.image=docker://$ref_registry/demo/app:wait" \
  -d rootfs c3 > /dev/null
shim_pid=$(pgrep -f -- "-address $CTRD_SOCK -publish-binary .* -id c3") ||
  fail "no shim for c3: $(pgrep -af containerd-shim-coffer)"
kill -KILL "$shim_pid"
for _ in $(seq 1 100); do
  grep -q 'cleaning up after shim disconnected.*id=c3' "$CTRD_LOG" && [[ -z "$(ls -A shimrun)" ]] && break
  sleep 0.1  # polling containerd's cleanup of the dead shim
done
ctr task delete c3 > /dev/null 2>&1 || true
ctr container delete c3
leftovers "a killed shim"
ok "a killed shim: its enclave died with it, delete removed its socket and state"
# 6. an init-data whose agent policy allows one exec (the built-in policy with allowed_exec set):
# Exec, Start, Wait and Delete of the exec, its output through containerd's FIFOs
/usr/bin/python3 - "$here/../../src/agent/default_policy.cpp" > policy.rego <<'PY'
import sys
src = open(sys.argv[1]).read()
rego = src.split('R"rego(', 1)[1].split(')rego"', 1)[0]
assert '"allowed_exec": [],' in rego
print(rego.replace('"allowed_exec": [],', '"allowed_exec": [["/bin/echo", "exec-ok"]],'), end="")
PY
coffer run --tee sim-tdx "${image_opts[@]}" --sim-dir "$SIM" \
  --trustee "$kbs_url" --kbs-ca-file "$COFFER_KBS_CA_FILE" --insecure-registry "$ref_registry" \
  --require-encrypted --image-policy kbs:///default/security-policy/app --agent-policy policy.rego \
  --print-init-data > init-data-exec.toml
exec_opts=(--runtime io.containerd.coffer.v2 --rootfs
           --annotation "io.coffer.init-data=$(base64 -w0 init-data-exec.toml)"
           --annotation "io.coffer.image=docker://$ref_registry/demo/app:wait")
# the reference values of the enclave with this init-data, as a deployer registers them
if [[ $mode == vm ]]; then
  coffer sim measure --kernel enclave/vmlinuz --initrd enclave/initrd \
    --cmdline "$(cat enclave/cmdline)" --init-data init-data-exec.toml --format rvps > rv-exec.json
else
  coffer enclave measure enclave --init-data init-data-exec.toml --format rvps > rv-exec.json
fi
coffer kbs set-reference-values --file rv-exec.json > /dev/null
ctr run "${exec_opts[@]}" -d rootfs c4 > /dev/null
set +e
ctr task exec --exec-id e2 c4 /bin/echo exec-ok < /dev/null > x.out 2> x.err
rc=$?
set -e
[[ $rc -eq 0 && "$(cat x.out)" == exec-ok ]] || fail "allowed exec (rc $rc): $(cat x.out x.err)"
set +e
ctr task exec --exec-id e3 c4 /bin/echo other < /dev/null > x.out 2> x.err
rc=$?
set -e
[[ $rc -ne 0 ]] && grep -q policy_denied x.err || fail "an exec the policy does not list (rc $rc): $(cat x.out x.err)"
ok "an exec the pod's agent policy allows runs, its output through containerd; another is denied"
ctr task kill --signal SIGKILL c4
for _ in $(seq 1 100); do
  ctr task ls | grep -q '^c4 .*STOPPED' && break
  sleep 0.1  # polling the task's status after the kill
done
ctr task delete c4 > /dev/null
ctr container delete c4
leftovers "the exec pod"
echo "$name: ok"
