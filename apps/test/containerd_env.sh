# Sourced by the Kubernetes-integration tests (docs/kubernetes.md), after trustee_env.sh and
# begin_test: a private containerd (Debian's 1.6) with its own config, root, state and sockets in
# $work/containerd; never the system instance. Its PATH starts with $BIN, so runtime type
# io.containerd.coffer.v2 finds $BIN/containerd-shim-coffer-v2.
#
# start_containerd [EXTRA_TOML_FILE]: writes $CTRD/config.toml (the CRI plugin with runtime
# handler "coffer" -> io.containerd.coffer.v2, host networking only: no CNI here), appends
# EXTRA_TOML_FILE (proxy_plugins, runtime options ...), starts containerd and waits for its socket.
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
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CTRD/cni-bin"
    conf_dir = "$CTRD/cni-conf"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "${CTRD_SNAPSHOTTER:-overlayfs}"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.coffer]
      runtime_type = "io.containerd.coffer.v2"
TOML
  if [[ $# -gt 0 ]]; then cat "$1" >> "$CTRD/config.toml"; fi
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
