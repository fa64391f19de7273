#!/usr/bin/env bash
# coffer-agent's attested flow end to end, through the real executables:
#   the simulated TEE's quote service (the enclave = the coffer-agent binary + a rootfs manifest,
#   its init-data bound in MRCONFIGID), an HTTPS coffer-trustee (sim roots, development policy,
#   the enclave's reference values, the image key, the image signature policy, the cosign public
#   key, a sealed-secret verification key and two secrets as resources), a loopback
#   docker-registry holding a busybox-static image encrypted with the KBS key and cosign-signed.
# `coffer agent-ctl` pulls the image, creates a sandbox and a container and starts it; the
# container prints a KBS secret it fetches from 127.0.0.1:8006 (the workload API in its
# sandbox's network namespace), a sealed secret from its environment, another from a mounted
# file, and its own evidence's event log (the agent measured the pull and the create into
# RTMR3); output and exit code come back through the API.
# Then the refusals, each with its reason and nothing of the refused image left in the agent's
# storage: an unsigned image, a tampered layer, the trustee refusing the key to an enclave with a
# changed measurement, an init-data that the TEE does not bind (the agent stops before serving).
# Usage: agent_attested.sh BIN_DIR (holding coffer, coffer-trustee and coffer-agent)
set -euo pipefail
BIN=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/coffer-agent-attested.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
fail() {
  echo "agent_attested: $*" >&2
  for f in agent*.log qs*.log trustee/log; do [[ -f $f ]] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }; done
  exit 1
}
step() { echo "agent_attested: $*"; }
# shellcheck source=trustee_env.sh
source "$HERE/trustee_env.sh"
export PATH="$BIN:$PATH"

start_https_trustee
start_registry

# --- the owner's side: secrets, image, signature, policies -----------------------------------
step "resources: secrets, sealed-secret key"
printf 'kbs-secret-42' > greeting
coffer kbs set-resource --path default/app/greeting --file greeting > /dev/null
printf 'sealed-env-value' > env-secret
coffer kbs set-resource --path default/app/env-secret --file env-secret > /dev/null
printf 'sealed-file-value' > file-secret
coffer kbs set-resource --path default/app/file-secret --file file-secret > /dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out seal.key 2> /dev/null
coffer secret verification-key --signing-key seal.key > seal.jwk
coffer kbs set-resource --path default/sealed-secret-key/1 --file seal.jwk > /dev/null
seal() {
  coffer secret seal --signing-key seal.key --kid kbs:///default/sealed-secret-key/1 --resource "$1"
}
sealed_env=$(seal kbs:///default/app/env-secret)
seal kbs:///default/app/file-secret > sealed-file

step "image: busybox-static, encrypted for kbs:///default/image-key/app, cosign-signed"
umoci init --layout L > /dev/null
umoci new --image L:v1
umoci unpack --rootless --image L:v1 B > /dev/null
mkdir -p B/rootfs/bin B/rootfs/run/secrets
cp /bin/busybox B/rootfs/bin/
for t in sh echo cat wget grep; do ln -s busybox "B/rootfs/bin/$t"; done
cat > B/rootfs/bin/show <<'SH'
#!/bin/sh
echo "kbs: $(wget -qO- http://127.0.0.1:8006/cdh/resource/default/app/greeting)"
echo "env: $API_TOKEN"
echo "file: $(cat /run/secrets/token)"
evidence=$(wget -qO- 'http://127.0.0.1:8006/aa/evidence?runtime_data=hello' 2>&1)
case "$evidence" in
  *create_container*) echo "evidence: create_container measured" ;;
  *) echo "evidence: $evidence" | head -c 300 ;;
esac
exit 3
SH
chmod 755 B/rootfs/bin/show
umoci repack --image L:v1 B
umoci config --image L:v1 --config.entrypoint /bin/show --config.env "API_TOKEN=$sealed_env"
export COSIGN_PASSWORD='a long passphrase'
coffer image keygen --output-key-prefix cosign > /dev/null
coffer image copy --insecure-policy -q oci:L:v1 "docker://$REGISTRY/demo/app:v1" \
  --recipient kbs:///default/image-key/app --kbs-key-out app.key --sign-key cosign.key \
  --tls-verify=false > /dev/null
image="docker://$REGISTRY/demo/app:v1"

coffer kbs set-resource --path default/cosign-key/app --file cosign.pub > /dev/null
cat > policy.json <<EOF
{
  "default": [{"type": "reject"}],
  "transports": {
    "docker": {
      "$REGISTRY/demo": [
        {"type": "sigstoreSigned", "keyPath": "kbs:///default/cosign-key/app",
         "signedIdentity": {"type": "matchRepository"}}
      ]
    }
  }
}
EOF
coffer kbs set-resource --path default/security-policy/app --file policy.json > /dev/null
# The image policy and the cosign key are public; keys and secrets need an affirming appraisal.
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

# --- the enclave: init-data, measurement, reference values ----------------------------------
step "enclave: init-data, reference values, quote service"
# The agent policy: the lifecycle, and one override: the sealed file mounted read-only.
{
  echo 'package agent_policy'
  echo 'import rego.v1'
  for m in CreateSandbox RemoveSandbox StartContainer WaitProcess SignalProcess RemoveContainer \
    ContainerState ListContainers ContainerStats WriteStdin CloseStdin ReadOutput ResizeTty \
    PullImage GuestDetails Health; do
    echo "default ${m}Request := true"
  done
  cat <<EOF
default ExecProcessRequest := false
default CreateContainerRequest := false
allowed_mount := {"destination": "/run/secrets/token", "type": "bind",
  "source": "$work/sealed-file", "options": ["rbind", "ro"]}
CreateContainerRequest if {
	not input.request.entrypoint
	not input.request.command
	count(input.request.env) == 0
	not input.request.working_dir
	not input.request.user
	input.request.privileged == false
	denied := [m | some m in input.request.mounts; m != allowed_mount]
	count(denied) == 0
}
EOF
} > agent-policy.rego
cat > init.toml <<TOML
version = "0.1.0"
algorithm = "sha384"
[data]
"aa.toml" = '''
[token_configs.kbs]
url = "$COFFER_KBS_URL"
cert = """
$(cat "$COFFER_KBS_CA_FILE")
"""
'''
"cdh.toml" = '''
[kbc]
name = "cc_kbc"
url = "$COFFER_KBS_URL"
[image]
image_security_policy_uri = "kbs:///default/security-policy/app"
insecure_registries = ["$REGISTRY"]
require_encrypted_layers = true
[sealed_secret]
verification_keys = ["kbs:///default/sealed-secret-key/1"]
'''
"policy.rego" = '''
$(cat agent-policy.rego)
'''
TOML
printf 'coffer-agent enclave rootfs manifest (test)\n' > rootfs.manifest
enclave=(--agent "$BIN/coffer-agent" --rootfs-manifest rootfs.manifest)
coffer sim measure "${enclave[@]}" --init-data init.toml --format rvps > rv.json
coffer kbs set-reference-values --file rv.json > /dev/null

start_enclave() {  # NAME INIT_DATA_FOR_THE_TEE INIT_DATA_FOR_THE_AGENT [AGENT_FILE_MEASURED]
  local name=$1 bound=$2 given=$3 measured=${4:-$BIN/coffer-agent}
  coffer sim quote-service --dir "$SIM" --socket "$work/$name-qs.sock" --agent "$measured" \
    --rootfs-manifest rootfs.manifest --init-data "$bound" 2> "qs-$name.log" &
  pids+=($!)
  for _ in $(seq 1 200); do
    [[ -S "$work/$name-qs.sock" ]] && break
    sleep 0.05  # readiness polling of the quote service's socket
  done
  coffer-agent --socket "$work/$name.sock" --tee sim-tdx --quote-service "$work/$name-qs.sock" \
    --init-data "$given" --state-dir "$work/state-$name" > "agent-$name.log" 2>&1 &
  pids+=($!)
  agent_pid=$!
  for _ in $(seq 1 400); do
    [[ -S "$work/$name.sock" ]] && return 0
    kill -0 "$agent_pid" 2> /dev/null || return 1
    sleep 0.05  # readiness polling of the agent's socket
  done
  return 1
}
# Lists what the agent's image storage holds (cached images and any leftover staging dirs).
storage() { find "$work/state-$1/images" -mindepth 2 -maxdepth 2 -printf '%f\n' 2> /dev/null | sort; }

# --- the attested run ---------------------------------------------------------------------
step "agent: attests, pulls, decrypts, runs"
start_enclave good init.toml init.toml || fail "the agent did not start"
ctl() { "$BIN/coffer" agent-ctl --socket "$work/good.sock" "$@"; }
ctl guest-details | grep -q '"tee":"tdx"' || fail "guest-details: $(ctl guest-details)"
pulled=$(ctl --timeout 120 pull "$image") || fail "pull"
digest=$(sed -n 's/.*"manifest_digest":"\(sha256:[0-9a-f]*\)".*/\1/p' <<< "$pulled")
[[ -n "$digest" ]] || fail "no digest in: $pulled"
ctl create-sandbox s1 > /dev/null
ctl create-container c1 --sandbox s1 --image "$image" \
  --mount "/run/secrets/token:bind:$work/sealed-file:rbind,ro" > /dev/null || fail "create"
ctl start c1 > /dev/null
exit_json=$(ctl --timeout 60 wait c1)
out=$(ctl read-output c1 --raw)
expected="kbs: kbs-secret-42
env: sealed-env-value
file: sealed-file-value
evidence: create_container measured"
[[ "$out" == "$expected" ]] || fail "output: '$out'"
[[ "$exit_json" == *'"exit_code":3'* ]] || fail "wait: $exit_json"
# the plaintext of the sealed file exists only in the agent's state while the container exists
grep -rqs sealed-file-value "$work/state-good/secrets" || fail "no unsealed file in the state"
ctl remove c1 > /dev/null
! grep -rqs sealed-file-value "$work/state-good/secrets" || fail "the unsealed file outlived c1"
# the workload API is in the sandbox's network namespace, not in the agent's
! curl -s --max-time 2 http://127.0.0.1:8006/aa/token > /dev/null 2>&1 ||
  fail "the workload API answers in the agent's network namespace"
# the secrets never reach the agent's log
! grep -q -e kbs-secret-42 -e sealed-env-value -e sealed-file-value agent-good.log ||
  fail "a secret is in the agent's log"
[[ "$(storage good)" == "sha256-${digest#sha256:}" ]] || fail "storage: $(storage good)"

step "refusal: a sealed secret signed by another key"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.key 2> /dev/null
coffer secret seal --signing-key other.key --kid kbs:///default/sealed-secret-key/1 \
  --resource kbs:///default/app/file-secret > sealed-file
rc=0
msg=$(ctl create-container c2 --sandbox s1 --image "$image" \
  --mount "/run/secrets/token:bind:$work/sealed-file:rbind,ro" 2>&1) || rc=$?
[[ $rc -eq 1 && "$msg" == *PERMISSION_DENIED* && "$msg" == *sealed_secret_signature* ]] ||
  fail "a forged sealed secret was not refused (rc $rc): $msg"
ctl state c2 > /dev/null 2>&1 && fail "c2 exists"
step "refused as expected: $msg"
# coffer secret's own refusals: a public key, a kid that is not kbs:///R/T/G
openssl pkey -in seal.key -pubout -out seal.pub 2> /dev/null
rc=0; msg=$(coffer secret seal --signing-key seal.pub --kid kbs:///default/sealed-secret-key/1 \
  --resource kbs:///default/app/x 2>&1) || rc=$?
[[ $rc -ne 0 && "$msg" == *"private key"* ]] || fail "sealing with a public key (rc $rc): $msg"
rc=0; msg=$(coffer secret seal --signing-key seal.key --kid kbs:///default/../1 \
  --resource kbs:///default/app/x 2>&1) || rc=$?
[[ $rc -eq 2 && "$msg" == *bad_argument* ]] || fail "a bad kid (rc $rc): $msg"

# --- refusals ------------------------------------------------------------------------------
expect_refused() {  # NAME IMAGE PATTERN...
  local name=$1 ref=$2 rc=0 msg
  shift 2
  msg=$("$BIN/coffer" agent-ctl --socket "$work/$name.sock" --timeout 120 pull "$ref" 2>&1) || rc=$?
  [[ $rc -ne 0 ]] || fail "$ref was pulled: $msg"
  for p in "$@"; do [[ "$msg" == *"$p"* ]] || fail "refusal of $ref does not say '$p': $msg"; done
  step "refused as expected: $msg"
}

step "refusal: an unsigned image under sigstoreSigned"
coffer image copy --insecure-policy -q oci:L:v1 "docker://$REGISTRY/demo/app:unsigned" \
  --recipient kbs:///default/image-key/app --kbs-key-in app.key --tls-verify=false > /dev/null
expect_refused good "docker://$REGISTRY/demo/app:unsigned" PERMISSION_DENIED no_valid_signature
[[ "$(storage good)" == "sha256-${digest#sha256:}" ]] || fail "storage after unsigned: $(storage good)"

step "refusal: a tampered layer"
coffer image copy --insecure-policy -q oci:L:v1 "docker://$REGISTRY/demo/tampered:v1" \
  --recipient kbs:///default/image-key/app --kbs-key-in app.key --sign-key cosign.key \
  --tls-verify=false > /dev/null
layer=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://$REGISTRY/v2/demo/tampered/manifests/v1" |
  /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["digest"])')
hex=${layer#sha256:}
blob="$work/registry/data/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data"
[[ -f "$blob" ]] || fail "no blob file $blob"
/usr/bin/python3 - "$blob" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0x01
open(p, "wb").write(bytes(b))
PY
expect_refused good "docker://$REGISTRY/demo/tampered:v1" digest
[[ "$(storage good)" == "sha256-${digest#sha256:}" ]] || fail "storage after tampered: $(storage good)"

step "refusal: the trustee refuses the key to an enclave with a changed measurement"
cp "$BIN/coffer-agent" changed-agent
printf '\0' >> changed-agent
start_enclave changed init.toml init.toml "$work/changed-agent" || fail "the changed agent did not start"
expect_refused changed "$image" "image-key" "not affirming" "executables"
[[ -z "$(storage changed)" ]] || fail "storage of the changed enclave: $(storage changed)"

step "refusal: init-data that the TEE does not bind"
sed 's/require_encrypted_layers = true/require_encrypted_layers = false/' init.toml > other.toml
if start_enclave mismatch init.toml other.toml; then fail "the agent served with unbound init-data"; fi
wait "$agent_pid" 2> /dev/null && fail "the agent exited 0" || true
grep -q init_data_mismatch agent-mismatch.log || fail "no init_data_mismatch: $(cat agent-mismatch.log)"
[[ ! -e "$work/mismatch.sock" && -z "$(storage mismatch)" ]] || fail "mismatch left state"
step "refused as expected: $(grep init_data_mismatch agent-mismatch.log | tail -n1)"

ctl remove-sandbox s1 > /dev/null
echo "agent_attested: ok"
