#include "verifier/sample/sample_verifier.h"

#include "verifier/errors.h"

namespace coffer::verifier::sample {

Result<Json> SampleVerifier::verify(const VerifyInput& input) const {
  const Json& ev = input.evidence;
  if (!ev.is_object())
    return make_error(VerifierError::kBadEvidence, "sample evidence must be a JSON object");
  auto svn = json_string(ev, "svn");
  if (!svn)
    return make_error(VerifierError::kBadEvidence, "sample evidence: " + svn.error().message);
  auto report_data_b64 = json_string(ev, "report_data");
  if (!report_data_b64)
    return make_error(VerifierError::kBadEvidence,
                      "sample evidence: " + report_data_b64.error().message);
  auto report_data = base64_decode(*report_data_b64);
  if (!report_data)
    return make_error(VerifierError::kBadEvidence,
                      "sample evidence: report_data is not standard base64");

  // The report data must be exactly the digest of this session's runtime data.
  if (!constant_time_equal(*report_data, input.expected_report_data)) {
    return make_error(
        VerifierError::kReportDataMismatch,
        "sample evidence report_data does not match the runtime data (nonce and tee-pubkey)");
  }

  Json claims = {{"svn", *svn}, {"report_data", hex_encode(*report_data)}, {"tee_root", "none"}};
  if (input.expected_init_data_digest) {
    // The sample TEE has no register for init-data: report what the KBS was given.
    claims["init_data"] = hex_encode(*input.expected_init_data_digest);
  }
  return claims;
}

}  // namespace coffer::verifier::sample
