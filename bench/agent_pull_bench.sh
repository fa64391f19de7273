#!/usr/bin/env bash
# The agent's image service (bench/agent_pull_bench.cpp, src/agent/image) vs `coffer image unpack`
# on the same KBS-encrypted image from docker-registry on loopback, in the same run:
# pull + decrypt + unpack, wall time and peak RSS (/usr/bin/time -v).
#   bench/agent_pull_bench.sh [build dir]   (default build/ci; needs apps/coffer, bench/agent_pull_bench)
#   LAYER_MIB=256 ... for a 1 GiB image (4 layers; default 64: 256 MiB)
#   AGENT_FIRST=1 ... runs the agent's pull before coffer's in each round
set -euo pipefail
B=$(realpath "${1:-build/ci}")
TOOL=$B/apps/coffer
AGENT=$B/bench/agent_pull_bench
LAYER_MIB=${LAYER_MIB:-64}
W=$(mktemp -d /var/tmp/coffer-agent-bench.XXXXXX)
REG_PID=
cleanup() { [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null; wait 2>/dev/null; chmod -R u+w "$W"; rm -rf "$W"; }
trap cleanup EXIT
cd "$W"
echo "== $(date -u +%FT%TZ) on $(nproc) cores, load:$(uptime | sed 's/.*load average://')"
python3 - "$LAYER_MIB" <<'PY'
import hashlib, io, json, os, sys, tarfile, zlib
mib = int(sys.argv[1]); os.makedirs("img/blobs/sha256", exist_ok=True)
def put(b):
    h = hashlib.sha256(b).hexdigest(); open("img/blobs/sha256/" + h, "wb").write(b)
    return {"digest": "sha256:" + h, "size": len(b)}
layers, diff_ids = [], []
for i in range(4):
    buf = io.BytesIO(); t = tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT)
    for f in range(8):
        size = mib * 1024 * 1024 // 8
        if i % 2 == 0: data = os.urandom(size)
        else: data = ((b"compressible line %d of layer %d\n" % (f, i)) * (size // 30 + 1))[:size]
        ti = tarfile.TarInfo("layer%d/file%d" % (i, f)); ti.size = len(data); ti.mode = 0o644; ti.mtime = 1700000000
        t.addfile(ti, io.BytesIO(data))
    t.close(); raw = buf.getvalue(); diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
    co = zlib.compressobj(1, zlib.DEFLATED, 31); gz = co.compress(raw) + co.flush()
    d = put(gz); d["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"; layers.append(d)
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
c = put(cfg); c["mediaType"] = "application/vnd.oci.image.config.v1+json"
m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": c, "layers": layers}).encode()
md = put(m); md["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
md["annotations"] = {"org.opencontainers.image.ref.name": "v1"}
json.dump({"schemaVersion": 2, "manifests": [md]}, open("img/index.json", "w"))
open("img/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
PY
du -sh img/blobs | sed 's/^/image blobs: /'
KID=kbs:///default/bench-key/1
"$TOOL" image encrypt oci:img:v1 oci:enc:v1 --recipient "$KID" --kbs-key-out key.bin >/dev/null 2>&1

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > reg.yml <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $W/regdata}}
http: {addr: 127.0.0.1:$PORT}
YML
docker-registry serve reg.yml >reg.log 2>&1 & REG_PID=$!
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null && break; sleep 0.05; done
"$TOOL" image copy oci:enc:v1 "docker://127.0.0.1:$PORT/bench/enc:v1" \
  --insecure-registry "127.0.0.1:$PORT" >/dev/null 2>&1

measure() {  # name, command...
  local name=$1; shift
  sync; /usr/bin/time -v -o t.out "$@" >/dev/null 2>err.out || { cat err.out; exit 1; }
  local secs rss
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' t.out)
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' t.out)
  printf "%-40s %7.2f s %7.1f MiB peak RSS\n" "$name" "$secs" "$(echo "$rss / 1024" | bc -l)"
}
IMAGE="docker://127.0.0.1:$PORT/bench/enc:v1"
for run in 1 2 3; do
  rm -rf rootfs-coffer agent-storage
  coffer_run() {
    measure "coffer image unpack (run $run)" "$TOOL" image unpack "$IMAGE" --rootfs rootfs-coffer \
      --kbs-key-file "$KID=key.bin" --insecure-registry "127.0.0.1:$PORT" --spool-dir "$W"
  }
  agent_run() {
    measure "agent image service pull (run $run)" "$AGENT" "$IMAGE" agent-storage \
      --insecure "127.0.0.1:$PORT" --kbs-key "$KID=key.bin"
  }
  if [ -n "${AGENT_FIRST:-}" ]; then agent_run; coffer_run; else coffer_run; agent_run; fi
done
diff -r rootfs-coffer agent-storage/images/sha256-*/rootfs >/dev/null && echo "trees identical"
echo "== load at the end:$(uptime | sed 's/.*load average://')"
