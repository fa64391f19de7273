// EAT Attestation Results (EAR, draft-fv-rats-ear) with the AR4SI trustworthiness vector.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/json.h"

namespace coffer::trustee::as {

// AR4SI trustworthiness claims, in the order of the draft.
inline constexpr std::string_view kTrustClaims[] = {
    "instance-identity", "configuration",  "executables",    "file-system",
    "hardware",          "runtime-opaque", "storage-opaque", "sourced-data"};

// Tier of one claim value: "none" for -1..1, "affirming" for |v| < 32, "warning" for |v| < 96,
// else "contraindicated".
std::string_view trust_tier(int value);

// Extracts the trustworthiness vector from a policy result object: the AR4SI keys it defines,
// each an integer in -127..127 (else "bad_policy_result").
Result<Json> trust_vector_from(const Json& policy_result);

// The worst tier of the vector (contraindicated > warning > affirming > none); "none" if empty.
std::string ear_status(const Json& trust_vector);

// The attestation policy's own words for its claims: its optional `reasons` rule, an object from
// AR4SI claim name to a set of strings ("tdx.mr_td is not among the registered reference
// values"). Kept in the EAR submod under "ear.veraison.policy-claims" {"reasons": ...} so that a
// relying party (the KBS's 403) can say why a claim is not affirming. Only the AR4SI claim names
// are kept, at most 16 short printable strings each; anything else in the policy's output is
// ignored. Empty object when the policy gives no reasons.
Json policy_reasons_from(const Json& policy_result);

// AR4SI's meaning of one claim value ("executables", 33 -> "unrecognized run-time executables"),
// or "" when the draft defines none.
std::string_view ar4si_meaning(std::string_view claim, int value);

// Why the appraisal in EAR `claims` is not affirming, claim by claim, worst first:
// "executables 33: tdx.mr_td is not among the registered reference values; hardware 97: ..."
// Each non-affirming (warning or contraindicated) claim of each submod, with the policy's reasons
// when the EAR carries them, else AR4SI's meaning of the value. "" when every claim is affirming
// or none. Submods other than a single "cpu0" are named ("gpu0: executables 33: ...").
std::string describe_appraisal(const Json& claims);

}  // namespace coffer::trustee::as
