#!/usr/bin/env bash
# Test fixture: a loopback docker-registry holding app:v1, a busybox-static image whose entrypoint
# prints a line and exits 7 (as apps/test/agent_smoke.sh builds it).
# Usage: busybox_registry.sh COFFER WORKDIR -> prints "PORT REGISTRY_PID"; the caller kills it.
set -euo pipefail
COFFER=$1
work=$2
cd "$work"
for tool in docker-registry umoci curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 77; }
done
[[ -x /bin/busybox ]] || { echo "missing /bin/busybox" >&2; exit 77; }
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > reg.yml <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $work/regdata
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve reg.yml > reg.log 2>&1 < /dev/null &
reg=$!
umoci init --layout L >/dev/null
umoci new --image L:v1
umoci unpack --rootless --image L:v1 B >/dev/null
mkdir -p B/rootfs/bin
cp /bin/busybox B/rootfs/bin/
for t in sh echo cat ls; do ln -s busybox "B/rootfs/bin/$t"; done
umoci repack --image L:v1 B
umoci config --image L:v1 --config.entrypoint /bin/sh --config.cmd -c \
  --config.cmd 'echo hello from the process enclave; ls /work /etc/shadow 2>&1 | head -n 2; exit 7'
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
  sleep 0.05
done
"$COFFER" image copy --insecure-policy -q --insecure-registry "127.0.0.1:$port" oci:L:v1 \
  "docker://127.0.0.1:$port/app:v1" >/dev/null
echo "$port $reg"
