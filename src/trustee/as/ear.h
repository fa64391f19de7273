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

}  // namespace coffer::trustee::as
