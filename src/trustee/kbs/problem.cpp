#include "trustee/kbs/problem.h"

#include <map>

#include "core/bytes.h"
#include "core/log.h"

namespace coffer::trustee::kbs {
namespace {

struct Mapping {
  int status;
  const char* variant;
};

const std::map<std::string, Mapping, std::less<>>& mappings() {
  static const std::map<std::string, Mapping, std::less<>> m = {
      {"bad_json", {400, "InvalidRequest"}},
      {"bad_request", {400, "InvalidRequest"}},
      {"bad_base64", {400, "InvalidRequest"}},
      {"bad_jwk", {400, "InvalidRequest"}},
      {"unsupported_version", {400, "ProtocolVersion"}},
      {"bad_resource_path", {400, "InvalidResourcePath"}},
      {"bad_policy", {400, "PolicyInvalid"}},
      {"bad_reference_value", {400, "InvalidRequest"}},
      {"unsupported_tee", {400, "UnsupportedTee"}},
      {"too_large", {413, "PayloadTooLarge"}},
      {"session_not_found", {401, "UnAuthenticatedCookie"}},
      {"missing_cookie", {401, "UnAuthenticatedCookie"}},
      {"session_expired", {401, "ExpiredCookie"}},
      {"session_not_attested", {401, "UnAuthenticatedCookie"}},
      {"nonce_used", {401, "NonceReused"}},
      {"nonce_mismatch", {401, "InvalidNonce"}},
      {"token_invalid", {401, "TokenInvalid"}},
      {"admin_auth", {401, "AdminAuth"}},
      {"attestation_failed", {401, "AttestationFailed"}},
      {"policy_deny", {403, "PolicyDeny"}},
      // The policy did not finish within its time or builtin-cost budget (config [policy]).
      {"policy_deadline_exceeded", {503, "PolicyDeadlineExceeded"}},
      {"policy_cost_exceeded", {500, "PolicyCostExceeded"}},
      {"not_found", {404, "ResourceNotFound"}},
  };
  return m;
}

}  // namespace

net::Response problem(int status, std::string_view variant, std::string_view detail) {
  // Details quote client input; input is validated where it enters, and should any invalid
  // UTF-8 slip through, the answer is still this problem, never a failure to serialise it.
  std::string text = is_valid_utf8(detail) ? std::string(detail) : printable_excerpt(detail, 1024);
  Json body = {{"type", std::string(kErrorTypePrefix) + std::string(variant)},
               {"detail", std::move(text)}};
  auto r = net::Response::json(status, body);
  r.headers.set("Content-Type", "application/problem+json");
  return r;
}

net::Response problem_from_error(const Error& e) {
  auto it = mappings().find(e.code);
  if (it == mappings().end()) {
    spdlog::error("internal error: {}", e.to_string());
    return problem(500, "InternalError", "internal error; see the trustee log");
  }
  return problem(it->second.status, it->second.variant, e.message);
}

}  // namespace coffer::trustee::kbs
