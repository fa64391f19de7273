#!/usr/bin/env bash
# The SGX-style two-enclave flow end to end (docs/two-enclave.md), through the real executables:
# an HTTPS coffer-trustee trusting the simulated TEE, an encrypted image on a loopback registry,
# the agent enclave (coffer-agent, sim-sgx) and the app enclave (coffer-app-enclave), both signed
# by one RSA-3072 signer with one ISVPRODID.
#  - seal mode and local-attestation mode: the workload runs from the encrypted filesystem, its
#    output and exit code come back, a write inside works (the writable layer);
#  - the host storage holds no plaintext of the image (a marker string and busybox's banner);
#  - refusals: an app enclave of another signer cannot unseal / is refused by the agent; an agent
#    enclave that is changed (another file) is refused the image key by the trustee; an unsigned
#    agent enclave does not launch.
# Usage: run_sgx.sh BIN_DIR (coffer, coffer-trustee, coffer-agent, coffer-app-enclave)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=apps/test/trustee_env.sh
. "$here/trustee_env.sh"
begin_test run_sgx "$1"

start_https_trustee
start_registry
cd "$work"

# the image: busybox-static with a marker file; the command prints it, writes into the root and
# exits 7
marker="coffer-plaintext-marker-$(openssl rand -hex 8)"
busybox_layout
mkdir -p B/rootfs/etc B/rootfs/tmp
echo "$marker" > B/rootfs/etc/marker
umoci repack --image L:v1 B
push_encrypted v1 'cat /etc/marker; echo layer > /etc/written; cat /etc/written; exit 7' \
  default/image-key/sgx --config.env PATH=/bin
image="docker://$REGISTRY/enc:v1"

# the two enclave images, one signer and product
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out signer.pem 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out other.pem 2>/dev/null
coffer enclave build --agent "$BIN/coffer-agent" --out agent-enclave > /dev/null
coffer enclave build --agent "$BIN/coffer-app-enclave" --no-crun --out app-enclave > /dev/null
coffer enclave build --agent "$BIN/coffer-app-enclave" --no-crun --out app-other > /dev/null
opts=(--tee sim-sgx --enclave-image agent-enclave --app-enclave-image app-enclave
      --sim-dir "$SIM" --trustee "$COFFER_KBS_URL" --kbs-ca-file "$COFFER_KBS_CA_FILE"
      --insecure-registry "$REGISTRY" --require-encrypted)

# 1. an unsigned agent enclave does not launch
set +e
msg=$(coffer run -q "${opts[@]}" "$image" 2>&1); rc=$?
set -e
[[ $rc -ne 0 && "$msg" == *"is not signed"* ]] || fail "unsigned agent enclave (rc $rc): $msg"
ok "an unsigned agent enclave does not launch"

coffer enclave sign --key signer.pem --isv-prod-id 7 --isv-svn 2 agent-enclave > /dev/null
coffer enclave sign --key signer.pem --isv-prod-id 7 --isv-svn 2 app-enclave > /dev/null
coffer enclave sign --key other.pem --isv-prod-id 7 --isv-svn 2 app-other > /dev/null
coffer enclave measure agent-enclave --tee sim-sgx --format rvps > rv.json
coffer kbs set-reference-values --file rv.json > /dev/null

# 2. seal mode: key released to the agent enclave, bundle exported encrypted, the app enclave
# unseals the filesystem key and runs the entrypoint
set +e
out=$(coffer run "${opts[@]}" "$image" 2> err.txt); rc=$?
set -e
sed 's/^/    /' err.txt
[[ $rc -eq 7 ]] || fail "seal mode: exit code $rc, output '$out': $(cat err.txt)"
[[ "$out" == "$marker"$'\n'"layer" ]] || fail "seal mode output: '$out'"
grep -q "unsealed (MRSIGNER policy)" err.txt || fail "seal mode progress: $(cat err.txt)"
ok "seal mode: the workload runs from the encrypted filesystem (exit 7, writable layer)"

if [[ -n "${COFFER_SGX_BENCH:-}" ]]; then  # bench/run_sgx_cold_start.sh
  for mode in seal local; do
    echo "benchmark: $COFFER_SGX_BENCH cold starts of coffer run --tee sim-sgx --key-handover $mode"
    rm -f bench.txt
    for i in $(seq 1 "$COFFER_SGX_BENCH"); do
      t0=$(date +%s%N)
      set +e
      coffer run "${opts[@]}" --key-handover "$mode" "$image" > bench.out 2> bench.err; rc=$?
      set -e
      t1=$(date +%s%N)
      [[ $rc -eq 7 ]] || fail "bench run $i: $(cat bench.err)"
      printf 'total %s\n' "$(( (t1 - t0) / 1000 ))" >> bench.txt
      sed -n 's/^coffer run: \(enclave up\|pulled\|bundle\|app enclave\).*(\([0-9.]*\) s)$/\1 \2/p' \
        bench.err >> bench.txt
    done
    /usr/bin/python3 - bench.txt << 'PY'
import collections, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, value = line.rsplit(" ", 1)
    rows[name].append(float(value) / 1000 if name == "total" else float(value) * 1000)
def pct(v, p):
    v = sorted(v); return v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))]
names = {"total": "total (wall, first output and exit)",
         "enclave up": "agent enclave launch+attest",
         "pulled": "pull+key+decrypt+unpack",
         "bundle": "export into the efs (+seal)",
         "app enclave": "app enclave: key+mount+start"}
for key, label in names.items():
    v = rows[key]
    print(f"  {label:38s} p50 {pct(v, .5):7.1f} ms  p90 {pct(v, .9):7.1f} ms  max {max(v):7.1f} ms  (n={len(v)})")
PY
  done
  exit 0
fi

# 3. local attestation mode
set +e
out=$(coffer run -q "${opts[@]}" --key-handover local "$image" 2> err.txt); rc=$?
set -e
[[ $rc -eq 7 && "$out" == "$marker"$'\n'"layer" ]] ||
  fail "local mode: rc $rc, output '$out': $(cat err.txt)"
ok "local attestation mode: the agent enclave hands the key to the app enclave"

# 4. the host storage holds only ciphertext: a detached run, scanned after it exited
id=$(coffer run -q -d "${opts[@]}" "$image")
for _ in $(seq 1 400); do
  coffer ps -a | grep -q "^$id .* exited" && break
  sleep 0.05  # polling the supervisor's state file: the CLI has no wait command
done
coffer ps -a | grep -q "^$id .* exited" || fail "the detached run did not exit: $(coffer ps -a)"
[[ "$(coffer logs "$id")" == "$marker"$'\n'"layer" ]] || fail "detached run: $(coffer logs "$id")"
storage="$COFFER_RUN_DIR/$id/storage"
[[ -d "$storage" ]] || fail "no storage at $storage: $(ls -R "$COFFER_RUN_DIR/$id")"
n=$(find "$storage" -type f | wc -l)
[[ $n -gt 3 ]] || fail "storage holds only $n files"
if grep -rqa -e "$marker" -e "BusyBox v" "$storage"; then
  fail "plaintext of the image on the host storage: $(grep -rla -e "$marker" -e "BusyBox v" "$storage")"
fi
grep -q '"format": *"coffer-efs-sealed-key-v1"' "$storage/$id/sealed-key.json" ||
  fail "no sealed key file: $(ls -R "$storage")"
coffer rm "$id" > /dev/null
ok "the host storage ($n files) holds no plaintext of the image"

# 5. an app enclave of another signer: cannot unseal; refused by the agent enclave
oopts=("${opts[@]}")
oopts[5]=app-other
set +e
msg=$(coffer run -q "${oopts[@]}" "$image" 2>&1); rc=$?
set -e
echo "  other signer, seal: $msg"
[[ $rc -ne 0 && "$msg" == *"unseal_failed"* ]] || fail "other signer, seal (rc $rc): $msg"
set +e
msg=$(coffer run -q "${oopts[@]}" --key-handover local "$image" 2>&1); rc=$?
set -e
echo "  other signer, local: $msg"
[[ $rc -ne 0 && "$msg" == *"peer_refused"* ]] || fail "other signer, local (rc $rc): $msg"
ok "an app enclave of another signer gets no key (sealing and local attestation)"

# 6. a changed agent enclave (one more file: another MRENCLAVE), signed by the same signer: the
# trustee's policy affirms only the registered MRENCLAVE
coffer enclave build --agent "$BIN/coffer-agent" --file /etc/hostname --out agent-changed > /dev/null
coffer enclave sign --key signer.pem --isv-prod-id 7 --isv-svn 2 agent-changed > /dev/null
copts=("${opts[@]}")
copts[3]=agent-changed
set +e
msg=$(coffer run -q "${copts[@]}" "$image" 2>&1); rc=$?
set -e
echo "  changed agent enclave: $msg"
[[ $rc -eq 1 && "$msg" == *"pulling the image: the trustee refused the image key"* ]] ||
  fail "changed agent enclave (rc $rc): $msg"
# ... and the same agent enclave signed by another signer (same MRENCLAVE, another MRSIGNER)
cp -a agent-enclave agent-resigned
coffer enclave sign --key other.pem --isv-prod-id 7 --isv-svn 2 agent-resigned > /dev/null
copts[3]=agent-resigned
set +e
msg=$(coffer run -q "${copts[@]}" "$image" 2>&1); rc=$?
set -e
[[ $rc -eq 1 && "$msg" == *"pulling the image: the trustee refused the image key"* ]] ||
  fail "agent enclave of another signer (rc $rc): $msg"
ok "the trustee refuses a changed agent enclave and one of another signer"
[[ -z "$(ls -A rundir)" ]] || fail "run directory not empty: $(ls rundir)"
echo "run_sgx: ok"
