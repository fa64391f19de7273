// Freshness and configuration binding shared by the hardware verifiers.
#pragma once

#include <optional>
#include <string>

#include "core/bytes.h"
#include "core/error.h"
#include "core/json.h"
#include "verifier/errors.h"

namespace coffer::verifier {

// `field` (REPORTDATA, MRCONFIGID, HOST_DATA, CONFIGID) must equal `expected` zero-padded to the
// field's size; a longer `expected` never matches. Fails with `code` (e.g. kReportDataMismatch).
Status check_binding(ByteView field, ByteView expected, VerifierError code,
                     const std::string& what);

// Base64 (standard or URL-safe, padded or not) of an evidence field; "bad_evidence" otherwise.
Result<Bytes> decode_evidence_base64(const Json& evidence, std::string_view key);

}  // namespace coffer::verifier
