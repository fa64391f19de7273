#!/usr/bin/env bash
# Encrypted filesystem throughput against the plain filesystem, side by side on the same disk:
# sequential write and read of one file (default 256 MiB) with dd bs=1M, through a coffer-efs
# FUSE mount and directly. Page caches cannot be dropped without privileges the benchmark does not
# assume, so each read runs twice: the efs read first on a fresh mount (the kernel's FUSE page
# cache is empty, every block is read from the host file and decrypted), then again (served from
# the mount's page cache, kernel_cache). The host file itself is in the page cache in both cases,
# as is the plain file: the comparison is of CPU cost, not of disk speed.
# Usage: bench/efs_bench.sh PATH/TO/coffer-efs [SIZE_MIB] [WORK_DIR]
set -euo pipefail
EFS=$(realpath "$1")
size_mib=${2:-256}
work=$(mktemp -d "${3:-/tmp}/coffer-efs-bench.XXXXXX")
mnt="$work/mnt"
pid=""
cleanup() {
  if mountpoint -q "$mnt" 2>/dev/null; then fusermount3 -u "$mnt" 2>/dev/null || true; fi
  if [[ -n "$pid" ]]; then wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
mkdir mnt plain
head -c 32 /dev/urandom > key   # benchmark only
"$EFS" create --key-fd 3 --block-size "${EFS_BLOCK_SIZE:-65536}" efs 3<key

mount_efs() {
  "$EFS" mount --key-fd 3 -f efs "$mnt" 3<key &
  pid=$!
  for _ in $(seq 1 200); do mountpoint -q "$mnt" && return 0; sleep 0.02; done
  echo "mount did not appear" >&2; exit 1
}
unmount_efs() { fusermount3 -u "$mnt"; wait "$pid"; pid=""; }

# MiB/s of `dd if=$1 of=$2 bs=1M`
rate() {
  local t0 t1
  t0=$(date +%s%N)
  dd if="$1" of="$2" bs=1M status=none ${3:-}
  t1=$(date +%s%N)
  echo $(( size_mib * 1000000000 / (t1 - t0) ))
}

head -c $((size_mib * 1024 * 1024)) /dev/urandom > source
cat source > /dev/null

mount_efs
efs_write=$(rate source "$mnt/file" conv=fsync)
unmount_efs
plain_write=$(rate source plain/file conv=fsync)

# EFS_BENCH_COLD=1 (root): the host's page cache is dropped before each first read, so both read
# their file from the disk (efs: its block objects) as a first read after boot would
drop_caches() {
  if [[ "${EFS_BENCH_COLD:-0}" == 1 ]]; then sync; echo 3 > /proc/sys/vm/drop_caches; fi
}
mount_efs   # fresh mount: empty FUSE page cache
drop_caches
efs_read1=$(rate "$mnt/file" /dev/null)
efs_read2=$(rate "$mnt/file" /dev/null)
cmp -s source "$mnt/file" || { echo "efs content differs" >&2; exit 1; }
unmount_efs
drop_caches
plain_read1=$(rate plain/file /dev/null)
plain_read2=$(rate plain/file /dev/null)

cold=""
[[ "${EFS_BENCH_COLD:-0}" == 1 ]] && cold=", read 1 cold"
printf '%-34s %8s %8s %8s\n' "${size_mib} MiB, dd bs=1M (MiB/s)$cold" plain efs "plain/efs"
printf '%-34s %8d %8d %8.2f\n' "write (conv=fsync)" "$plain_write" "$efs_write" \
  "$(echo "$plain_write / $efs_write" | bc -l)"
printf '%-34s %8d %8d %8.2f\n' "read 1 (efs: fresh mount)" "$plain_read1" "$efs_read1" \
  "$(echo "$plain_read1 / $efs_read1" | bc -l)"
printf '%-34s %8d %8d %8.2f\n' "read 2 (efs: mount page cache)" "$plain_read2" "$efs_read2" \
  "$(echo "$plain_read2 / $efs_read2" | bc -l)"
