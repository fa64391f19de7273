#!/usr/bin/env bash
# Kubernetes through containerd's CRI, the way kubelet calls it (docs/kubernetes.md): coffer-cri
# acting as kubelet against a private containerd 1.6 whose CRI snapshotter is coffer-snapshotter
# (guest pull) and whose runtime handler "coffer" is containerd-shim-coffer-v2. An HTTPS trustee
# trusting the simulated TEE, an encrypted, cosign-signed busybox image on a loopback registry,
# the pod's init-data as the annotation io.coffer.init-data.
#  1. RunPodSandbox (handler coffer, host network) -> PullImage -> CreateContainer ->
#     StartContainer: the container's CRI log holds the KBS secret it read inside the enclave (on
#     stdout) and its stderr line; ContainerStatus reports its exit code (3); the step timings to
#     the first log line are printed;
#  2. a long-running container in the same pod: ExecSync is denied by the agent policy (the CRI
#     client sees the denial); StopContainer, RemoveContainer;
#  3. StopPodSandbox, RemovePodSandbox;
#  4. afterwards: no layer of the image in containerd's content store, no snapshot with a file of
#     it, no shim, enclave or QEMU process left.
# Usage: [CRI_RUNS=N] cri_coffer.sh BIN_DIR [process|vm] (CRI_RUNS: N more pods for the benchmark)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=apps/test/trustee_env.sh
. "$here/trustee_env.sh"
mode=${2:-process}
case $mode in process) name=cri_coffer ;; vm) name=cri_coffer_vm ;; *) echo "bad mode $mode" >&2; exit 2 ;; esac
begin_test "$name" "$1"
# shellcheck source=apps/test/containerd_env.sh
. "$here/containerd_env.sh"
trap 'cleanup_containerd; end_test' EXIT
start_https_trustee
start_registry
cd "$work"
confidential_app "$mode"   # containerd_env.sh: the image, its policies, init-data, shim.toml

SNAP_SOCK="$work/snapshotter.sock"
start_snapshotter snapshotter --host-snapshots
cat > "$work/extra.toml" <<TOML
[proxy_plugins.coffer]
  type = "snapshot"
  address = "$SNAP_SOCK"
[debug]
  level = "debug"
TOML
if [[ $mode == vm ]]; then export CTRD_REGISTRY_ALIAS=$ref_registry; fi
CTRD_SNAPSHOTTER=coffer start_containerd "$work/extra.toml"
CTRD_SNAPSHOTTER=coffer import_sandbox_image
image="$ref_registry/demo/app:v1"

# 1. the pod, to its container's first log line
out=$(cri --timeout 120 pod-run --image "$image" --runtime-handler coffer --name p1 \
  --log-dir "$work/logs" --annotation "io.coffer.init-data=$init_data" --wait 120) ||
  fail "pod-run: $out $(tail -n 30 "$CTRD_LOG")"
pod=$(jq -r .pod_sandbox_id <<< "$out")
c1=$(jq -r .container_id <<< "$out")
# the container's first line (stdout or stderr, whichever reached the log first)
[[ $(jq -r .first_line <<< "$out") =~ ^(kbs:\ kbs-secret-42|to\ stderr)$ ]] || fail "first line: $out"
echo "  RunPodSandbox -> first output line ($mode enclave): $(jq -c .timings_ms <<< "$out")"
code=$(container_exit_code "$c1") || fail "ContainerStatus"
[[ $code == 3 ]] || fail "exit code: $code"
grep -q " stdout F kbs: kbs-secret-42$" "$work/logs/app/0.log" ||
  fail "CRI log: $(cat "$work/logs/app/0.log")"
grep -q " stderr F to stderr$" "$work/logs/app/0.log" ||
  fail "CRI log (stderr): $(cat "$work/logs/app/0.log")"
ok "pod: the KBS secret from inside the enclave in the CRI log, exit code 3"

# CRI_RUNS=N: N more pods, each to its first log line and removed (bench/README.md)
for i in $(seq 1 "${CRI_RUNS:-0}"); do
  out=$(cri --timeout 120 pod-run --image "$image" --runtime-handler coffer --name "bench$i" \
    --log-dir "$work/logs-bench$i" --annotation "io.coffer.init-data=$init_data" --wait 120 \
    --cleanup) || fail "pod-run $i: $out"
  echo "  run $i: $(jq -c .timings_ms <<< "$out")"
done

# 2. a long-running container of the same pod: exec denied, stop, remove
sandbox=$(jq -n --arg logs "$work/logs" --arg init "$init_data" \
  '{metadata: {name: "p1", uid: "p1-uid", namespace: "default"}, log_directory: $logs,
    annotations: {"io.coffer.init-data": $init},
    linux: {security_context: {namespace_options: {network: "NODE"}}}}')
cri PullImage "{\"image\": {\"image\": \"$ref_registry/demo/app:wait\"}}" > /dev/null
req=$(jq -n --arg pod "$pod" --arg image "$ref_registry/demo/app:wait" --argjson sb "$sandbox" \
  '{pod_sandbox_id: $pod, sandbox_config: $sb,
    config: {metadata: {name: "waiter"}, image: {image: $image}, log_path: "waiter/0.log"}}')
c2=$(cri CreateContainer "$req" | jq -r .container_id)
cri StartContainer "{\"container_id\": \"$c2\"}" > /dev/null
for _ in $(seq 1 600); do
  grep -q "kbs: kbs-secret-42" "$work/logs/waiter/0.log" 2> /dev/null && break
  sleep 0.05  # polling the CRI log for the container's first line
done
grep -q "kbs: kbs-secret-42" "$work/logs/waiter/0.log" || fail "waiter: $(cat "$work/logs/waiter/0.log")"
rc=0
out=$(cri ExecSync "{\"container_id\": \"$c2\", \"cmd\": [\"/bin/sh\", \"-c\", \"id\"], \"timeout\": 30}" 2>&1) || rc=$?
[[ $rc -ne 0 && "$out" == *policy_denied* ]] || fail "ExecSync (rc $rc): $out"
ok "ExecSync denied by the agent policy: $(grep -o "policy_denied[^\"]*" <<< "$out" | head -n1 | cut -c1-90)"
cri StopContainer "{\"container_id\": \"$c2\", \"timeout\": 2}" > /dev/null
[[ $(cri ContainerStatus "{\"container_id\": \"$c2\"}" | jq -r .status.state) == CONTAINER_EXITED ]] ||
  fail "stopped container not exited"
cri RemoveContainer "{\"container_id\": \"$c2\"}" > /dev/null
cri RemoveContainer "{\"container_id\": \"$c1\"}" > /dev/null
ok "StopContainer, RemoveContainer"

# 3. the pod goes
cri StopPodSandbox "{\"pod_sandbox_id\": \"$pod\"}" > /dev/null
cri RemovePodSandbox "{\"pod_sandbox_id\": \"$pod\"}" > /dev/null
[[ -z $(ctr -n k8s.io task ls -q) ]] || fail "tasks left: $(ctr -n k8s.io task ls)"
ok "StopPodSandbox, RemovePodSandbox"

# 3b. the image CRI guest-pulled, run by ctr with the coffer snapshotter (process enclave): the
# container's rootfs is the snapshotter's placeholder mount naming the image (no annotation names
# it: the shim takes the mount's), which the shim pulls in the enclave; then a detached one of
# the other tag, named by annotation, killed and deleted
if [[ $mode == process ]]; then
  set +e
  ctr -n k8s.io run --rm --snapshotter coffer --runtime io.containerd.coffer.v2 \
    --annotation "io.coffer.init-data=$init_data" "$image" ctr1 < /dev/null > ctr.out 2> ctr.err
  rc=$?
  set -e
  [[ $rc -eq 3 ]] && grep -qx "kbs: kbs-secret-42" ctr.out ||
    fail "ctr run --snapshotter coffer (rc $rc): $(cat ctr.out ctr.err)"
  # :wait shares its layers with :v1 (only the configuration differs), so the placeholder mount
  # names :v1, the image that created the chain: the annotation names the image to run
  ctr -n k8s.io run -d --snapshotter coffer --runtime io.containerd.coffer.v2 \
    --annotation "io.coffer.init-data=$init_data" \
    --annotation "io.coffer.image=$ref_registry/demo/app:wait" "$ref_registry/demo/app:wait" ctr2 \
    > /dev/null || fail "ctr run -d"
  for _ in $(seq 1 200); do
    [[ $(ctr -n k8s.io task ls 2> /dev/null | awk '$1 == "ctr2" {print $3}') == RUNNING ]] && break
    sleep 0.05  # polling the task's state
  done
  mounts=$(ctr -n k8s.io snapshots --snapshotter coffer mounts /mnt ctr2)
  [[ "$mounts" == *"io.coffer.guest-pull"*"io.coffer.image-ref=$image"* ]] ||
    fail "ctr2's rootfs: $mounts"
  [[ $(ctr -n k8s.io task ls 2> /dev/null | awk '$1 == "ctr2" {print $3}') == RUNNING ]] ||
    fail "ctr2 (:wait, which sleeps) is not running: $(ctr -n k8s.io task ls)"
  ctr -n k8s.io task kill -s KILL ctr2
  for _ in $(seq 1 200); do
    [[ $(ctr -n k8s.io task ls 2> /dev/null | awk '$1 == "ctr2" {print $3}') == STOPPED ]] && break
    sleep 0.05  # polling the task's state after the kill
  done
  ctr -n k8s.io task delete ctr2 > /dev/null
  ctr -n k8s.io container delete ctr2
  [[ -z $(ctr -n k8s.io task ls -q) ]] || fail "tasks left: $(ctr -n k8s.io task ls)"
  ok "ctr run --snapshotter coffer: the KBS secret, exit status 3; ctr run -d, task kill, task delete"
fi

# 4. what the host kept: the image's manifest and config, no layer, no file, no process
for tag in v1 wait; do
  manifest=$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$REGISTRY/v2/demo/app/manifests/$tag")
  jq -e '.layers[0].mediaType | endswith("+encrypted")' <<< "$manifest" > /dev/null ||
    fail "the test image is not encrypted: $manifest"
  content=$(ctr -n k8s.io content ls -q)
  for l in $(jq -r '.layers[].digest' <<< "$manifest"); do
    if grep -q "$l" <<< "$content"; then fail "layer $l of :$tag is in the host's content store"; fi
  done
done
if find "$work/snapshotter" -path '*/fs/*' -name show | grep -q .; then
  fail "a file of the image is on the host: $(find "$work/snapshotter" -name show)"
fi
for _ in $(seq 1 100); do
  pgrep -f -- "-address $CTRD_SOCK" > /dev/null || break
  sleep 0.1  # polling for the shim's exit after containerd's Shutdown
done
pgrep -af -- "containerd-shim-coffer-v2.*-address $CTRD_SOCK" && fail "a shim is left"
pgrep -af "$work/shimrun" && fail "enclave processes are left"
pgrep -af "qemu-system-x86_64.*$work" && fail "QEMU is left"
[[ -z "$(ls -A "$work/shimrun" 2> /dev/null)" ]] || fail "left in the shim's run dir: $(ls -A "$work/shimrun")"
ok "no layer in the content store, no file of the image on the host, no shim, enclave or QEMU left"
echo "$name: ok"
