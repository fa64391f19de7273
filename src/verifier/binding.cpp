#include "verifier/binding.h"

namespace coffer::verifier {

Status check_binding(ByteView field, ByteView expected, VerifierError code,
                     const std::string& what) {
  Bytes padded(expected.begin(), expected.end());
  bool fits = padded.size() <= field.size();
  padded.resize(field.size(), 0);
  if (!fits || !constant_time_equal(padded, field)) {
    return make_error(code, what + " is " + hex_encode(field) + ", expected " +
                                hex_encode(expected) + " (zero-padded)");
  }
  return ok();
}

Result<Bytes> decode_evidence_base64(const Json& evidence, std::string_view key) {
  if (!evidence.is_object())
    return make_error(VerifierError::kBadEvidence, "evidence is not a JSON object");
  auto it = evidence.find(std::string(key));
  if (it == evidence.end() || !it->is_string()) {
    return make_error(VerifierError::kBadEvidence,
                      "evidence lacks the base64 string '" + std::string(key) + "'");
  }
  const std::string& text = it->get_ref<const std::string&>();
  if (auto b = base64_decode(text)) return b;
  if (auto b = base64url_decode(text)) return b;
  return make_error(VerifierError::kBadEvidence, "'" + std::string(key) + "' is not base64");
}

}  // namespace coffer::verifier
