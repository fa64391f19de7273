#!/usr/bin/env bash
# Cold start of `coffer run --tee sim-sgx` (the two-enclave flow, docs/two-enclave.md) for a
# small encrypted busybox image already in a loopback registry: apps/test/run_sgx.sh's setup
# (HTTPS trustee, registry, both enclave images signed), then N runs in each key-handover mode.
# Each run launches the agent enclave (check, copy and measure its image, quote service,
# coffer-agent, SGX quote attestation), pulls/decrypts/unpacks inside it, exports the bundle into a
# new encrypted filesystem, launches the app enclave (its image checked, key unsealed or handed
# over by local attestation, FUSE + overlay mounted) and runs the workload to its exit.
# Usage: bench/run_sgx_cold_start.sh [BIN_DIR (default: build/release/apps)] [N (default 20)]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(cd "${1:-$here/../build/release/apps}" && pwd)
echo "== $(date -u +%FT%TZ) on $(nproc) cores, load:$(uptime | sed 's/.*load average://')"
COFFER_SGX_BENCH=${2:-20} "$here/../apps/test/run_sgx.sh" "$bin" | grep -v "^run_sgx: ok"
