# Sourced by the Kubernetes-integration tests (docs/kubernetes.md), after trustee_env.sh and
# begin_test: a private containerd (Debian's 1.6) with its own config, root, state and sockets in
# $work/containerd; never the system instance. Its PATH starts with $BIN, so runtime type
# io.containerd.coffer.v2 finds $BIN/containerd-shim-coffer-v2.
#
# start_containerd [EXTRA_TOML_FILE]: writes $CTRD/config.toml (the CRI plugin with runtime
# handler "coffer" -> io.containerd.coffer.v2, host networking only: no CNI here), appends
# EXTRA_TOML_FILE (proxy_plugins, runtime options ...), starts containerd and waits for its socket.
# With $REGISTRY set (start_registry), CRI pulls from it over plain HTTP (a certs.d hosts.toml).
# Afterwards: CTRD (the directory), CTRD_SOCK (gRPC socket), ctr() runs ctr against it,
# CTRD_LOG (its log). The process is in `pids`: end_test stops it.
start_containerd() {
  CTRD="$work/containerd"
  CTRD_SOCK="$CTRD/containerd.sock"
  CTRD_LOG="$CTRD/containerd.log"
  mkdir -p "$CTRD/root" "$CTRD/state" "$CTRD/opt" "$CTRD/cni-conf" "$CTRD/cni-bin"
  cat > "$CTRD/config.toml" <<TOML
version = 2
root = "$CTRD/root"
state = "$CTRD/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CTRD/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${CTRD_SANDBOX_IMAGE:-localhost/coffer-test/pause:1}"
  enable_cdi = false
  # the sandbox's default OOM score (-998) needs more than this test environment grants:
  # keep scores at or above containerd's own
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CTRD/cni-bin"
    conf_dir = "$CTRD/cni-conf"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "${CTRD_SNAPSHOTTER:-overlayfs}"
    # containerd 1.6 defaults to true: without the image's labels on each layer's snapshot
    # (containerd.io/snapshot/cri.image-ref ...), coffer-snapshotter cannot guest-pull
    disable_snapshot_annotations = false
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$CTRD/runc"  # runc's state beside ours, not the system instance's
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.coffer]
      runtime_type = "io.containerd.coffer.v2"
      # the pod's init-data and enclave kind reach the shim only if CRI passes them on
      pod_annotations = ["io.coffer.*"]
      container_annotations = ["io.coffer.*"]
TOML
  if [[ $# -gt 0 ]]; then cat "$1" >> "$CTRD/config.toml"; fi
  # pulls from the loopback registry (start_registry) over plain HTTP
  if [[ -n "${REGISTRY:-}" ]]; then
    mkdir -p "$CTRD/certs.d/$REGISTRY"
    printf 'server = "http://%s"\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' \
      "$REGISTRY" "$REGISTRY" > "$CTRD/certs.d/$REGISTRY/hosts.toml"
    printf '[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "%s"\n' \
      "$CTRD/certs.d" >> "$CTRD/config.toml"
  fi
  # CTRD_REGISTRY_ALIAS (e.g. 10.0.2.2:PORT, the registry as a VM guest names it): the host's
  # containerd reaches that name at $REGISTRY, so host and guest pull the same reference
  if [[ -n "${CTRD_REGISTRY_ALIAS:-}" ]]; then
    mkdir -p "$CTRD/certs.d/$CTRD_REGISTRY_ALIAS"
    printf 'server = "http://%s"\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' \
      "$REGISTRY" "$REGISTRY" > "$CTRD/certs.d/$CTRD_REGISTRY_ALIAS/hosts.toml"
  fi
  PATH="$BIN:$PATH" containerd --config "$CTRD/config.toml" > "$CTRD_LOG" 2>&1 &
  pids+=($!)
  local pid=$!
  for _ in $(seq 1 200); do
    [[ -S "$CTRD_SOCK" ]] && ctr version > /dev/null 2>&1 && return 0
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.05  # containerd has no readiness signal but its socket answering
  done
  echo "containerd did not start; its log:" >&2
  cat "$CTRD_LOG" >&2
  return 1
}

ctr() { command ctr --address "$CTRD_SOCK" "$@"; }

# import_sandbox_image: the pod sandbox image $CTRD_SANDBOX_IMAGE (default
# localhost/coffer-test/pause:1), built here as a tiny OCI image (busybox-static as /bin/sleep,
# command `sleep infinity`: a pause process) and imported into namespace k8s.io, unpacked into
# $CTRD_SNAPSHOTTER. Needs start_containerd first.
import_sandbox_image() {
  local name=${CTRD_SANDBOX_IMAGE:-localhost/coffer-test/pause:1} d="$work/sandbox-image"
  local tag=${name##*:}
  umoci init --layout "$d/P" > /dev/null
  umoci new --image "$d/P:$tag"
  umoci unpack --rootless --image "$d/P:$tag" "$d/B" > /dev/null
  mkdir -p "$d/B/rootfs/bin"
  cp /bin/busybox "$d/B/rootfs/bin/"
  ln -s busybox "$d/B/rootfs/bin/sleep"
  umoci repack --image "$d/P:$tag" "$d/B"
  umoci config --image "$d/P:$tag" --config.cmd /bin/sleep --config.cmd infinity
  tar -C "$d/P" -cf "$d/sandbox.tar" .
  ctr -n k8s.io image import --snapshotter "${CTRD_SNAPSHOTTER:-overlayfs}" \
    --base-name "${name%:*}" "$d/sandbox.tar" > /dev/null
  rm -rf "$d"
}

# cri ARGS...: the CRI test client (coffer-cri) against the private containerd.
cri() { "$BIN/coffer-cri" --address "unix://$CTRD_SOCK" "$@"; }

# cleanup_containerd: before end_test stops containerd, kills and deletes every task it runs (CRI
# pods too: namespace k8s.io) so that no shim or container outlives the test, then unmounts what
# is still mounted under $CTRD (a sandbox's /dev/shm, a rootfs). For the EXIT trap of a test:
#   trap 'cleanup_containerd; end_test' EXIT
cleanup_containerd() {
  [[ -n "${CTRD_SOCK:-}" && -S "$CTRD_SOCK" ]] || return 0
  local ns t m
  for ns in $(ctr namespaces ls -q 2> /dev/null); do
    for t in $(ctr -n "$ns" tasks ls -q 2> /dev/null); do
      ctr -n "$ns" tasks kill -s SIGKILL "$t" > /dev/null 2>&1 || true
      ctr -n "$ns" tasks delete -f "$t" > /dev/null 2>&1 || true
    done
  done
  # deepest first
  for m in $(awk -v d="$CTRD/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r); do
    umount -l "$m" 2> /dev/null || true
  done
}

# start_snapshotter NAME [OPTION...]: coffer-snapshotter on $work/NAME.sock with root $work/NAME
# (its stdout and log beside them), waits until it listens; the process is in `pids`.
start_snapshotter() {
  local name=$1
  shift
  "$BIN/coffer-snapshotter" --address "$work/$name.sock" --root "$work/$name" "$@" \
    > "$work/$name.out" 2>> "$work/$name.log" &
  pids+=($!)
  wait_for_line "$work/$name.out" "coffer-snapshotter listening on " "${pids[-1]}" > /dev/null
}

# container_exit_code ID: polls CRI's ContainerStatus until the container has exited; prints its
# exit code (or fails after 10 s with the last status).
container_exit_code() {
  local status
  for _ in $(seq 1 200); do
    status=$(cri ContainerStatus "{\"container_id\": \"$1\"}")
    if [[ $(jq -r .status.state <<< "$status") == CONTAINER_EXITED ]]; then
      jq -r .status.exit_code <<< "$status"
      return 0
    fi
    sleep 0.05  # polling the container's state: CRI has no wait call
  done
  echo "container $1 did not exit: $status" >&2
  return 1
}

# confidential_app MODE (process|vm), after start_https_trustee and start_registry, in $work:
# the owner's side of a confidential pod. A KBS secret default/app/greeting; a busybox image whose
# entrypoint /bin/show prints "kbs: <the secret>" (read from the workload API inside the enclave),
# "to stderr" on stderr, and exits 3 (tag v1) or sleeps (tag wait), encrypted for the KBS key
# default/image-key/app and cosign-signed, pushed as $REGISTRY/demo/app:{v1,wait}; the same image
# for a key the trustee does not have as demo/other:v1; the signature policy; the enclave image
# (MODE process: `coffer enclave build`; vm: a sim-tdx guest image) in $work/enclave, the
# init-data `coffer run --print-init-data` writes for it (base64 in $init_data), its reference
# values registered, and the shim's configuration ($COFFER_SHIM_CONFIG, run dir $work/shimrun).
# Sets ref_registry and kbs_url: the registry and trustee as the enclave reaches them (10.0.2.2
# from a VM guest).
confidential_app() {
  local mode=$1 identity
  if [[ $mode == vm ]]; then
    # QEMU's user networking: the host's loopback is 10.0.2.2 in the guest
    ref_registry=10.0.2.2:${REGISTRY##*:}
    kbs_url=${COFFER_KBS_URL/127.0.0.1/10.0.2.2}
    identity='{"type": "remapIdentity", "prefix": "'$ref_registry'/demo", "signedPrefix": "'$REGISTRY'/demo"}'
  else
    ref_registry=$REGISTRY
    kbs_url=$COFFER_KBS_URL
    identity='{"type": "matchRepository"}'
  fi

  # --- the owner's side: a secret, an encrypted and signed image, policies ----------------------
  printf 'kbs-secret-42' > greeting
  coffer kbs set-resource --path default/app/greeting --file greeting > /dev/null
  umoci init --layout L > /dev/null
  umoci new --image L:v1
  umoci unpack --rootless --image L:v1 B > /dev/null
  mkdir -p B/rootfs/bin
  cp /bin/busybox B/rootfs/bin/
  for t in sh echo wget sleep; do ln -s busybox "B/rootfs/bin/$t"; done
  cat > B/rootfs/bin/show <<'SH'
#!/bin/sh
echo "kbs: $(wget -qO- http://127.0.0.1:8006/cdh/resource/default/app/greeting)"
echo "to stderr" >&2
[ "$1" = wait ] && exec sleep 600
exit 3
SH
  chmod 755 B/rootfs/bin/show
  umoci repack --image L:v1 B
  umoci config --image L:v1 --config.entrypoint /bin/show
  umoci config --image L:v1 --tag wait --config.entrypoint /bin/show --config.cmd wait
  export COSIGN_PASSWORD='a long passphrase'
  coffer image keygen --output-key-prefix cosign > /dev/null
  coffer image copy --insecure-policy -q oci:L:v1 "docker://$REGISTRY/demo/app:v1" \
    --recipient kbs:///default/image-key/app --kbs-key-out app.key --sign-key cosign.key \
    --tls-verify=false > /dev/null
  coffer image copy --insecure-policy -q oci:L:wait "docker://$REGISTRY/demo/app:wait" \
    --recipient kbs:///default/image-key/app --kbs-key-in app.key --sign-key cosign.key \
    --tls-verify=false > /dev/null
  # the same image for a key the trustee never gets
  coffer image copy --insecure-policy -q oci:L:v1 "docker://$REGISTRY/demo/other:v1" \
    --recipient kbs:///default/image-key/other --kbs-key-out other.key --sign-key cosign.key \
    --tls-verify=false > /dev/null
  coffer kbs delete-resource --path default/image-key/other > /dev/null
  coffer kbs set-resource --path default/cosign-key/app --file cosign.pub > /dev/null
  cat > policy.json <<EOF
{
  "default": [{"type": "reject"}],
  "transports": {
    "docker": {
      "$ref_registry/demo": [
        {"type": "sigstoreSigned", "keyPath": "kbs:///default/cosign-key/app",
         "signedIdentity": $identity}
      ]
    }
  }
}
EOF
  coffer kbs set-resource --path default/security-policy/app --file policy.json > /dev/null
  # the image policy and the cosign key are public; keys and secrets need an affirming appraisal
  cat > resource.rego <<'EOF'
package policy

import rego.v1

default allow := false

allow if data["resource-path"][1] in {"security-policy", "cosign-key"}

allow if {
	count(input.submods) > 0
	every submod in input.submods {
		submod["ear.status"] == "affirming"
	}
}
EOF
  coffer kbs set-resource-policy --file resource.rego > /dev/null

  # --- the enclave, its init-data and reference values -----------------------------------------
  if [[ $mode == vm ]]; then
    coffer guest-image build --agent "$BIN/coffer-agent" --init "$BIN/coffer-guest-init" \
      --tee sim-tdx --out enclave > /dev/null
    image_opts=(--enclave vm --guest-image enclave)
  else
    coffer enclave build --agent "$BIN/coffer-agent" --out enclave > /dev/null
    image_opts=(--enclave process --enclave-image enclave)
  fi
  coffer run --tee sim-tdx "${image_opts[@]}" --sim-dir "$SIM" \
    --trustee "$kbs_url" --kbs-ca-file "$COFFER_KBS_CA_FILE" --insecure-registry "$ref_registry" \
    --require-encrypted --image-policy kbs:///default/security-policy/app --print-init-data \
    > init-data.toml
  if [[ $mode == vm ]]; then
    coffer sim measure --kernel enclave/vmlinuz --initrd enclave/initrd \
      --cmdline "$(cat enclave/cmdline)" --init-data init-data.toml --format rvps > rv.json
  else
    coffer enclave measure enclave --init-data init-data.toml --format rvps > rv.json
  fi
  coffer kbs set-reference-values --file rv.json > /dev/null
  init_data=$(base64 -w0 init-data.toml)

  # --- the shim's configuration ---------------------------------------------------------------
  cat > shim.toml <<EOF
enclave = "$mode"
tee = "sim-tdx"
$([[ $mode == vm ]] && echo guest_image || echo enclave_image) = "$work/enclave"
sim_dir = "$SIM"
run_dir = "$work/shimrun"
EOF
  export COFFER_SHIM_CONFIG="$work/shim.toml"
}
