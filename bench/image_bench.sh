#!/usr/bin/env bash
# Image pipeline benchmark: coffer vs skopeo (+ umoci) on a 512 MiB, 4-layer image
# (2 x 128 MiB incompressible, 2 x 128 MiB compressible), run side by side on loopback.
#   bench/image_bench.sh [path/to/coffer]   (default: the release build's build/release/apps/coffer)
#   COMPARE_TOOL=path/to/older/coffer bench/image_bench.sh ...  (also times that build)
# Measures wall time and peak RSS (/usr/bin/time) of:
#   1. decrypt+verify: oci layout -> oci layout (jwe, RSA key)
#   2. pull+decrypt+unpack from docker-registry (coffer: one command; skopeo copy + umoci unpack)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOOL=${1:-build/release/apps/coffer}
TOOL=$(realpath "$TOOL")
[ -n "${COMPARE_TOOL:-}" ] && COMPARE_TOOL=$(realpath "$COMPARE_TOOL")
LAYER_MIB=${LAYER_MIB:-128}
W=$(mktemp -d /var/tmp/coffer-image-bench.XXXXXX)
REG_PID=
cleanup() { [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null; wait 2>/dev/null; chmod -R u+w "$W"; rm -rf "$W"; }
trap cleanup EXIT
cd "$W"

echo "== $(date -u +%FT%TZ) on $(nproc) cores, load:$(uptime | sed 's/.*load average://')"
echo "== building the image in $W"
python3 "$HERE/make_bench_image.py" "$LAYER_MIB"
du -sh img/blobs | sed 's/^/image blobs: /'
openssl genrsa -out priv.pem 2048 2>/dev/null
openssl rsa -in priv.pem -pubout -out pub.pem 2>/dev/null
"$TOOL" image encrypt oci:img:v1 oci:enc:v1 --recipient jwe:pub.pem >/dev/null 2>&1

measure() {  # name, command...
  local name=$1; shift
  sync; /usr/bin/time -f "%e %M" -o t.out "$@" >/dev/null 2>err.out || { cat err.out; exit 1; }
  read -r secs rss < t.out
  printf "%-44s %7.2f s %8.1f MiB/s %7.1f MiB peak RSS\n" "$name" "$secs" \
    "$(echo "4 * $LAYER_MIB / $secs" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
}

echo "== decrypt + verify (oci -> oci)"
measure "coffer image decrypt" "$TOOL" image decrypt oci:enc:v1 oci:dec-coffer:v1 --decryption-key priv.pem
if [ -n "${COMPARE_TOOL:-}" ]; then
  measure "coffer image decrypt (COMPARE_TOOL)" "$COMPARE_TOOL" image decrypt oci:enc:v1 \
    oci:dec-compare:v1 --key priv.pem
fi
measure "skopeo copy --decryption-key" skopeo copy --decryption-key priv.pem oci:enc:v1 oci:dec-skopeo:v1

echo "== pull + decrypt + unpack from docker-registry"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > reg.yml <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $W/regdata}}
http: {addr: 127.0.0.1:$PORT}
YML
docker-registry serve reg.yml >reg.log 2>&1 & REG_PID=$!
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null && break; sleep 0.05; done
skopeo copy --dest-tls-verify=false oci:enc:v1 "docker://127.0.0.1:$PORT/bench/enc:v1" >/dev/null
measure "coffer image unpack (pull+decrypt+unpack)" "$TOOL" image unpack \
  "docker://127.0.0.1:$PORT/bench/enc:v1" --rootfs rootfs-coffer --decryption-key priv.pem --insecure-policy \
  --insecure-registry "127.0.0.1:$PORT" --spool-dir "$W"
if [ -n "${COMPARE_TOOL:-}" ]; then
  measure "coffer image unpack (COMPARE_TOOL)" "$COMPARE_TOOL" image unpack \
    "docker://127.0.0.1:$PORT/bench/enc:v1" --rootfs rootfs-compare --key priv.pem \
    --insecure-registry "127.0.0.1:$PORT" --spool-dir "$W"
fi
pull_unpack_skopeo() {
  skopeo copy --src-tls-verify=false --decryption-key priv.pem \
    "docker://127.0.0.1:$PORT/bench/enc:v1" oci:pulled:v1 &&
  umoci raw unpack --rootless --image pulled:v1 rootfs-umoci
}
export -f pull_unpack_skopeo; export PORT
measure "skopeo copy + umoci raw unpack" bash -c pull_unpack_skopeo
diff -r rootfs-coffer rootfs-umoci >/dev/null && echo "trees identical"
echo "== load at the end:$(uptime | sed 's/.*load average://')"
