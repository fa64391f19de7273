// RCAR sessions without a session table. The kbs-session-id cookie carries its own state,
// authenticated by HMAC-SHA256 under a server key:
//   - /auth hands out a challenge cookie (TEE, nonce, expiry) and stores nothing, so a flood of
//     /auth requests costs the server no memory and cannot crowd out real attesters;
//   - /attest opens the challenge, and after a successful attestation records its nonce as
//     consumed until the challenge expires (a replayed /attest fails), and replaces the cookie by
//     an attested-session cookie: an expiring reference (SHA-256) to the issued token, whose
//     claims the server keeps for cookie-based /resource requests.
// Only successful attestations add state (consumed nonces, attested sessions), and both sets are
// bounded by expiry and by a cap; reaching a cap never refuses a client holding a fresh challenge
// (see ReplayGuard and AttestedSessions in sessions.cpp).
// Replicas that share the session key (config [kbs] session_key_file) accept each other's
// challenges; the consumed-nonce set and attested sessions are per replica.
#pragma once

#include <array>
#include <chrono>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "core/bytes.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/json.h"

namespace coffer::trustee::kbs {

inline constexpr std::size_t kMinSessionKeyBytes = 32;

struct SessionSettings {
  std::chrono::seconds challenge_ttl{std::chrono::minutes(5)};
  std::size_t max_attested_sessions = 10000;  // attested sessions whose claims are kept
  std::size_t max_consumed_nonces = 100000;   // replay cache of redeemed challenges
};

// A challenge handed out by /auth, as read back from its cookie.
struct Challenge {
  std::string tee;
  std::string nonce;  // standard base64 of 32 random bytes, as sent to the client
  TimePoint expires;
};

struct IssuedChallenge {
  std::string cookie;  // value of kbs-session-id
  std::string nonce;
};

// Reads a session key file: at least 32 bytes (e.g. `head -c 32 /dev/urandom`), at most 1 KiB,
// not readable by group or others. Errors: "bad_config", "insecure_key_file", file errors.
Result<Bytes> load_session_key(const std::filesystem::path& path);

class Sessions {
 public:
  // `key`: at least kMinSessionKeyBytes (a broken invariant otherwise: the caller checks).
  Sessions(Bytes key, std::shared_ptr<const Clock> clock, SessionSettings settings);

  // A fresh challenge for `tee`. Allocates nothing that outlives the call.
  [[nodiscard]] IssuedChallenge issue_challenge(std::string_view tee) const;

  // The challenge of an /attest request's cookie. Errors: "session_not_found" (not a cookie
  // this KBS issued), "session_expired" (expired, or older than the replay cache remembers),
  // "nonce_used" (the challenge was redeemed already, or the cookie is an attested session's).
  [[nodiscard]] Result<Challenge> open_challenge(std::string_view cookie) const;

  // Marks the challenge redeemed. "nonce_used" when another /attest redeemed it first (checked
  // and recorded atomically, so of two concurrent attempts one fails).
  Status consume(const Challenge& challenge);

  // Keeps the claims of a token just issued and returns the attested-session cookie (valid until
  // the token expires).
  std::string attested_cookie(std::string_view token, Json claims, TimePoint token_expires);

  // The claims of an attested session. Errors: "session_not_found" (forged or unknown cookie,
  // or a session this replica no longer remembers: attest again), "token_invalid" (its token
  // expired), "session_not_attested" (a challenge cookie).
  [[nodiscard]] Result<std::shared_ptr<const Json>> open_attested(std::string_view cookie) const;

  // A client starting a new handshake abandons the attested session its cookie names (CoCo's
  // client keeps its cookie across handshakes): dropped now rather than when evicted, so the
  // kept sessions are about one per client. Only a cookie this KBS sealed can drop anything.
  void forget_attested(std::string_view cookie);

  [[nodiscard]] std::size_t consumed_nonces() const;
  [[nodiscard]] std::size_t attested_sessions() const;

 private:
  using Key16 = std::array<std::uint8_t, 16>;
  using Key32 = std::array<std::uint8_t, 32>;
  struct KeyHash {
    std::size_t operator()(const Key16& k) const noexcept;
    std::size_t operator()(const Key32& k) const noexcept;
  };
  struct Attested {
    std::shared_ptr<const Json> claims;
    TimePoint expires;
  };

  [[nodiscard]] std::string seal(Bytes body) const;
  [[nodiscard]] Result<Bytes> unseal(std::string_view cookie) const;
  static Key16 nonce_key(ByteView raw_nonce);
  void sweep_consumed_locked(std::int64_t now_s);

  Bytes key_;
  std::shared_ptr<const Clock> clock_;
  SessionSettings settings_;

  // Replay cache: nonces of redeemed challenges until their challenge expires. When full, the
  // oldest entries are dropped and `floor_s_` rises to their expiry: a challenge expiring at or
  // before the floor is refused as expired, since it might be one that was forgotten.
  mutable std::mutex consumed_mu_;
  std::unordered_set<Key16, KeyHash> consumed_;
  std::deque<std::pair<std::int64_t, Key16>> consumed_order_;  // (expiry, nonce) in insert order
  std::int64_t floor_s_ = 0;

  // Attested sessions by token digest, oldest dropped first when full.
  mutable std::mutex attested_mu_;
  std::unordered_map<Key32, Attested, KeyHash> attested_;
  std::deque<Key32> attested_order_;
};

}  // namespace coffer::trustee::kbs
