#!/usr/bin/env bash
# Guest pull through coffer-snapshotter with the real containerd (docs/kubernetes.md, "The
# snapshotter"): a trustee, a loopback registry and an encrypted signed busybox image; a private
# containerd with coffer-snapshotter as proxy plugin and as the CRI snapshotter. A CRI PullImage
# (coffer-cri, as kubelet) of the encrypted image succeeds, and afterwards containerd's content
# store (namespace k8s.io) holds the image's index/manifest/config but none of its layers, and its
# snapshots are placeholders with no files on the host - also when the same image and its
# plaintext twin were pulled on the host before (overlayfs, another namespace). A container's
# rootfs is the placeholder mount (containerd's runc shim mounts it: read-only and empty, the
# host has no file of the image). `ctr image pull` fetches every layer first: its
# result is recorded. The snapshotter's log of the CRI calls is kept in $SNAPSHOTTER_TRACE if set.
# Usage: snapshotter_guest_pull.sh BIN_DIR (coffer, coffer-trustee, coffer-cri, coffer-snapshotter)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/trustee_env.sh"
. "$HERE/containerd_env.sh"
begin_test snapshotter_guest_pull "$1"
trap 'cleanup_containerd; end_test' EXIT
cd "$work"

start_https_trustee
start_registry
busybox_layout
# a second layer, so that containerd chains placeholders (parent = the previous placeholder)
umoci unpack --rootless --image L:v1 B2 > /dev/null
echo second-layer > B2/rootfs/layer2
umoci repack --image L:v1 B2
push_encrypted v1 'echo guest-pulled' default/key/gp1
IMAGE=$REGISTRY/enc:v1
# the plaintext twin (same layers before encryption: the same chain IDs)
skopeo copy -q --dest-tls-verify=false oci:L:v1 "docker://$REGISTRY/plain:v1"

# the layer digests of the encrypted image, from the registry
manifest=$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://$REGISTRY/v2/enc/manifests/v1")
mapfile -t layers < <(jq -r '.layers[].digest' <<< "$manifest")
config_digest=$(jq -r .config.digest <<< "$manifest")
[[ ${#layers[@]} == 2 ]] || fail "not two layers in the manifest: $manifest"
jq -e '.layers[0].mediaType | endswith("+encrypted")' <<< "$manifest" > /dev/null \
  || fail "the test image is not encrypted"

SNAP_SOCK="$work/snapshotter.sock"
# --host-snapshots: the runc sandbox image below is a host snapshot
start_snapshotter snapshotter --log-level debug --host-snapshots
# and one with the default: no host snapshots
start_snapshotter strict
cat > "$work/extra.toml" <<TOML
[proxy_plugins.coffer]
  type = "snapshot"
  address = "$SNAP_SOCK"
[proxy_plugins.coffer-strict]
  type = "snapshot"
  address = "$work/strict.sock"
TOML
CTRD_SNAPSHOTTER=coffer start_containerd "$work/extra.toml"
CTRD_SNAPSHOTTER=coffer import_sandbox_image
ok "containerd with coffer-snapshotter; the sandbox image imported (host snapshot)"

# the image and its plaintext twin pulled on the host before, into overlayfs, another namespace
ctr -n host images pull --plain-http --snapshotter overlayfs "$REGISTRY/plain:v1" > /dev/null
rc=0; ctr -n host images pull --plain-http --snapshotter overlayfs "$IMAGE" > ctr-host.out 2>&1 \
  || rc=$?
[[ -n $(ctr -n host snapshots --snapshotter overlayfs ls -q 2>/dev/null || ctr -n host snapshots --snapshotter overlayfs ls) ]] \
  || fail "the host pull left no overlayfs snapshot"
ok "host pulls into overlayfs in namespace host (encrypted image: rc $rc, its layers fetched)"

: > "$work/snapshotter.log"  # the trace of the CRI pull only
t0=$(date +%s%N)
out=$(cri PullImage "{\"image\": {\"image\": \"$IMAGE\"}}") || fail "CRI PullImage: $out"
pull_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
image_ref=$(jq -r .image_ref <<< "$out")
[[ $image_ref == sha256:* ]] || fail "PullImage: $out"
cp "$work/snapshotter.log" "$work/trace-pull.log"
ok "CRI PullImage of the encrypted image: $image_ref in $pull_ms ms (coffer-cri included)"

content=$(ctr -n k8s.io content ls -q)
for l in "${layers[@]}"; do
  if grep -q "$l" <<< "$content"; then fail "layer $l is in the host's content store"; fi
done
grep -q "$config_digest" <<< "$content" || fail "the config is not in the content store"
ok "content store (k8s.io): config and manifest, none of the ${#layers[@]} layers"

# the image's snapshots: committed, labelled with the image, no directory on the host (the
# snapshotter's only directory is the sandbox image's one layer)
n=0
for s in $(ctr -n k8s.io snapshots --snapshotter coffer ls | awk 'NR > 1 {print $1}'); do
  info=$(ctr -n k8s.io snapshots --snapshotter coffer info "$s")
  jq -e --arg img "$IMAGE" '.Kind == "Committed" and
    .Labels["containerd.io/snapshot/cri.image-ref"] == $img' <<< "$info" > /dev/null \
    && n=$((n + 1))
done
[[ $n == "${#layers[@]}" ]] || fail "$n committed snapshots name the image: $(ctr -n k8s.io snapshots --snapshotter coffer ls)"
dirs=$(find "$work/snapshotter/snapshots" -mindepth 1 -maxdepth 1 | wc -l)
[[ $dirs == 1 ]] || fail "$dirs snapshot directories on the host"
grep -q "Prepare .*containerd.io/snapshot/cri.image-ref=$IMAGE" "$work/trace-pull.log" \
  || fail "containerd sent no unpack Prepare with the image label: $(cat "$work/trace-pull.log")"
for l in "${layers[@]}"; do
  grep -q "cri.layer-digest=$l" "$work/trace-pull.log" || fail "no Prepare for layer $l"
done
# the second layer's Prepare names the first layer's placeholder as parent
grep -q "Prepare key=k8s.io/[0-9]*/extract-.* parent=coffer-guest-pull/0/sha256:.*cri.layer-digest=${layers[1]}" \
  "$work/trace-pull.log" || fail "the second layer's parent: $(cat "$work/trace-pull.log")"
ok "snapshots: $n placeholder(s) for the image, no files on the host"

# a container over the image (runc handler: the host has none of the image's files)
sandbox=$(jq -n --arg logs "$work/logs" '{metadata: {name: "gp", uid: "gp-uid", namespace: "default"},
  log_directory: $logs, linux: {security_context: {namespace_options: {network: "NODE"}}}}')
pod=$(cri RunPodSandbox "$(jq -n --argjson sb "$sandbox" '{config: $sb, runtime_handler: "runc"}')" \
  | jq -r .pod_sandbox_id) || fail "RunPodSandbox"
: > "$work/snapshotter.log"
req=$(jq -n --arg pod "$pod" --arg image "$IMAGE" --argjson sb "$sandbox" \
  '{pod_sandbox_id: $pod, sandbox_config: $sb,
    config: {metadata: {name: "c"}, image: {image: $image}, log_path: "c/0.log"}}')
out=$(cri CreateContainer "$req") || fail "CreateContainer: $out"
cid=$(jq -r .container_id <<< "$out")
cp "$work/snapshotter.log" "$work/trace-create.log"
grep -q "Prepare key=k8s.io/[0-9]*/$cid " "$work/trace-create.log" || fail "no container Prepare"
rc=0; out=$(cri StartContainer "{\"container_id\": \"$cid\"}" 2>&1) || rc=$?
[[ $rc == 1 ]] || fail "a container over a placeholder started on the host: $out"
# the shim mounted the placeholder (read-only, empty): runc cannot even create /proc in it
grep -q "rootfs/proc: read-only file system" <<< "$out" || fail "StartContainer: $out"
ok "container rootfs: containerd and runc mount the placeholder (read-only, empty)"
: > "$work/snapshotter.log"
cri RemoveContainer "{\"container_id\": \"$cid\"}" > /dev/null
cri StopPodSandbox "{\"pod_sandbox_id\": \"$pod\"}" > /dev/null
cri RemovePodSandbox "{\"pod_sandbox_id\": \"$pod\"}" > /dev/null
# containerd's garbage collection removes the container's snapshot in the background
for _ in $(seq 1 100); do
  grep -q "Remove key=k8s.io/[0-9]*/$cid$" "$work/snapshotter.log" && break
  sleep 0.05  # polling the snapshotter's log: the collection has no completion signal
done
grep -q "Remove key=k8s.io/[0-9]*/$cid$" "$work/snapshotter.log" \
  || fail "the container's snapshot was not removed: $(cat "$work/snapshotter.log")"
cp "$work/snapshotter.log" "$work/trace-remove.log"

content=$(ctr -n k8s.io content ls -q)
for l in "${layers[@]}"; do
  if grep -q "$l" <<< "$content"; then fail "layer $l is in the content store after the pod"; fi
done
ok "after the pod: still no layer in namespace k8s.io"

# ctr image pull with the coffer snapshotter: fetches every layer before unpacking (no CRI
# labels: the unpack is a host unpack, which an encrypted layer fails)
rc=0; ctr -n ctrpull images pull --plain-http --snapshotter coffer "$IMAGE" > ctr-pull.out 2>&1 \
  || rc=$?
fetched=0
for l in "${layers[@]}"; do
  ctr -n ctrpull content ls -q | grep -q "$l" && fetched=$((fetched + 1))
done
ok "ctr image pull --snapshotter coffer: exit $rc, $fetched/${#layers[@]} layers fetched to the host: $(tail -n1 ctr-pull.out)"

# by default the snapshotter refuses to unpack on the host what CRI did not guest-pull
rc=0; ctr -n strict images pull --plain-http --snapshotter coffer-strict "$REGISTRY/plain:v1" \
  > strict-pull.out 2>&1 || rc=$?
[[ $rc != 0 ]] && grep -q "host snapshots are disabled" strict-pull.out \
  || fail "a host unpack without --host-snapshots: rc $rc, $(cat strict-pull.out)"
[[ -z $(find "$work/strict/snapshots" -mindepth 1) ]] || fail "files left by a refused unpack"
ok "without --host-snapshots a host unpack is refused (FAILED_PRECONDITION)"

if [[ -n "${SNAPSHOTTER_TRACE:-}" ]]; then
  cat "$work/trace-pull.log" "$work/trace-create.log" "$work/trace-remove.log" \
    | tr -d '\0' > "$SNAPSHOTTER_TRACE"
fi
