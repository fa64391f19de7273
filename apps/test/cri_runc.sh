#!/usr/bin/env bash
# coffer-cri (the test CRI client acting as kubelet) and the containerd harness, with the runc
# handler and the overlayfs snapshotter: a busybox pod from a loopback registry prints a line to
# its CRI log, ContainerStatus reports its exit code, ExecSync runs in a running container,
# Stop/Remove clean up; the client's errors (unknown call, bad JSON, a gRPC error) are checked.
# Usage: cri_runc.sh BIN_DIR (holding coffer-cri)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/trustee_env.sh"
. "$HERE/containerd_env.sh"
begin_test cri_runc "$1"
trap 'cleanup_containerd; end_test' EXIT
cd "$work"

start_registry
busybox_layout
umoci config --image L:v1 --config.cmd /bin/sh --config.cmd -c \
  --config.cmd 'echo hello from cri; exit 7'
skopeo copy -q --dest-tls-verify=false oci:L:v1 "docker://$REGISTRY/busybox:1"
IMAGE=$REGISTRY/busybox:1
start_containerd
import_sandbox_image

# the client's own errors
out=$(cri Version '{"version": "v1"}') || fail "Version: $out"
[[ $(jq -r .runtime_name <<< "$out") == containerd ]] || fail "Version: $out"
rc=0; cri NoSuchCall '{}' 2> err || rc=$?
[[ $rc == 2 ]] && grep -q "unknown call" err || fail "unknown call: rc $rc, $(cat err)"
rc=0; cri PodSandboxStatus '{"pod_sandbox_id": ' 2> err || rc=$?
[[ $rc == 2 ]] && grep -q "not a valid JSON" err || fail "bad JSON: rc $rc, $(cat err)"
rc=0; out=$(cri PodSandboxStatus '{"pod_sandbox_id": "nonexistent"}' 2> err) || rc=$?
[[ $rc == 1 && $(jq -r .error.name <<< "$out") == NOT_FOUND ]] \
  || fail "unknown sandbox: rc $rc, $out, $(cat err)"
ok "client errors"

# a pod that prints a line and exits 7; timings of each step
out=$(cri pod-run --image "$IMAGE" --runtime-handler runc --name p1 --log-dir "$work/logs") \
  || fail "pod-run: $out"
pod=$(jq -r .pod_sandbox_id <<< "$out")
ctr_id=$(jq -r .container_id <<< "$out")
[[ $(jq -r .first_line <<< "$out") == "hello from cri" ]] || fail "first line: $out"
jq -e '.timings_ms | .run_pod_sandbox > 0 and .pull_image > 0 and .first_line >= 0' \
  <<< "$out" > /dev/null || fail "timings: $out"
grep -q " stdout F hello from cri$" "$work/logs/app/0.log" || fail "CRI log: $(cat "$work/logs/app/0.log")"
ok "pod-run: $(jq -c .timings_ms <<< "$out")"
status=$(cri PodSandboxStatus "{\"pod_sandbox_id\": \"$pod\"}")
[[ $(jq -r .status.runtime_handler <<< "$status") == runc ]] || fail "sandbox status: $status"
[[ $(jq -r .status.state <<< "$status") == SANDBOX_READY ]] || fail "sandbox status: $status"
code=$(container_exit_code "$ctr_id") || fail "ContainerStatus"
[[ $code == 7 ]] || fail "exit code: $code"
ok "ContainerStatus: exited, exit code 7"

# a long-running container in the same pod: ExecSync, StopContainer, RemoveContainer
sandbox=$(jq -n --arg logs "$work/logs" '{metadata: {name: "p1", uid: "p1-uid", namespace: "default"},
  log_directory: $logs,
  linux: {security_context: {namespace_options: {network: "NODE"}}}}')
req=$(jq -n --arg pod "$pod" --arg image "$IMAGE" --argjson sb "$sandbox" \
  '{pod_sandbox_id: $pod, sandbox_config: $sb,
    config: {metadata: {name: "sleeper"}, image: {image: $image},
             command: ["/bin/sh", "-c", "echo up; exec sleep 1000"], log_path: "sleeper/0.log"}}')
c2=$(cri CreateContainer "$req" | jq -r .container_id)
cri StartContainer "{\"container_id\": \"$c2\"}" > /dev/null
out=$(cri ExecSync "{\"container_id\": \"$c2\", \"cmd\": [\"/bin/sh\", \"-c\", \"echo in; echo err >&2; exit 3\"], \"timeout\": 30}")
[[ $(jq -r .stdout <<< "$out") == in && $(jq -r .stderr <<< "$out") == err \
   && $(jq -r .exit_code <<< "$out") == 3 ]] || fail "ExecSync: $out"
ok "ExecSync: stdout, stderr, exit code"
listed=$(cri ListContainers "{\"filter\": {\"pod_sandbox_id\": \"$pod\"}}")
[[ $(jq '.containers | length' <<< "$listed") == 2 ]] || fail "ListContainers: $listed"
cri StopContainer "{\"container_id\": \"$c2\", \"timeout\": 1}" > /dev/null
[[ $(cri ContainerStatus "{\"container_id\": \"$c2\"}" | jq -r .status.state) == CONTAINER_EXITED ]] \
  || fail "stopped container not exited"
cri RemoveContainer "{\"container_id\": \"$c2\"}" > /dev/null
rc=0; out=$(cri ContainerStatus "{\"container_id\": \"$c2\"}" 2> /dev/null) || rc=$?
[[ $rc == 1 && $(jq -r .error.name <<< "$out") == NOT_FOUND ]] || fail "removed container: $out"
ok "StopContainer, RemoveContainer"

out=$(cri ImageStatus "{\"image\": {\"image\": \"$IMAGE\"}}")
[[ $(jq -r '.image.repo_tags[0]' <<< "$out") == "$IMAGE" ]] || fail "ImageStatus: $out"

cri StopPodSandbox "{\"pod_sandbox_id\": \"$pod\"}" > /dev/null
cri RemovePodSandbox "{\"pod_sandbox_id\": \"$pod\"}" > /dev/null
rc=0; cri PodSandboxStatus "{\"pod_sandbox_id\": \"$pod\"}" > /dev/null 2>&1 || rc=$?
[[ $rc == 1 ]] || fail "removed sandbox still has a status"
[[ -z $(ctr -n k8s.io task ls -q) ]] || fail "tasks left: $(ctr -n k8s.io task ls)"
cri RemoveImage "{\"image\": {\"image\": \"$IMAGE\"}}" > /dev/null
[[ $(cri ImageStatus "{\"image\": {\"image\": \"$IMAGE\"}}" | jq -r .image) == null ]] \
  || fail "image not removed"
ok "StopPodSandbox, RemovePodSandbox, RemoveImage"
