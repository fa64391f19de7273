#!/usr/bin/env bash
# coffer-efs through the real FUSE mount: an imported tree reads back, files are created, written,
# renamed and removed in the mount, `coffer-efs check` passes after unmount; host-side tampering
# (a flipped byte in a block or a directory object, a rolled-back file, a truncated, swapped or
# renamed blob) gives EIO in the mount and a failing check; a wrong key, a short key, a
# generation below --min-generation and a tampered superblock are refused; no plaintext on disk.
# Usage: efs_mount.sh PATH/TO/coffer-efs
set -euo pipefail
EFS=$(realpath "$1")
command -v fusermount3 >/dev/null || { echo "efs_mount: fusermount3 missing (apt-get install fuse3)" >&2; exit 1; }
# a machine without FUSE cannot run this test: reported as skipped (77), not passed
[[ -c /dev/fuse ]] || { echo "efs_mount: SKIPPED: no /dev/fuse on this machine" >&2; exit 77; }
work=$(mktemp -d /tmp/coffer-efs-mount.XXXXXX)
mnt="$work/mnt"
pid=""
cleanup() {
  if mountpoint -q "$mnt" 2>/dev/null; then fusermount3 -u "$mnt" 2>/dev/null || true; fi
  if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "efs_mount: $*" >&2; exit 1; }
cd "$work"
mkdir "$mnt"

head -c 32 /dev/urandom > key       # test only: the real key arrives on a pipe, never on disk
head -c 32 /dev/urandom > wrong_key
marker="EFSMARKER$RANDOM$RANDOM"

# the source tree
mkdir -p src/etc "src/dir-$marker" src/bin
printf 'coffer\n' > src/etc/hostname
for _ in $(seq 1 2000); do echo "$marker"; done > src/etc/marked
printf 'x' > "src/dir-$marker/file-$marker"
head -c 300000 /dev/urandom > src/bin/blob
chmod 4755 src/bin/blob
ln -s ../etc/hostname src/bin/link
cp "$(command -v busybox)" src/bin/busybox   # busybox-static: a program run from the mount

"$EFS" import --key-fd 3 src efs 3<key >/dev/null
if grep -rqa "$marker" efs; then fail "plaintext marker found on the host after import"; fi

mount_efs() {  # mount in the foreground, in the background; wait for the mount to appear
  "$EFS" mount --key-fd 3 -f efs "$mnt" 3<key 2>"$work/daemon.log" &
  pid=$!
  for _ in $(seq 1 500); do
    mountpoint -q "$mnt" && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$work/daemon.log" >&2; fail "daemon exited"; }
    sleep 0.02
  done
  fail "mount did not appear"
}
unmount_efs() {  # unmount and wait for the daemon's final commit
  fusermount3 -u "$mnt"
  wait "$pid" || fail "daemon failed: $(cat "$work/daemon.log")"
  pid=""
}

# 1. reads through the mount
mount_efs
[[ "$(cat "$mnt/etc/hostname")" == coffer ]] || fail "hostname differs"
cmp -s src/bin/blob "$mnt/bin/blob" || fail "blob differs"
cmp -s src/etc/marked "$mnt/etc/marked" || fail "marked differs"
[[ "$(readlink "$mnt/bin/link")" == ../etc/hostname ]] || fail "symlink target differs"
[[ "$(stat -c %a "$mnt/bin/blob")" == 4755 ]] || fail "mode lost"
[[ -f "$mnt/dir-$marker/file-$marker" ]] || fail "marked name missing"
[[ "$("$mnt/bin/busybox" echo exec-ok)" == exec-ok ]] || fail "exec from the mount"
[[ $(stat -f -c %l "$mnt") -eq 255 && $(df --output=size "$mnt" | tail -1) -gt 0 ]] || fail "statfs"
ls "$mnt" | sort | tr '\n' ' ' | grep -qx "bin dir-$marker etc " || fail "listing differs: $(ls "$mnt")"

# 2. writes through the mount
mkdir "$mnt/new"
echo "hello $marker" > "$mnt/new/file"
head -c 1000000 /dev/urandom > written
dd if=written of="$mnt/new/big" bs=64k conv=fsync status=none   # fsync: a durable commit
dd if=/dev/zero of="$mnt/new/big" bs=1 count=5 seek=70000 conv=notrunc status=none
dd if=/dev/zero of=written bs=1 count=5 seek=70000 conv=notrunc status=none
truncate -s 123456 "$mnt/new/big"; truncate -s 123456 written
mv "$mnt/etc/hostname" "$mnt/new/hostname"
rm "$mnt/bin/link"
ln -s new/file "$mnt/flink"
chmod 600 "$mnt/new/file"
touch -d 2020-01-02T03:04:05Z "$mnt/new/file"
[[ "$(cat "$mnt/flink")" == "hello $marker" ]] || fail "symlink through mount"
unmount_efs
"$EFS" check --key-fd 3 efs 3<key >/dev/null || fail "check failed after writes"
if grep -rqa "$marker" efs; then fail "plaintext marker found on the host after writes"; fi

mount_efs
cmp -s written "$mnt/new/big" || fail "big file differs after remount"
[[ "$(cat "$mnt/new/hostname")" == coffer ]] || fail "renamed file differs"
[[ ! -e "$mnt/etc/hostname" && ! -L "$mnt/bin/link" ]] || fail "removed entries came back"
[[ "$(stat -c %a:%Y "$mnt/new/file")" == "600:$(date -d 2020-01-02T03:04:05Z +%s)" ]] || fail "chmod/utimens lost"
unmount_efs

# 3. a wrong key is refused at mount and check
set +e
"$EFS" mount --key-fd 3 -f efs "$mnt" 3<wrong_key 2>err; rc=$?
set -e
[[ $rc -eq 3 ]] && grep -q efs_wrong_key err || fail "wrong key: rc=$rc $(cat err)"
mountpoint -q "$mnt" && fail "mounted with a wrong key"
set +e
"$EFS" check --key-fd 3 efs 3<wrong_key 2>err; rc=$?
set -e
[[ $rc -eq 3 ]] && grep -q efs_wrong_key err || fail "check with a wrong key: rc=$rc $(cat err)"
# a whole-filesystem rollback is caught against a trusted minimum generation
gen=$("$EFS" check --key-fd 3 efs 3<key | sed -n 's/^ok: generation //p')
[[ -n "$gen" ]] || fail "no generation"
"$EFS" check --key-fd 3 --min-generation "$gen" efs 3<key >/dev/null || fail "min-generation $gen"
set +e
"$EFS" mount --key-fd 3 --min-generation $((gen + 1)) -f efs "$mnt" 3<key 2>err; rc=$?
set -e
[[ $rc -eq 3 ]] && grep -q efs_rollback err || fail "rollback: rc=$rc $(cat err)"
# the key must be exactly 32 bytes
set +e
head -c 31 key | "$EFS" check --key-fd 0 efs 2>err; rc=$?
set -e
[[ $rc -ne 0 ]] && grep -q "exactly 32" err || fail "short key: rc=$rc $(cat err)"

# 4. host-side tampering gives EIO in the mount and a failing check
blob=$(find efs/objects -type f -size $((300000 + 5 * 28))c)   # /bin/blob: 5 blocks
big=$(find efs/objects -type f -size $((123456 + 2 * 28))c)     # /new/big: 2 blocks
[[ -n "$blob" && -n "$big" ]] || fail "blobs not found by size"
expect_eio() {  # FILE: reading it through a fresh mount fails with EIO; check fails
  mount_efs
  if cat "$mnt/$1" >/dev/null 2>err; then fail "$2: read succeeded"; fi
  grep -q "Input/output error" err || fail "$2: not EIO: $(cat err)"
  unmount_efs
  if "$EFS" check --key-fd 3 efs 3<key >/dev/null 2>err; then fail "$2: check passed"; fi
  grep -q efs_integrity err || fail "$2: check error: $(cat err)"
}
cp "$blob" blob.orig
printf '\x55' | dd of="$blob" bs=1 seek=100000 conv=notrunc status=none
expect_eio bin/blob "flipped byte"
cp blob.orig "$blob"

cp "$big" big.orig
mount_efs
printf 'changed' | dd of="$mnt/new/big" bs=1 seek=10 conv=notrunc status=none
unmount_efs
cp "$big" big.new
cp big.orig "$big"   # the file rolled back to its older version
expect_eio new/big "rolled-back file"
cp big.new "$big"

cp "$blob" blob.orig
truncate -s $((65536 + 28)) "$blob"
expect_eio bin/blob "truncated blob"
cp blob.orig "$blob"
# swapped blobs (same size), and a renamed blob
"$EFS" check --key-fd 3 efs 3<key >/dev/null || fail "check failed before the swap"
mount_efs
head -c 5000 /dev/urandom > "$mnt/s1"; head -c 5000 /dev/urandom > "$mnt/s2"
unmount_efs
mapfile -t same < <(find efs/objects -type f -size $((5000 + 28))c)
[[ ${#same[@]} -eq 2 ]] || fail "expected two 5000-byte blobs, found ${#same[@]}"
mv "${same[0]}" tmpblob; mv "${same[1]}" "${same[0]}"; mv tmpblob "${same[1]}"
expect_eio s1 "swapped blobs"
mv "${same[0]}" tmpblob; mv "${same[1]}" "${same[0]}"; mv tmpblob "${same[1]}"
mv "${same[0]}" efs/objects/00000000000000000000000000000000
mv "${same[1]}" efs/objects/11111111111111111111111111111111
expect_eio s1 "renamed blob"
expect_eio s2 "renamed blob"
mv efs/objects/00000000000000000000000000000000 "${same[0]}"
mv efs/objects/11111111111111111111111111111111 "${same[1]}"

# a flipped byte in a directory object: everything below it gives EIO
ls efs/objects > before
mount_efs
mkdir "$mnt/d"; printf 'y' > "$mnt/d/f"
unmount_efs
ls efs/objects > after
dirobj=""
for o in $(comm -13 before after); do
  [[ $(stat -c %s "efs/objects/$o") -ne 29 ]] && dirobj="efs/objects/$o"
done
[[ -n "$dirobj" ]] || fail "directory object not found"
cp "$dirobj" dir.orig
printf '\x01' | dd of="$dirobj" bs=1 seek=20 conv=notrunc status=none
expect_eio d/f "flipped byte in a directory object"
cp dir.orig "$dirobj"

# a flipped byte in the superblock: mount and check refuse
cp efs/superblock sb.orig
printf '\x01' | dd of=efs/superblock bs=1 seek=110 conv=notrunc status=none
set +e
"$EFS" mount --key-fd 3 -f efs "$mnt" 3<key 2>err; rc=$?
set -e
[[ $rc -eq 3 ]] && grep -q efs_integrity err || fail "tampered superblock: rc=$rc $(cat err)"
cp sb.orig efs/superblock
"$EFS" check --key-fd 3 efs 3<key >/dev/null || fail "check failed after restoring everything"
echo "efs_mount: ok"
