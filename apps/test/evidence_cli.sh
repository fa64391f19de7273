#!/bin/sh
# Exit codes and verdicts of `coffer evidence`, run from the project root with the coffer
# executable as $1: 0 accepted, 1 rejected, 2 usage or I/O error, 3 collateral or VCEK could not
# be downloaded (docs/cli.md).
tool="$1"
E=testdata/evidence
fail=0
out=$(mktemp)
expect() {
  want="$1"; shift
  "$tool" "$@" > "$out" 2>&1
  got=$?
  if [ "$got" != "$want" ]; then
    echo "FAIL (exit $got, want $want): $*"; cat "$out"; fail=1
  fi
}
expect 0 evidence inspect $E/tdx/trustee/tdx_quote_4.dat
expect 0 evidence inspect $E/sgx/dcap-qvl/sgx_quote
expect 0 evidence inspect $E/snp/go-sev-guest/attestation.bin
expect 0 evidence inspect $E/tdx/trustee/CCEL_data
expect 2 evidence inspect $E/README.md
expect 0 evidence verify $E/tdx/trustee/tdx_quote_4.dat --collateral $E/tdx/go-tdx-guest --at 2023-07-01T01:00:00Z
expect 0 evidence verify $E/sgx/dcap-qvl/sgx_quote --collateral $E/sgx/dcap-qvl/sgx_quote_collateral.split --at 2025-07-01T00:00:00Z
expect 1 evidence verify $E/tdx/go-tdx-guest/tdx_prod_quote_SPR_E4.dat --collateral $E/tdx/go-tdx-guest --at 2023-07-01T01:00:00Z
expect 1 evidence verify $E/tdx/trustee/tdx_quote_4.dat --collateral $E/tdx/go-tdx-guest --at 2053-07-01T00:00:00Z
expect 1 evidence verify $E/tdx/trustee/tdx_quote_4.dat --eventlog $E/tdx/trustee/CCEL_data --at 2023-07-01T01:00:00Z
expect 0 evidence verify $E/snp/go-sev-guest/attestation.bin --vek $E/snp/go-sev-guest --at 2025-01-01T00:00:00Z
expect 1 evidence verify $E/snp/trustee/test-report.bin --vek $E/snp/go-sev-guest --at 2025-01-01T00:00:00Z
expect 2 evidence verify $E/tdx/trustee/tdx_quote_4.dat --at yesterday
expect 2 evidence verify /nonexistent/quote
expect 2 evidence verify $E/tdx/trustee/tdx_quote_4.dat --collateral $E/tdx/go-tdx-guest --pccs http://127.0.0.1:9
expect 2 evidence frobnicate
# nothing listens on port 9 of the loopback: the download fails, which is not a rejection
expect 3 evidence verify $E/tdx/trustee/tdx_quote_4.dat --pccs http://127.0.0.1:9 --at 2023-07-01T01:00:00Z
expect 3 evidence verify $E/snp/go-sev-guest/attestation.bin --kds http://127.0.0.1:9 --at 2025-01-01T00:00:00Z
rm -f "$out"
[ $fail = 0 ] && echo "all coffer evidence checks passed"
exit $fail
