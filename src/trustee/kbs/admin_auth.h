// Authentication of the KBS admin API: "Authorization: Bearer <JWT>" signed (EdDSA or ES256) by
// one of the configured admin public keys, with an "exp" at most two hours ahead. With no key
// configured every admin request is refused, unless insecure_admin opens the API (development).
#pragma once

#include <memory>
#include <vector>

#include "core/clock.h"
#include "core/error.h"
#include "crypto/pkey.h"
#include "net/http.h"

namespace coffer::trustee::kbs {

class AdminAuth {
 public:
  AdminAuth(std::vector<crypto::Key> keys, bool insecure, std::shared_ptr<const Clock> clock);
  // Errors ("admin_auth"): no header, not a bearer token, bad/expired token, unknown key.
  Status check(const net::Request& request) const;

 private:
  std::vector<crypto::Key> keys_;
  bool insecure_;
  std::shared_ptr<const Clock> clock_;
};

}  // namespace coffer::trustee::kbs
