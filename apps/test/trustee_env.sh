# Sourced by the end-to-end tests (image_kbs_cli.sh, doctest.sh, agent_*.sh, run_*.sh, ...):
# starts, in $work, an HTTPS coffer-trustee whose certificate is issued by a private test CA and
# which trusts a simulated TEE PKI, and (optionally) a loopback docker-registry. Needs $BIN (the
# directory of coffer and coffer-trustee) and $work; background PIDs go to the array `pids`.
# After start_https_trustee: COFFER_KBS_URL, COFFER_KBS_CA_FILE, COFFER_KBS_ADMIN_KEY are
# exported, the development attestation policy is installed, and $SIM is the sim PKI directory.
# The certificate names localhost, 127.0.0.1 and 10.0.2.2 (the host as a QEMU guest sees it:
# the VM enclave, run_vm.sh); TRUSTEE_SAMPLE=1 also enables the sample TEE.

# The common start of an end-to-end script, after sourcing this file: BIN from BIN_DIR, a private
# $work (removed at exit, after the background processes in `pids` are stopped), fail/ok
# messages prefixed with NAME, coffer() running $BIN/coffer, and COFFER_RUN_DIR in $work.
begin_test() {  # NAME BIN_DIR
  TEST_NAME=$1
  BIN=$(cd "$2" && pwd)
  work=$(mktemp -d "/tmp/coffer-$1.XXXXXX")
  pids=()
  trap end_test EXIT
  export COFFER_RUN_DIR="$work/rundir"
  fail() { echo "$TEST_NAME: FAIL: $*" >&2; exit 1; }
  ok() { echo "$TEST_NAME: ok: $*"; }
  coffer() { "$BIN/coffer" "$@"; }
}
end_test() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}

# In $work: an OCI layout L with image L:v1 holding busybox-static as /bin/busybox and /bin/sh
# (umoci). The unpacked bundle stays in B for callers that add files and then
# `umoci repack --image L:v1 B`.
busybox_layout() {
  umoci init --layout L > /dev/null
  umoci new --image L:v1
  umoci unpack --rootless --image L:v1 B > /dev/null
  mkdir -p B/rootfs/bin
  cp /bin/busybox B/rootfs/bin/
  ln -s busybox B/rootfs/bin/sh
  umoci repack --image L:v1 B
}

# L:v1 with the command `sh -c CMD` (and any further `umoci config` options) as L:TAG, encrypted
# for the KBS key kbs:///RESOURCE (a new key, stored in the trustee; also in $work/TAG.key) and
# pushed to $REGISTRY/enc:TAG.
push_encrypted() {  # TAG CMD RESOURCE [UMOCI_CONFIG_OPTION...]
  local tag=$1 cmd=$2 resource=$3
  shift 3
  local retag=()
  [[ "$tag" == v1 ]] || retag=(--tag "$tag")
  umoci config --image L:v1 "${retag[@]}" --config.cmd /bin/sh --config.cmd -c \
    --config.cmd "$cmd" "$@"
  "$BIN/coffer" image encrypt --quiet "oci:L:$tag" "oci:enc:$tag" \
    --recipient "kbs:///$resource" --kbs-key-out "$tag.key" 2> /dev/null
  "$BIN/coffer" image copy --insecure-policy -q --insecure-registry "$REGISTRY" \
    "oci:enc:$tag" "docker://$REGISTRY/enc:$tag" > /dev/null
}

# Waits until FILE holds a line starting with PREFIX (printed by process PID); prints the rest.
wait_for_line() {
  local file=$1 prefix=$2 pid=$3 value=""
  for _ in $(seq 1 400); do
    [[ -f "$file" ]] && value=$(sed -n "s|^${prefix}||p" "$file" | head -n1)
    [[ -n "$value" ]] && { echo "$value"; return 0; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05  # polling a child's output file: there is no other readiness signal
  done
  echo "process $pid did not report '$prefix'; its output:" >&2
  cat "$file" "${file%/*}"/*log* >&2 2>/dev/null || true
  return 1
}

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_https_trustee() {
  mkdir -p -m 700 "$work/trustee"
  local t="$work/trustee"
  # a private CA and a server certificate for 127.0.0.1, as an organisation's own PKI would issue
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$t/ca.key" \
    -out "$t/ca.pem" -days 2 -subj "/CN=coffer test CA" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$t/tls.key" \
    -out "$t/tls.csr" -subj "/CN=127.0.0.1" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:10.0.2.2\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
    > "$t/ext.cnf"
  openssl x509 -req -in "$t/tls.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial \
    -out "$t/tls.crt" -days 2 -extfile "$t/ext.cnf" 2>/dev/null
  SIM="$work/sim"
  "$BIN/coffer" sim init --dir "$SIM" --rsa-bits 2048 > /dev/null
  "$BIN/coffer" kbs keygen --out "$t/admin.key" > /dev/null
  cat > "$t/trustee.toml" <<TOML
[http_server]
sockets = ["127.0.0.1:0"]
private_key = "tls.key"
certificate = "tls.crt"

[admin]
auth_public_keys = ["admin.key.pub"]

[attestation_service.verifier.tdx]
trusted_roots = ["$SIM/intel/root_ca.pem"]
collateral_dir = "$SIM/intel/collateral"

[attestation_service.verifier.sgx]
trusted_roots = ["$SIM/intel/root_ca.pem"]
collateral_dir = "$SIM/intel/collateral_sgx"

[attestation_service.verifier.snp]
trusted_roots = ["$SIM/amd/ask_ark.pem"]
crl_dir = "$SIM/amd/crl"

[storage_backend]
type = "sqlite"
path = "trustee.db"
TOML
  # TRUSTEE_SAMPLE=1: also accept the sample TEE (tests of the CLI's error paths only)
  if [[ "${TRUSTEE_SAMPLE:-0}" == 1 ]]; then
    printf '\n[attestation_service.verifier.sample]\nenabled = true\n' >> "$t/trustee.toml"
  fi
  "$BIN/coffer-trustee" --config "$t/trustee.toml" --log-level warn > "$t/out" 2> "$t/log" &
  pids+=($!)
  COFFER_KBS_URL=$(wait_for_line "$t/out" "coffer-trustee listening on " "${pids[-1]}")
  export COFFER_KBS_URL COFFER_KBS_CA_FILE="$t/ca.pem" COFFER_KBS_ADMIN_KEY="$t/admin.key"
  export SIM
  "$BIN/coffer" kbs set-attestation-policy --builtin development > /dev/null
}

# A loopback docker-registry (plain HTTP); exports REGISTRY=127.0.0.1:PORT.
start_registry() {
  mkdir -p "$work/registry"
  local port
  port=$(free_port)
  cat > "$work/registry/config.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry/data
http:
  addr: 127.0.0.1:$port
YML
  docker-registry serve "$work/registry/config.yml" > "$work/registry/log" 2>&1 &
  pids+=($!)
  REGISTRY=127.0.0.1:$port
  export REGISTRY
  for _ in $(seq 1 300); do
    curl -sf "http://$REGISTRY/v2/" > /dev/null && return 0
    sleep 0.05  # readiness polling of the registry's HTTP port
  done
  echo "docker-registry did not start:" >&2
  cat "$work/registry/log" >&2
  return 1
}

# A root filesystem of Debian's busybox-static in DIR: DIR/bin/busybox and a symlink for each
# TOOL (for `coffer image build --from-dir DIR`).
busybox_rootfs() {
  local dir=$1 t
  shift
  mkdir -p "$dir/bin"
  cp /bin/busybox "$dir/bin/"
  for t in "$@"; do ln -s busybox "$dir/bin/$t"; done
}
