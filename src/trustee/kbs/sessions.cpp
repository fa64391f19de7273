#include "trustee/kbs/sessions.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "core/file.h"
#include "crypto/digest.h"
#include "crypto/random.h"

namespace coffer::trustee::kbs {
namespace {

// Cookie value: base64url(body || HMAC-SHA256(key, kContext || body)), body =
//   kind (1) | expiry, Unix seconds, big-endian (8) | kind-specific part
//   challenge: nonce (32) | TEE name (1-64)
//   attested:  SHA-256 of the token (32)
constexpr std::string_view kContext = "coffer kbs-session-id v1";
constexpr std::uint8_t kChallenge = 'C';
constexpr std::uint8_t kAttested = 'A';
constexpr std::size_t kHeader = 1 + 8;
constexpr std::size_t kTagBytes = 32;
constexpr std::size_t kNonceBytes = 32;
constexpr std::size_t kMaxTee = 64;
// Longest cookie we ever issue, with margin: anything longer is refused before decoding.
constexpr std::size_t kMaxCookieChars = 256;

void put_u64(Bytes& out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

std::int64_t get_i64(ByteView in) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | in[i];
  return static_cast<std::int64_t>(v);
}

}  // namespace

Result<Bytes> load_session_key(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return make_error("bad_config", "session key file '" + path.string() + "' does not exist");
  // The key authenticates every session cookie: whoever reads it can mint challenges.
  if ((st.st_mode & 077) != 0) {
    return make_error("insecure_key_file", "session key file '" + path.string() +
                                               "' is readable by others: chmod 600 it");
  }
  auto key = read_file(path, 1024);
  if (!key) return wrap_error(key.error(), "session key file '" + path.string() + "'");
  if (key->size() < kMinSessionKeyBytes) {
    return make_error("bad_config", "session key file '" + path.string() +
                                        "' must hold at least 32 bytes (head -c 32 /dev/urandom)");
  }
  return key;
}

std::size_t Sessions::KeyHash::operator()(const Key16& k) const noexcept {
  std::size_t h = 0;
  std::memcpy(&h, k.data(), sizeof h);  // the bytes are random (nonce) or a digest
  return h;
}

std::size_t Sessions::KeyHash::operator()(const Key32& k) const noexcept {
  std::size_t h = 0;
  std::memcpy(&h, k.data(), sizeof h);
  return h;
}

Sessions::Sessions(Bytes key, std::shared_ptr<const Clock> clock, SessionSettings settings)
    : key_(std::move(key)), clock_(std::move(clock)), settings_(settings) {
  if (key_.size() < kMinSessionKeyBytes) std::abort();
  settings_.max_consumed_nonces = std::max<std::size_t>(1, settings_.max_consumed_nonces);
  settings_.max_attested_sessions = std::max<std::size_t>(1, settings_.max_attested_sessions);
}

std::string Sessions::seal(Bytes body) const {
  Bytes mac_input(kContext.begin(), kContext.end());
  mac_input.insert(mac_input.end(), body.begin(), body.end());
  Bytes tag = crypto::hmac(crypto::DigestAlg::kSha256, key_, mac_input);
  body.insert(body.end(), tag.begin(), tag.end());
  return base64url_encode(body);
}

Result<Bytes> Sessions::unseal(std::string_view cookie) const {
  auto invalid = [] {
    return make_error("session_not_found",
                      "the kbs-session-id cookie is not one this KBS issued: call /auth first");
  };
  if (cookie.size() > kMaxCookieChars) return invalid();
  auto raw = base64url_decode(cookie);
  if (!raw || raw->size() < kHeader + kTagBytes) return invalid();
  Bytes body(raw->begin(), raw->end() - kTagBytes);
  Bytes mac_input(kContext.begin(), kContext.end());
  mac_input.insert(mac_input.end(), body.begin(), body.end());
  Bytes tag = crypto::hmac(crypto::DigestAlg::kSha256, key_, mac_input);
  if (!constant_time_equal(ByteView(tag), ByteView(*raw).subspan(body.size()))) return invalid();
  return body;
}

Sessions::Key16 Sessions::nonce_key(ByteView raw_nonce) {
  Key16 k{};
  std::copy_n(raw_nonce.begin(), k.size(), k.begin());
  return k;
}

IssuedChallenge Sessions::issue_challenge(std::string_view tee) const {
  Bytes nonce = crypto::random_bytes(kNonceBytes);
  auto expires = unix_seconds(clock_->now() + settings_.challenge_ttl);
  Bytes body{kChallenge};
  put_u64(body, static_cast<std::uint64_t>(expires));
  body.insert(body.end(), nonce.begin(), nonce.end());
  tee = tee.substr(0, kMaxTee);  // TEE names are short; the caller checked it is a known one
  body.insert(body.end(), tee.begin(), tee.end());
  return {seal(std::move(body)), base64_encode(nonce)};
}

Result<Challenge> Sessions::open_challenge(std::string_view cookie) const {
  Bytes body = COFFER_TRY(unseal(cookie));
  if (body[0] == kAttested) {
    return make_error("nonce_used", "this session has attested already: call /auth again");
  }
  if (body[0] != kChallenge || body.size() <= kHeader + kNonceBytes)
    return make_error("session_not_found", "malformed session cookie: call /auth first");
  std::int64_t expires = get_i64(ByteView(body).subspan(1));
  std::int64_t now = unix_seconds(clock_->now());
  ByteView nonce = ByteView(body).subspan(kHeader, kNonceBytes);
  if (expires <= now) return make_error("session_expired", "session expired: call /auth again");
  {
    std::lock_guard lock(consumed_mu_);
    if (expires <= floor_s_) {
      return make_error("session_expired",
                        "this challenge is older than the replay cache remembers: call /auth "
                        "again");
    }
    // Checked again atomically by consume(); this early check spares the verification.
    if (consumed_.contains(nonce_key(nonce))) {
      return make_error("nonce_used", "this session's nonce was already used: call /auth again");
    }
  }
  Challenge c;
  c.nonce = base64_encode(nonce);
  auto tee = ByteView(body).subspan(kHeader + kNonceBytes);
  c.tee.assign(tee.begin(), tee.end());
  c.expires = from_unix_seconds(expires);
  return c;
}

void Sessions::sweep_consumed_locked(std::int64_t now_s) {
  // Insert order is nearly expiry order (every challenge lives challenge_ttl); an entry that
  // expired behind a younger one just stays a little longer.
  while (!consumed_order_.empty() && consumed_order_.front().first <= now_s) {
    consumed_.erase(consumed_order_.front().second);
    consumed_order_.pop_front();
  }
}

Status Sessions::consume(const Challenge& challenge) {
  auto raw = base64_decode(challenge.nonce);
  if (!raw || raw->size() != kNonceBytes) return make_error("nonce_mismatch", "bad nonce");
  Key16 key = nonce_key(*raw);
  std::int64_t expires = unix_seconds(challenge.expires);
  std::lock_guard lock(consumed_mu_);
  sweep_consumed_locked(unix_seconds(clock_->now()));
  if (expires <= floor_s_) {
    return make_error("session_expired",
                      "this challenge is older than the replay cache remembers: call /auth again");
  }
  if (!consumed_.insert(key).second) {
    return make_error("nonce_used", "this session's nonce was already used: call /auth again");
  }
  consumed_order_.emplace_back(expires, key);
  // Full: forget the oldest, and refuse from now on every challenge that expires no later than
  // it. Fresh challenges (later expiry) stay redeemable: reaching the cap never locks clients out.
  while (consumed_.size() > settings_.max_consumed_nonces) {
    floor_s_ = std::max(floor_s_, consumed_order_.front().first);
    consumed_.erase(consumed_order_.front().second);
    consumed_order_.pop_front();
  }
  return ok();
}

std::string Sessions::attested_cookie(std::string_view token, Json claims,
                                      TimePoint token_expires) {
  Bytes digest = crypto::sha256(as_bytes(token));
  Key32 key{};
  std::copy_n(digest.begin(), key.size(), key.begin());
  Bytes body{kAttested};
  put_u64(body, static_cast<std::uint64_t>(unix_seconds(token_expires)));
  body.insert(body.end(), digest.begin(), digest.end());
  auto shared = std::make_shared<const Json>(std::move(claims));
  TimePoint now = clock_->now();
  std::lock_guard lock(attested_mu_);
  while (!attested_order_.empty()) {
    auto it = attested_.find(attested_order_.front());
    bool stale = it == attested_.end() || it->second.expires <= now;
    if (!stale && attested_.size() < settings_.max_attested_sessions) break;
    // Expired, or the oldest session when full: its client gets 401 and attests again.
    if (it != attested_.end()) attested_.erase(it);
    attested_order_.pop_front();
  }
  if (attested_.insert_or_assign(key, Attested{std::move(shared), token_expires}).second)
    attested_order_.push_back(key);
  return seal(std::move(body));
}

Result<std::shared_ptr<const Json>> Sessions::open_attested(std::string_view cookie) const {
  Bytes body = COFFER_TRY(unseal(cookie));
  if (body[0] == kChallenge)
    return make_error("session_not_attested", "session has not attested yet");
  if (body[0] != kAttested || body.size() != kHeader + 32)
    return make_error("session_not_found", "malformed session cookie: attest first");
  // The session lives as long as its token.
  if (get_i64(ByteView(body).subspan(1)) <= unix_seconds(clock_->now()))
    return make_error("token_invalid", "the session's attestation token expired: attest again");
  Key32 key{};
  std::copy_n(body.begin() + kHeader, key.size(), key.begin());
  std::lock_guard lock(attested_mu_);
  auto it = attested_.find(key);
  if (it == attested_.end()) {
    return make_error("session_not_found",
                      "this KBS no longer holds the session's attestation (or another replica "
                      "issued it): attest again, or send the token as 'Authorization: Bearer'");
  }
  return it->second.claims;
}

void Sessions::forget_attested(std::string_view cookie) {
  auto body = unseal(cookie);
  if (!body || (*body)[0] != kAttested || body->size() != kHeader + 32) return;
  Key32 key{};
  std::copy_n(body->begin() + kHeader, key.size(), key.begin());
  std::lock_guard lock(attested_mu_);
  attested_.erase(key);
  // Its place in attested_order_ goes when it reaches the front, or here if the order list is
  // mostly such holes (a long-lived session at the front keeps the rest from being popped).
  if (attested_order_.size() > 2 * std::max<std::size_t>(attested_.size(), 1024)) {
    std::erase_if(attested_order_, [&](const Key32& k) { return !attested_.contains(k); });
  }
}

std::size_t Sessions::consumed_nonces() const {
  std::lock_guard lock(consumed_mu_);
  return consumed_.size();
}

std::size_t Sessions::attested_sessions() const {
  std::lock_guard lock(attested_mu_);
  return attested_.size();
}

}  // namespace coffer::trustee::kbs
