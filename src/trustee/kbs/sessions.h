// RCAR sessions: created by /auth, consumed by /attest, then carrying the attestation token.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/clock.h"
#include "core/error.h"
#include "core/json.h"

namespace coffer::trustee::kbs {

struct Session {
  std::string id;     // 32 hex digits, the kbs-session-id cookie
  std::string tee;    // TEE named in the auth request
  std::string nonce;  // standard base64 of 32 random bytes
  TimePoint expires;
  bool attested = false;
  // Claims of the EAR token issued to this session (the KBS signed them: no need to re-verify).
  // Shared and immutable, so handing a session out copies a pointer, not the claims; the token
  // string itself is not kept: the client has it.
  std::shared_ptr<const Json> token_claims;
  TimePoint token_expires;
};

class SessionTable {
 public:
  SessionTable(std::shared_ptr<const Clock> clock, std::chrono::seconds ttl,
               std::size_t max_sessions);

  // "too_many_sessions" when the table is full of live sessions. `replaces` is the session the
  // client presented with its /auth request, if any: a client that starts a new handshake
  // abandons its old session, which is dropped at once instead of living until it expires (CoCo's
  // client keeps its cookie jar across handshakes, so the table holds one session per client).
  Result<Session> create(const std::string& tee, const std::string* replaces = nullptr);
  // Hands out the session for attestation and consumes its nonce: a second call for the same
  // session fails with "nonce_used". Errors: "session_not_found", "session_expired".
  Result<Session> begin_attest(const std::string& id);
  void complete_attest(const std::string& id, Json token_claims);
  // An attested, unexpired session. Errors as above plus "session_not_attested".
  Result<Session> get_attested(const std::string& id) const;
  [[nodiscard]] std::size_t size() const;

 private:
  struct Entry {
    Session session;
    bool nonce_used = false;
  };
  void sweep_locked(TimePoint now);
  std::shared_ptr<const Clock> clock_;
  std::chrono::seconds ttl_;
  std::size_t max_sessions_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> sessions_;
  std::size_t creates_since_sweep_ = 0;
};

}  // namespace coffer::trustee::kbs
