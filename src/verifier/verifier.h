// The interface every TEE evidence verifier implements; the attestation service keeps a registry
// of them keyed by TEE name ("sample", "tdx", "snp", "sgx", ...).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/json.h"

namespace coffer::verifier {

struct VerifyInput {
  // The TEE-specific evidence JSON (KBS protocol: tee-evidence.primary_evidence).
  const Json& evidence;
  // What the evidence must carry in its report data: SHA-384 of the JCS runtime-data
  // (48 bytes); hardware TEEs carry it zero-padded to 64 bytes.
  ByteView expected_report_data;
  // SHA-384 (or the TEE's digest) of the init-data, when the request had init-data: must match
  // MRCONFIGID / HOSTDATA; absent means "not checked".
  std::optional<ByteView> expected_init_data_digest;
  // The verification time (never the system clock inside a verifier).
  TimePoint now;
};

class Verifier {
 public:
  virtual ~Verifier() = default;
  [[nodiscard]] virtual std::string_view tee() const = 0;
  // Verifies the evidence and returns the TEE claims as a JSON object (field names as Trustee's
  // verifiers produce them, so that existing Rego policies work unchanged). Each failure has its
  // own stable error code (e.g. "report_data_mismatch", "quote_signature_invalid").
  virtual Result<Json> verify(const VerifyInput& input) const = 0;
};

}  // namespace coffer::verifier
