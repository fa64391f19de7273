// coffer-trustee assembled from its configuration: storage, KMS key, RVPS, attestation service
// with its verifiers, KBS, and the HTTP(S) server in front.
#pragma once

#include <memory>

#include "core/clock.h"
#include "net/http_server.h"
#include "trustee/as/attestation_service.h"
#include "trustee/config.h"
#include "trustee/kbs/kbs_service.h"
#include "trustee/rvps/rvps.h"
#include "trustee/storage/sqlite_store.h"

namespace coffer::trustee {

class Trustee {
 public:
  // Opens storage (creating the KEK and the token signing key on first start), registers the
  // enabled verifiers and prepares the server. Does not listen yet.
  static Result<std::unique_ptr<Trustee>> create(
      const TrusteeConfig& config, const std::shared_ptr<const Clock>& clock = system_clock());
  ~Trustee();

  Status start();
  void stop();
  // "http://127.0.0.1:PORT" or "https://..." for each configured socket, after start().
  [[nodiscard]] std::vector<std::string> urls() const;

  kbs::KbsService& kbs() { return *kbs_; }
  as::AttestationService& attestation_service() { return *as_; }

 private:
  Trustee() = default;
  TrusteeConfig config_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<rvps::Rvps> rvps_;
  std::unique_ptr<as::AttestationService> as_;
  std::unique_ptr<kbs::KbsService> kbs_;
  std::unique_ptr<net::HttpServer> server_;
};

}  // namespace coffer::trustee
