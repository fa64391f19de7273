#!/usr/bin/env bash
# `coffer image build` through the real executable: a busybox image from Debian's busybox-static
# into an OCI layout (read by skopeo, unpacked by coffer and umoci to the input's files), the same
# digest on every build and from a tar of the same files; encrypted for a kbs:/// key and a JWE
# recipient, cosign-signed and pushed to a loopback docker-registry in one command, then verified
# and decrypted; refusals with their exit codes, leaving nothing at the destination.
# Usage: image_build_cli.sh BIN_DIR
set -euo pipefail
BIN=$(cd "$1" && pwd)
work=$(mktemp -d /tmp/coffer-image-build.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
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
# same_tree A B: the same files, modes, symlinks (not followed) and contents
same_tree() {
  diff -r --no-dereference "$1" "$2" || fail "$1 and $2 differ"
  local a b
  a=$(cd "$1" && find . -printf '%p %M %l\n' | sort)
  b=$(cd "$2" && find . -printf '%p %M %l\n' | sort)
  [[ "$a" == "$b" ]] || fail "modes or links of $1 and $2 differ: $(diff <(echo "$a") <(echo "$b"))"
}

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REGISTRY=127.0.0.1:$port
cat > reg.yml <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $work/regdata
http:
  addr: $REGISTRY
YML
docker-registry serve reg.yml > reg.log 2>&1 &
pids+=($!)

echo "== a busybox image into an OCI layout"
mkdir -p R/bin R/etc R/tmp
cp /bin/busybox R/bin/
for t in sh echo cat; do ln -s busybox "R/bin/$t"; done
printf 'hello from a built image\n' > R/etc/hello
ln R/etc/hello R/etc/hello.link
chmod 1777 R/tmp
chmod 0600 R/etc/hello
build_opts=(--entrypoint '["/bin/sh","-c"]' --cmd 'cat /etc/hello' --env PATH=/bin
            --workdir /tmp --user 1000:1000 --label org.example.name=busybox -q)
d1=$(coffer image build --from-dir R oci:L:v1 "${build_opts[@]}")
[[ "$d1" == sha256:* ]] || fail "no digest printed: '$d1'"
skopeo inspect oci:L:v1 > inspect.json
grep -q "\"Digest\": \"$d1\"" inspect.json || fail "skopeo reads another digest"
grep -q '"Architecture": "amd64"' inspect.json || fail "architecture"
grep -q '"org.example.name": "busybox"' inspect.json || fail "label"
skopeo inspect --config oci:L:v1 > config.json
/usr/bin/python3 - <<'PY' || fail "image config"
import json
c = json.load(open("config.json"))
r = c["config"]
assert r["Entrypoint"] == ["/bin/sh", "-c"], r
assert r["Cmd"] == ["cat /etc/hello"], r
assert r["Env"] == ["PATH=/bin"] and r["WorkingDir"] == "/tmp" and r["User"] == "1000:1000", r
assert c["created"] == "1970-01-01T00:00:00Z", c
PY

echo "== unpacked by coffer and by umoci: the input's files"
coffer image unpack --insecure-policy -q --keep-privileges oci:L:v1 --rootfs U
same_tree R U
[[ $(stat -c %i U/etc/hello) == $(stat -c %i U/etc/hello.link) ]] || fail "hard link lost"
umoci unpack --rootless --image L:v1 UB > /dev/null 2>&1
same_tree R UB/rootfs
# the unpacked busybox runs
[[ $(U/bin/busybox cat U/etc/hello) == "hello from a built image" ]] || fail "busybox"

echo "== reproducible: again, from a tar (gzip, other owners and mtimes), SOURCE_DATE_EPOCH"
touch R/etc/hello
d2=$(coffer image build --from-dir R oci:L2:v1 "${build_opts[@]}")
[[ "$d2" == "$d1" ]] || fail "second build: $d2 != $d1"
cmp L/blobs/sha256/"${d1#sha256:}" L2/blobs/sha256/"${d1#sha256:}" || fail "manifest bytes"
tar -C R --owner=1234 --group=99 --mtime=@1234567 -czf r.tar.gz .
d3=$(coffer image build --from-tar r.tar.gz oci:L3:v1 "${build_opts[@]}")
[[ "$d3" == "$d1" ]] || fail "from tar: $d3 != $d1"
d4=$(SOURCE_DATE_EPOCH=1700000000 coffer image build --from-dir R oci:L4:v1 "${build_opts[@]}")
[[ "$d4" != "$d1" ]] || fail "SOURCE_DATE_EPOCH did not change the digest"
skopeo inspect --config oci:L4:v1 | grep -q '"created": "2023-11-14T22:13:20Z"' || fail "created"
d5=$(SOURCE_DATE_EPOCH=1700000000 coffer image build --from-tar r.tar.gz oci:L5:v1 "${build_opts[@]}")
[[ "$d5" == "$d4" ]] || fail "SOURCE_DATE_EPOCH from tar: $d5 != $d4"
# progress on stderr unless --quiet; only the digest on stdout
coffer image build --from-dir R oci:L6:v1 > out.txt 2> progress.txt
grep -q '^layer 1/1 sha256:.* build ' progress.txt || fail "no progress: $(cat progress.txt)"
[[ $(cat out.txt) == sha256:* && $(wc -l < out.txt) -eq 1 ]] || fail "stdout: $(cat out.txt)"

echo "== refusals"
expect 2 "not_found" coffer image build --from-dir absent oci:X:v1
expect 2 "oci:X:TAG" coffer image build --from-dir R oci:X
expect 2 "--from-dir" coffer image build oci:X:v1
expect 2 "excludes" coffer image build --from-dir R --from-tar r.tar.gz oci:X:v1
expect 2 "JSON array of strings" coffer image build --from-dir R oci:X:v1 --cmd '["a",1]'
expect 2 "SOURCE_DATE_EPOCH" env SOURCE_DATE_EPOCH=yesterday "$BIN/coffer" image build \
  --from-dir R oci:X:v1
mkdir -p F/sub && mkfifo F/sub/pipe
expect 1 "unsupported_file_type" coffer image build --from-dir F oci:X:v1
/usr/bin/python3 - <<'PY'
import io, tarfile
def tar(name, entries):
    with tarfile.open(name, "w") as t:
        for n, kind, link in entries:
            i = tarfile.TarInfo(n)
            if kind == "sym":
                i.type, i.linkname = tarfile.SYMTYPE, link
                t.addfile(i)
            else:
                i.size = 1
                t.addfile(i, io.BytesIO(b"x"))
tar("dotdot.tar", [("../x", "file", "")])
tar("abs.tar", [("/etc/x", "file", "")])
tar("escape.tar", [("l", "sym", "/etc"), ("l/passwd", "file", "")])
PY
for t in dotdot abs escape; do
  expect 1 "unsafe_path" coffer image build --from-tar $t.tar oci:X:v1
done
[[ ! -e X ]] || fail "a refused build left oci:X"

echo "== encrypted (kbs:/// key and JWE), signed, pushed in one command"
for _ in $(seq 1 100); do
  curl -fsS "http://$REGISTRY/v2/" >/dev/null 2>&1 && break
  sleep 0.05
done
export COSIGN_PASSWORD='build test passphrase'
coffer image keygen --output-key-prefix cosign 2> /dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out jwe.key 2> /dev/null
openssl pkey -in jwe.key -pubout -out jwe.pub
image="docker://$REGISTRY/demo/busybox:v1"
de=$(coffer image build --from-dir R "$image" "${build_opts[@]}" --insecure-registry "$REGISTRY" \
  --encrypt kbs:///default/image-key/busybox --kbs-key-out image.key --recipient jwe:jwe.pub \
  --sign-key cosign.key 2> build.err) || { cat build.err >&2; fail "encrypted build"; }
[[ "$de" == sha256:* && "$de" != "$d1" ]] || fail "encrypted digest '$de'"
[[ $(stat -c %a image.key) == 600 && $(stat -c %s image.key) == 32 ]] || fail "image.key"
coffer image inspect --insecure-registry "$REGISTRY" "$image" > enc.json
grep -q '"encrypted": true' enc.json || fail "not encrypted"
grep -q '"kbs:///default/image-key/busybox"' enc.json || fail "no kbs recipient"
cat > policy.json <<EOF
{"default": [{"type": "reject"}],
 "transports": {"docker": {"$REGISTRY/demo/busybox": [
   {"type": "sigstoreSigned", "keyPath": "$work/cosign.pub",
    "signedIdentity": {"type": "matchRepository"}}]}}}
EOF
coffer image verify "$image" --policy policy.json --insecure-registry "$REGISTRY" | grep -q "$de" \
  || fail "verify"
coffer image unpack -q "$image" --policy policy.json --insecure-registry "$REGISTRY" \
  --kbs-key-file "kbs:///default/image-key/busybox=$work/image.key" --keep-privileges --rootfs E1
same_tree R E1
coffer image unpack -q "$image" --policy policy.json --insecure-registry "$REGISTRY" \
  --decryption-key jwe.key --keep-privileges --rootfs E2
same_tree R E2
expect 1 "missing_decryption_key" coffer image unpack -q "$image" --policy policy.json \
  --insecure-registry "$REGISTRY" --rootfs E3

echo "== plaintext to the registry: the layout's digest; a wrong key password pushes nothing"
dp=$(coffer image build --from-dir R "docker://$REGISTRY/demo/plain:v1" "${build_opts[@]}" \
  --insecure-registry "$REGISTRY")
[[ "$dp" == "$d1" ]] || fail "registry build: $dp != $d1"
expect 2 "wrong_password" env COSIGN_PASSWORD=wrong "$BIN/coffer" image build --from-dir R \
  "docker://$REGISTRY/demo/busybox:bad" --insecure-registry "$REGISTRY" -q --sign-key cosign.key
expect 2 "wrong_password" env COSIGN_PASSWORD=wrong "$BIN/coffer" image build --from-dir R \
  oci:X:v1 -q --sign-key cosign.key --encrypt kbs:///default/image-key/x --kbs-key-out x.key
[[ ! -e X && ! -e x.key ]] || fail "a build with a wrong password left something"
if skopeo inspect --tls-verify=false "docker://$REGISTRY/demo/busybox:bad" > /dev/null 2>&1; then
  fail "a build with a wrong password pushed an image"
fi
echo "image_build_cli: ok"
