// RFC 8785 JSON Canonicalization Scheme: the byte-exact JSON text that the KBS hashes into the
// TEE's report data (and that anything else signing JSON needs).
#pragma once

#include <string>
#include <string_view>

#include "core/error.h"
#include "core/json.h"

namespace coffer::jose {

// Canonical text of `value`: object members sorted by their UTF-16 code units, no whitespace,
// strings escaped as ECMAScript JSON.stringify does, numbers as ECMAScript Number-to-String of
// the IEEE-754 double. nlohmann keeps integers as int64/uint64; JCS sees every number as a
// double, so integers beyond 2^53 are rounded to the nearest double first (that is what any
// JCS implementation outputs for them). Fails with "bad_json" for NaN/Infinity, strings that
// are not valid UTF-8, binary values, or nesting over 256 levels.
Result<std::string> jcs(const Json& value);

// Parses `json_text` (rejecting duplicate member names, as RFC 8785 section 3.1 requires
// I-JSON) and canonicalizes it.
Result<std::string> jcs_from_text(std::string_view json_text);

// ECMAScript Number.prototype.toString for a finite double (ES2015 section 7.1.12.1), e.g.
// 1e+21, 1e-7, 0.000001, 123456789012345680000; -0 gives "0". Exposed for tests.
Result<std::string> jcs_number(double value);

}  // namespace coffer::jose
