// The enclave side of the simulated TEE's quote service (protocol in quote_service.h and
// docs/simulated-tee.md). Its own library, coffer_evidence_sim_client, so that the guest links the
// client and never the simulation PKI or the service that signs with it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>

#include "core/bytes.h"

#include "core/error.h"
#include "core/json.h"

namespace coffer::evidence::sim {

// The enclave side: one request, one answer. Errors: "quote_service_unavailable" (cannot
// connect), "quote_service_error" (I/O), and the service's own error codes.
class QuoteServiceClient {
 public:
  explicit QuoteServiceClient(std::filesystem::path socket_path)
      : socket_path_(std::move(socket_path)) {}
  Result<Json> call(const Json& request) const;

  // SGX enclaves (sim-sgx) only, for the calling enclave (docs/simulated-tee.md):
  // a REPORT (432 bytes) for the enclave whose MRENCLAVE is `target_mr_enclave` (32 bytes), with
  // `report_data` (at most 64 bytes, zero-padded). "bad_request" for wrong sizes.
  Result<Bytes> report(ByteView target_mr_enclave, ByteView report_data) const;
  // Checks a REPORT made for this enclave; the service's answer ({"ok":true,"mr_enclave",
  // "mr_signer","isv_prod_id","isv_svn","attributes","config_id","report_data"}) when its MAC
  // verifies, "report_mac_mismatch" otherwise.
  Result<Json> verify_report(ByteView report) const;
  // The 32-byte sealing key for `policy` ("mrenclave" or "mrsigner"), `key_id` (32 bytes) and
  // `isv_svn` (default: the enclave's own; higher: "svn_too_high").
  Result<Bytes> seal_key(std::string_view policy, ByteView key_id,
                         std::optional<std::uint16_t> isv_svn = std::nullopt) const;

 private:
  std::filesystem::path socket_path_;
};

// Writes all of `data` within the I/O timeout; false on error or timeout.
bool write_all(int fd, std::string_view data);
inline constexpr int kQuoteIoTimeoutMs = 10'000;

}  // namespace coffer::evidence::sim
