// The enclave side of the simulated TEE's quote service (protocol in quote_service.h and
// docs/simulated-tee.md). Its own library, coffer_evidence_sim_client, so that the guest links the
// client and never the simulation PKI or the service that signs with it.
#pragma once

#include <filesystem>
#include <string_view>

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

 private:
  std::filesystem::path socket_path_;
};

// Writes all of `data` within the I/O timeout; false on error or timeout.
bool write_all(int fd, std::string_view data);
inline constexpr int kQuoteIoTimeoutMs = 10'000;

}  // namespace coffer::evidence::sim
