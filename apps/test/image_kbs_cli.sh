#!/usr/bin/env bash
# `coffer image` with a KBS, end to end through the real executables, against an HTTPS
# coffer-trustee whose certificate comes from a private test CA (issue 12 items 1, 2, 7, 10):
#  - the KBS options (--kbs-url/--kbs-ca-file/--kbs-admin-key and COFFER_KBS_*) reach an HTTPS
#    trustee from `image encrypt` and `image copy --recipient kbs:///...`;
#  - unpack, decrypt and copy fetch kbs:/// keys by attesting with the simulated TEE;
#  - the old meaning-clashing spellings are refused with a message naming the right option;
#  - the system policy.json default, --insecure-policy, --quiet, no config blob in the progress,
#    `kbs attest --decode`, `image keygen` on a terminal.
# Usage: image_kbs_cli.sh BIN_DIR
set -euo pipefail
BIN=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/coffer-image-kbs.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=apps/test/trustee_env.sh
. "$here/trustee_env.sh"
coffer() { "$BIN/coffer" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
# expect RC WANT-IN-STDERR CMD...: runs CMD, checks its exit code and that stderr holds WANT
expect() {
  local want_rc=$1 want=$2; shift 2
  set +e
  "$@" > "$work/out" 2> "$work/err"
  local rc=$?
  set -e
  if [[ $rc -ne $want_rc ]] || ! grep -qF -- "$want" "$work/err"; then
    echo "$*: expected exit $want_rc and '$want', got $rc; stderr:" >&2
    cat "$work/err" >&2
    exit 1
  fi
}

start_https_trustee
cd "$work"
# without the CA the HTTPS trustee is not trusted: the CA option is what makes it work
expect 3 "certificate" env -u COFFER_KBS_CA_FILE "$BIN/coffer" kbs get-resource-policy
coffer kbs get-resource-policy > /dev/null
# the same through the prefixed spellings, without the environment
env -u COFFER_KBS_URL -u COFFER_KBS_CA_FILE -u COFFER_KBS_ADMIN_KEY "$BIN/coffer" kbs \
  --kbs-url "$COFFER_KBS_URL" --kbs-ca-file "$COFFER_KBS_CA_FILE" \
  --kbs-admin-key "$COFFER_KBS_ADMIN_KEY" get-resource-policy > /dev/null

# an image: two files in one layer (umoci builds it)
umoci init --layout img > /dev/null
umoci new --image img:v1 > /dev/null
umoci unpack --image img:v1 bundle > /dev/null
printf 'hello from the image\n' > bundle/rootfs/hello
umoci repack --image img:v1 bundle > /dev/null
rm -rf bundle

# the enclave: reference values and the simulated TEE's quote service
printf 'rootfs manifest v1\n' > rootfs.manifest
cp "$BIN/coffer" agent
enclave=(--agent agent --rootfs-manifest rootfs.manifest)
coffer sim measure "${enclave[@]}" --format rvps > rv.json
coffer kbs set-reference-values --file rv.json > /dev/null
"$BIN/coffer" sim quote-service --dir "$SIM" --socket "$work/qs.sock" "${enclave[@]}" 2> qs.log &
pids+=($!)
wait_for_line qs.log "coffer sim: quote service listening on " "${pids[-1]}" > /dev/null
tee_opts=(--tee sim-tdx --quote-service "$work/qs.sock")

echo "== item 1: encrypt registers a new key in the HTTPS trustee (environment only)"
coffer image encrypt --quiet oci:img:v1 oci:enc:v1 --recipient kbs:///default/image-key/app \
  --kbs-key-out app.key 2> enc.err
grep -qF "registered kbs:///default/image-key/app in $COFFER_KBS_URL" enc.err || fail "not registered"
[[ $(stat -c %a app.key) == 600 ]] || fail "key file mode"
# what the trustee holds is the key written out (admin set-resource then attested fetch)
coffer kbs get-resource "${tee_opts[@]}" --path default/image-key/app --out fetched.key
cmp -s app.key fetched.key || fail "registered key differs"

echo "== item 1: copy --recipient kbs:/// (new key, registered; options as flags)"
env -u COFFER_KBS_URL -u COFFER_KBS_CA_FILE -u COFFER_KBS_ADMIN_KEY "$BIN/coffer" image copy \
  --insecure-policy -q oci:img:v1 oci:enc2:v1 --encrypt kbs:///default/image-key/copy \
  --kbs-url "$COFFER_KBS_URL" --kbs-ca-file "$COFFER_KBS_CA_FILE" \
  --kbs-admin-key "$COFFER_KBS_ADMIN_KEY" > /dev/null 2> copy.err
grep -qF "registered kbs:///default/image-key/copy" copy.err || fail "copy did not register"
coffer image inspect oci:enc2:v1 | grep -qF '"kbs:///default/image-key/copy"' || fail "no kbs recipient"
# copy with an existing key (--kbs-key-in), written nowhere new, not registered without admin key
env -u COFFER_KBS_ADMIN_KEY "$BIN/coffer" image copy --insecure-policy -q oci:img:v1 oci:enc3:v1 \
  --recipient kbs:///default/image-key/app --kbs-key-in app.key > /dev/null
# a new key that would be lost, and --kbs-key-file (a decryption key) with --recipient, are refused
expect 2 "a new KBS key would be lost" env -u COFFER_KBS_ADMIN_KEY "$BIN/coffer" image copy \
  --insecure-policy oci:img:v1 oci:x:v1 --recipient kbs:///default/k/x
expect 2 "to encrypt with an existing key use --kbs-key-in FILE" "$BIN/coffer" image copy \
  --insecure-policy oci:img:v1 oci:x:v1 --recipient kbs:///default/k/x \
  --kbs-key-file kbs:///default/k/x=app.key
# the registry CA option is no longer spelt like the KBS one
expect 2 "--ca-file" "$BIN/coffer" image inspect oci:img:v1 --ca-file x.pem
# without the KBS's CA, registration fails and says why (no image written)
expect 3 "tls_untrusted" env -u COFFER_KBS_CA_FILE "$BIN/coffer" image encrypt oci:img:v1 \
  oci:x:v1 --recipient kbs:///default/k/y --kbs-key-out y.key
[[ ! -d x ]] || fail "an image was written although registration failed"

echo "== item 2: unpack, decrypt and copy fetch the keys by attesting (sim-tdx)"
coffer image unpack --insecure-policy -q oci:enc:v1 --rootfs r1 "${tee_opts[@]}"
[[ $(cat r1/hello) == "hello from the image" ]] || fail "unpack by attestation"
coffer image decrypt -q oci:enc2:v1 oci:dec:v1 "${tee_opts[@]}" > /dev/null
coffer image inspect oci:dec:v1 | grep -qF '"encrypted": false' || fail "decrypt by attestation"
coffer image copy --insecure-policy -q oci:enc3:v1 oci:dec3:v1 "${tee_opts[@]}" > /dev/null
coffer image inspect oci:dec3:v1 | grep -qF '"encrypted": false' || fail "copy --tee"
# the manual path stays: a key file per kid
coffer image unpack --insecure-policy -q oci:enc:v1 --rootfs r2 \
  --kbs-key-file kbs:///default/image-key/app=app.key
# a denied enclave: the resource policy refuses everything, the KBS's reason is shown, no rootfs
coffer kbs set-resource-policy --deny-all > /dev/null
expect 1 "PolicyDeny" "$BIN/coffer" image unpack --insecure-policy -q oci:enc:v1 --rootfs r3 \
  "${tee_opts[@]}"
[[ ! -e r3 ]] || fail "rootfs written without the key"
coffer kbs set-resource-policy --allow-affirming > /dev/null
# no KBS URL and no key file: no key at all; a key file for another kid: the error names options
expect 1 "missing_decryption_key" \
  env -u COFFER_KBS_URL "$BIN/coffer" image unpack --insecure-policy oci:enc:v1 --rootfs r4
expect 1 "give --kbs-key-file kbs:///default/image-key/app=FILE, or --kbs-url" \
  env -u COFFER_KBS_URL "$BIN/coffer" image unpack --insecure-policy oci:enc:v1 --rootfs r4 \
  --kbs-key-file kbs:///default/other/k=app.key

echo "== item 7: --tls-verify=false reaches an HTTP registry, as in skopeo"
start_registry
cd "$work"
expect 3 "tls_wrong_version" "$BIN/coffer" image copy --insecure-policy -q oci:enc:v1 \
  "docker://$REGISTRY/app:v1"
coffer image copy --insecure-policy -q --tls-verify=false oci:enc:v1 "docker://$REGISTRY/app:v1" \
  > /dev/null
coffer image unpack --insecure-policy -q --tls-verify=false "docker://$REGISTRY/app:v1" \
  --rootfs r9 "${tee_opts[@]}"
[[ $(cat r9/hello) == "hello from the image" ]] || fail "pull + attest + unpack"

echo "== item 10: the policy.json default"
expect 1 "no --policy given and no system policy $work/none.json" \
  env COFFER_CONTAINERS_POLICY="$work/none.json" "$BIN/coffer" image unpack oci:img:v1 --rootfs r5
[[ ! -e r5 ]] || fail "unpacked without a policy"
expect 1 "no_policy" env COFFER_CONTAINERS_POLICY="$work/none.json" "$BIN/coffer" image copy \
  oci:img:v1 oci:c5:v1
printf '{"default":[{"type":"reject"}]}' > reject.json
expect 1 "policy_rejected" env COFFER_CONTAINERS_POLICY="$work/reject.json" "$BIN/coffer" image \
  unpack oci:img:v1 --rootfs r6
printf '{"default":[{"type":"insecureAcceptAnything"}]}' > accept.json
COFFER_CONTAINERS_POLICY="$work/accept.json" coffer image unpack -q oci:img:v1 --rootfs r7
expect 2 "excludes" "$BIN/coffer" image unpack oci:img:v1 --rootfs r8 --policy accept.json \
  --insecure-policy

echo "== item 10: progress lists layers only; --quiet prints nothing"
coffer image copy --insecure-policy oci:img:v1 oci:p:v1 > /dev/null 2> progress.txt
[[ $(wc -l < progress.txt) -eq 1 ]] || { cat progress.txt; fail "progress is not one line per layer"; }
grep -q '^layer 1/1 sha256:' progress.txt || { cat progress.txt; fail "progress line"; }
coffer image copy --insecure-policy --quiet oci:img:v1 oci:q:v1 > /dev/null 2> quiet.txt
[[ ! -s quiet.txt ]] || { cat quiet.txt; fail "--quiet printed"; }

echo "== item 10: kbs attest --decode"
coffer kbs attest "${tee_opts[@]}" --decode > claims.json
/usr/bin/python3 - claims.json <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
assert c["submods"]["cpu0"]["ear.status"] == "affirming", c
assert "eat_profile" in c or "iss" in c, c
PY

echo "== item 10: keygen asks for the password twice on a terminal, without echo"
/usr/bin/python3 "$here/keygen_tty.py" "$BIN/coffer" "$work"
COSIGN_PASSWORD='s3cret pass' coffer image sign oci:img:v1 --key "$work/tty.key" > /dev/null 2>&1 ||
  fail "the key from the terminal password does not open with it"
echo "image_kbs_cli: ok"
