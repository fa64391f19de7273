#!/usr/bin/env bash
# `coffer guest-image build` through the real executable (docs/vm-enclave.md): two builds are
# byte-identical; the reference values it prints are the ones `coffer sim measure --kernel
# --initrd --cmdline` computes from the files; one changed byte of the initramfs changes them;
# a bad module and a non-empty output directory are refused with their codes.
# Usage: guest_image_cli.sh BIN_DIR
set -euo pipefail
BIN=$(cd "$1" && pwd)
work=$(mktemp -d /tmp/coffer-guest-image-cli.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
build() { "$BIN/coffer" guest-image build --agent "$BIN/coffer-agent" --init "$BIN/coffer-guest-init" --tee sim-tdx "$@"; }

build --out "$work/a" > "$work/a.json"
build --out "$work/b" > "$work/b.json"
for f in vmlinuz initrd cmdline; do cmp "$work/a/$f" "$work/b/$f" || fail "$f differs between builds"; done
cmp "$work/a.json" <(sed "s|$work/b|$work/a|g" "$work/b.json") || fail "the printed values differ"
[[ $(cat "$work/a/cmdline") == "console=ttyS0 panic=-1 loglevel=4 coffer.tee=sim-tdx" ]] ||
  fail "command line: $(cat "$work/a/cmdline")"

measure() {
  "$BIN/coffer" sim measure --kernel "$1/vmlinuz" --initrd "$1/initrd" --cmdline "$(cat "$1/cmdline")"
}
measure "$work/a" > "$work/measured.json"
/usr/bin/python3 - "$work/a.json" "$work/measured.json" <<'PY'
import json, sys
built = json.load(open(sys.argv[1]))["reference_values"]
measured = json.load(open(sys.argv[2]))
assert built == measured, (built, measured)
assert len(built["tdx.mr_td"]) == 96
PY

# one byte of the initramfs changed: another measurement (the trustee would refuse the key)
cp -r "$work/a" "$work/tampered"
printf 'X' | dd of="$work/tampered/initrd" bs=1 seek=200000 conv=notrunc status=none
measure "$work/tampered" > "$work/tampered.json"
/usr/bin/python3 - "$work/measured.json" "$work/tampered.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert a["tdx.mr_td"] != b["tdx.mr_td"] and a["snp.measurement"] != b["snp.measurement"]
assert a["tdx.rtmr_2"] != b["tdx.rtmr_2"] and a["tdx.rtmr_1"] == b["tdx.rtmr_1"]
PY

# refusals
set +e
build --out "$work/c" --module no_such_module > /dev/null 2> "$work/err"; rc=$?
set -e
[[ $rc -ne 0 ]] && grep -q module_not_found "$work/err" || fail "unknown module: rc $rc $(cat "$work/err")"
set +e
build --out "$work/a" > /dev/null 2> "$work/err"; rc=$?
set -e
[[ $rc -ne 0 ]] && grep -q already_exists "$work/err" || fail "non-empty output: rc $rc $(cat "$work/err")"
echo "guest_image_cli: ok"
