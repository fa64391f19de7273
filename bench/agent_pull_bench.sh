#!/usr/bin/env bash
# The agent's image service (bench/agent_pull_bench.cpp, src/agent/image) vs `coffer image unpack`
# on the same KBS-encrypted image from docker-registry on loopback, in the same run:
# pull + decrypt + unpack, wall time and peak RSS (/usr/bin/time -v).
#   bench/agent_pull_bench.sh [build dir]   (default build/ci; needs apps/coffer, bench/agent_pull_bench)
#   LAYER_MIB=256 ... for a 1 GiB image (4 layers; default 64: 256 MiB)
#   AGENT_FIRST=1 ... runs the agent's pull before coffer's in each round
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
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
python3 "$HERE/make_bench_image.py" "$LAYER_MIB"
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
