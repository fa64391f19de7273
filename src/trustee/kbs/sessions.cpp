#include "trustee/kbs/sessions.h"

#include "crypto/random.h"

namespace coffer::trustee::kbs {

SessionTable::SessionTable(std::shared_ptr<const Clock> clock, std::chrono::seconds ttl,
                           std::size_t max_sessions)
    : clock_(std::move(clock)), ttl_(ttl), max_sessions_(max_sessions) {}

void SessionTable::sweep_locked(TimePoint now) {
  std::erase_if(sessions_, [&](const auto& kv) { return kv.second.session.expires <= now; });
  creates_since_sweep_ = 0;
}

Result<Session> SessionTable::create(const std::string& tee, const std::string* replaces) {
  TimePoint now = clock_->now();
  Session s;
  s.id = crypto::random_uuid_hex();
  s.tee = tee;
  s.nonce = base64_encode(crypto::random_bytes(32));
  s.expires = now + ttl_;
  std::lock_guard lock(mu_);
  if (replaces != nullptr) sessions_.erase(*replaces);
  // Amortised sweep, and a forced one before refusing for lack of room.
  if (++creates_since_sweep_ >= 1024 || sessions_.size() >= max_sessions_) sweep_locked(now);
  if (sessions_.size() >= max_sessions_) {
    return make_error("too_many_sessions", "the session table is full (" +
                                               std::to_string(max_sessions_) +
                                               " live sessions); retry later");
  }
  sessions_.emplace(s.id, Entry{s, false});
  return s;
}

Result<Session> SessionTable::begin_attest(const std::string& id) {
  TimePoint now = clock_->now();
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end())
    return make_error("session_not_found", "unknown session: call /auth first");
  if (it->second.session.expires <= now) {
    sessions_.erase(it);
    return make_error("session_expired", "session expired: call /auth again");
  }
  // A nonce proves freshness once; a replayed attest request must start over at /auth.
  if (it->second.nonce_used)
    return make_error("nonce_used", "this session's nonce was already used: call /auth again");
  it->second.nonce_used = true;
  return it->second.session;
}

void SessionTable::complete_attest(const std::string& id, Json token_claims) {
  TimePoint expires{};
  if (auto it = token_claims.find("exp"); it != token_claims.end() && it->is_number_integer()) {
    expires = from_unix_seconds(it->get<std::int64_t>());
  }
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  it->second.session.attested = true;
  it->second.session.token_claims = std::make_shared<const Json>(std::move(token_claims));
  it->second.session.token_expires = expires;
}

Result<Session> SessionTable::get_attested(const std::string& id) const {
  TimePoint now = clock_->now();
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end())
    return make_error("session_not_found", "unknown session: attest first");
  if (it->second.session.expires <= now)
    return make_error("session_expired", "session expired: attest again");
  if (!it->second.session.attested)
    return make_error("session_not_attested", "session has not attested yet");
  return it->second.session;
}

std::size_t SessionTable::size() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

}  // namespace coffer::trustee::kbs
