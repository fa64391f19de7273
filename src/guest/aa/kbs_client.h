// KbsClient: the attester's side of the KBS protocol 0.4.0 (RCAR: Request, Challenge,
// Attestation, Response), as coffer-trustee and CoCo's Trustee speak it.
//
//   auto attester = COFFER_TRY(aa::make_attester("sim-tdx", {.quote_service_socket = sock}));
//   aa::KbsClient kbs("http://127.0.0.1:8080", *attester);
//   Bytes key = COFFER_TRY(kbs.get_resource("default/key/image-1"));
//
// The client owns an ephemeral P-256 key (generated once per client object) whose public JWK is
// the "tee-pubkey" bound into the evidence; resources come back as JWE sealed to it. The
// attestation token is kept until shortly before its "exp" and presented as a Bearer token;
// a 401 on a resource request triggers one fresh handshake. Connection errors and 5xx answers
// are retried a bounded number of times with exponential backoff. Not thread-safe.
//
// Error codes: "kbs_bad_request" (400), "kbs_unauthorized" (401: session, nonce, attestation
// refused), "kbs_forbidden" (403: policy), "kbs_not_found" (404), "kbs_too_large" (413),
// "kbs_busy" (429), "kbs_server_error" (5xx after retries), "kbs_unexpected_status" (others),
// "kbs_bad_response" (a 200 whose body is not what the protocol says), "kbs_unreachable"
// (connection errors after retries), "bad_resource_path", and the attester's and JWE's codes.
// KBS error messages carry the server's RFC 7807 "type" variant and "detail".
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/json.h"
#include "guest/aa/attester.h"

namespace coffer::guest::aa {

inline constexpr std::string_view kKbsProtocolVersion = "0.4.0";

// The error code for a KBS answer's HTTP status (the list above); the one mapping every KBS
// caller uses (this client, `coffer kbs` and the image commands).
std::string kbs_status_code(int status);

struct KbsClientOptions {
  // PEM CA bundle for an https KBS; empty: the system store.
  std::string ca_file;
  // Skip TLS certificate verification (development only).
  bool insecure = false;
  // CoCo init-data TOML sent with /attest as {"format":"toml","body":...}; its digest must be
  // what the TEE carries in MRCONFIGID / HOST_DATA.
  std::optional<std::string> init_data_toml;
  // Attempts after the first one for connection errors, 5xx and 429.
  int max_retries = 3;
  std::chrono::milliseconds initial_backoff{250};
  std::chrono::milliseconds max_backoff{4000};
  std::chrono::milliseconds request_timeout{30'000};
  // A token is considered expired this long before its "exp".
  std::chrono::seconds token_refresh_margin{10};
  std::shared_ptr<const Clock> clock = system_clock();
};

// The RFC 7807 body of the last KBS error answer.
struct KbsProblem {
  int status = 0;
  std::string type;     // e.g. "https://github.com/confidential-containers/kbs/errors/PolicyDeny"
  std::string variant;  // the last path segment of type, e.g. "PolicyDeny"
  std::string detail;
};

class KbsClient {
 public:
  // `url` is the KBS base URL ("http://host:port", no /kbs/v0). The attester must outlive the
  // client.
  KbsClient(std::string url, Attester& attester, KbsClientOptions options = {});
  ~KbsClient();
  KbsClient(KbsClient&&) noexcept;
  KbsClient& operator=(KbsClient&&) noexcept;
  KbsClient(const KbsClient&) = delete;
  KbsClient& operator=(const KbsClient&) = delete;

  // Runs auth + attest and returns the attestation (EAR) token, which is kept.
  Result<std::string> attest();

  // Fetches and decrypts kbs:///<repo>/<type>/<tag>; attests first when no valid token is held.
  // Accepts "repo/type/tag", "/repo/type/tag" or "kbs:///repo/type/tag".
  Result<Bytes> get_resource(std::string_view repo_type_tag);

  // The held token while it is not expired.
  [[nodiscard]] std::optional<std::string> token() const;
  // The tee-pubkey JWK this client binds into its evidence.
  [[nodiscard]] Result<Json> tee_pubkey() const;
  // The last RFC 7807 error the KBS returned, if any.
  [[nodiscard]] const std::optional<KbsProblem>& last_problem() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace coffer::guest::aa
