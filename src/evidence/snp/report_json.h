// SEV-SNP attestation reports as CoCo's attestation agent sends them: the JSON serde makes of the
// virtee/sev `AttestationReport` struct. Two generations exist and both are accepted:
//  - sev <= 3: byte arrays as arrays of numbers, `_author_key_en`, `_reserved_*`, `current_build`,
//    `current_minor`, ...; TCB versions {bootloader, tee, _reserved, snp, microcode};
//  - sev >= 4: `key_info`, `cpuid_fam_id`/`cpuid_mod_id`/`cpuid_step` (null for v2), `current` and
//    `committed` as {major, minor, build}; TCB versions {fmc (null before Turin), bootloader,
//    tee, snp, microcode}; optional `launch_mit_vector`/`current_mit_vector` (v5).
// `signature` is {r, s} with the 72-byte little-endian scalars. The JSON drops the reserved
// bytes of the newer generation, so those are taken as zero (as the firmware writes them).
#pragma once

#include "core/json.h"
#include "evidence/snp/report.h"

namespace coffer::evidence::snp {

// "report_json_invalid" on a missing or malformed field; the result is the binary report the
// signature was computed over (then parse_report() rules apply).
Result<Report> report_from_json(const Json& json);
// The sev >= 4 shape.
Json report_to_json(const Report& report);

}  // namespace coffer::evidence::snp
