#!/usr/bin/env bash
# Cold start of `coffer run` for the demo's image (already in the loopback registry): the demo's
# whole setup (scripts/demo), then N runs of its step 5, each a new process enclave that attests,
# fetches the key, pulls, decrypts, unpacks and starts the container. Prints p50/p90/max of the
# wall time and of each step `coffer run --timings` reports (the launcher's steps, the agent's
# attestation/verify/key fetch/layers, peak RSS of the agent and of coffer run).
# Usage: bench/run_cold_start.sh [BIN_DIR (default: build/release/apps)] [N (default 20)]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(cd "${1:-$here/../build/release/apps}" && pwd)
echo "== $(date -u +%FT%TZ) on $(nproc) cores, load:$(uptime | sed 's/.*load average://')"
COFFER_BIN_DIR=$bin COFFER_DEMO_BENCH=${2:-20} "$here/../scripts/demo" 2> /dev/null |
  sed -n '/benchmark:/,/== 6/p' | grep -v '== 6'
