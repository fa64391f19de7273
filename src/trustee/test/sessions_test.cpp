#include "trustee/kbs/sessions.h"

#include <sys/stat.h>

#include "core/bytes.h"
#include "core/file.h"
#include "trustee/test/test_util.h"

#include <gtest/gtest.h>

namespace coffer::trustee::kbs {
namespace {

Bytes key(std::uint8_t fill = 1) { return Bytes(32, fill); }

TEST(Sessions, ChallengeRoundTripsThroughItsCookie) {
  auto clock = std::make_shared<ManualClock>(from_unix_seconds(1'000'000));
  Sessions s(key(), clock, {});
  auto issued = s.issue_challenge("sample");
  EXPECT_EQ(base64_decode(issued.nonce)->size(), 32u);
  EXPECT_LE(issued.cookie.size(), 256u);
  auto c = s.open_challenge(issued.cookie);
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->tee, "sample");
  EXPECT_EQ(c->nonce, issued.nonce);
  EXPECT_EQ(c->expires, from_unix_seconds(1'000'000 + 300));
  // Issuing stores nothing.
  for (int i = 0; i < 1000; ++i) (void)s.issue_challenge("sample");
  EXPECT_EQ(s.consumed_nonces(), 0u);
  EXPECT_EQ(s.attested_sessions(), 0u);
  EXPECT_NE(s.issue_challenge("sample").nonce, s.issue_challenge("sample").nonce);
}

TEST(Sessions, ForgedTamperedAndForeignCookiesAreRefused) {
  auto clock = std::make_shared<ManualClock>(from_unix_seconds(1'000'000));
  Sessions s(key(1), clock, {});
  Sessions other(key(2), clock, {});
  auto issued = s.issue_challenge("sample");
  EXPECT_EQ(other.open_challenge(issued.cookie).error().code, "session_not_found");
  // Every single-byte change of the sealed bytes is caught by the MAC.
  Bytes raw = *base64url_decode(issued.cookie);
  for (std::size_t i = 0; i < raw.size(); ++i) {
    Bytes t = raw;
    t[i] ^= 0x01;
    EXPECT_EQ(s.open_challenge(base64url_encode(t)).error().code, "session_not_found") << i;
  }
  // Truncated, empty, not base64url, too long, an old-style hex session id.
  for (const std::string& bad :
       {issued.cookie.substr(0, 20), std::string(), std::string("!!!"), std::string(4096, 'A'),
        std::string("00000000000000000000000000000000")}) {
    EXPECT_EQ(s.open_challenge(bad).error().code, "session_not_found") << bad.substr(0, 40);
    EXPECT_EQ(s.open_attested(bad).error().code, "session_not_found");
  }
}

TEST(Sessions, ExpiryAndReplay) {
  auto clock = std::make_shared<ManualClock>(from_unix_seconds(1'000'000));
  Sessions s(key(), clock, {.challenge_ttl = std::chrono::seconds(60)});
  auto issued = s.issue_challenge("sample");
  auto c = *s.open_challenge(issued.cookie);
  ASSERT_TRUE(s.consume(c));
  EXPECT_EQ(s.consume(c).error().code, "nonce_used");
  EXPECT_EQ(s.open_challenge(issued.cookie).error().code, "nonce_used");
  EXPECT_EQ(s.open_attested(issued.cookie).error().code, "session_not_attested");
  auto late = s.issue_challenge("sample");
  clock->advance(std::chrono::seconds(60));
  EXPECT_EQ(s.open_challenge(late.cookie).error().code, "session_expired");
  // Expired nonces leave the replay cache (their cookies are refused as expired anyway).
  (void)s.consume(*s.open_challenge(s.issue_challenge("sample").cookie));
  EXPECT_EQ(s.consumed_nonces(), 1u);
}

// The replay cache is capped. Reaching the cap forgets the oldest redeemed challenges and
// refuses challenges as old as those, but fresh challenges are still redeemable: only successful
// attestations fill the cache, and even they cannot lock out a client with a fresh challenge.
TEST(Sessions, FullReplayCacheKeepsFreshChallengesUsable) {
  auto clock = std::make_shared<ManualClock>(from_unix_seconds(1'000'000));
  Sessions s(key(), clock, {.challenge_ttl = std::chrono::seconds(300), .max_consumed_nonces = 3});
  auto old_unredeemed = s.issue_challenge("sample");
  std::vector<Challenge> redeemed;
  for (int i = 0; i < 3; ++i) {
    redeemed.push_back(*s.open_challenge(s.issue_challenge("sample").cookie));
    ASSERT_TRUE(s.consume(redeemed.back()));
  }
  clock->advance(std::chrono::seconds(1));
  auto fresh = s.issue_challenge("sample");
  auto f = s.open_challenge(fresh.cookie);
  ASSERT_TRUE(f);
  ASSERT_TRUE(s.consume(*f));  // the 4th: the oldest entry is forgotten
  EXPECT_EQ(s.consumed_nonces(), 3u);
  // The forgotten one cannot be replayed: its challenge is now "too old".
  EXPECT_EQ(s.consume(redeemed[0]).error().code, "session_expired");
  EXPECT_EQ(s.open_challenge(old_unredeemed.cookie).error().code, "session_expired");
  // Fresh challenges keep working however many are redeemed.
  for (int i = 0; i < 20; ++i) {
    clock->advance(std::chrono::seconds(1));
    auto c = s.open_challenge(s.issue_challenge("sample").cookie);
    ASSERT_TRUE(c) << i << " " << c.error().to_string();
    ASSERT_TRUE(s.consume(*c)) << i;
  }
  EXPECT_EQ(s.consumed_nonces(), 3u);
}

TEST(Sessions, AttestedSessionsCarryClaimsAndAreBounded) {
  auto clock = std::make_shared<ManualClock>(from_unix_seconds(1'000'000));
  Sessions s(key(), clock, {.max_attested_sessions = 2});
  auto exp = from_unix_seconds(1'000'000 + 300);
  auto a = s.attested_cookie("token-a", Json{{"iss", "a"}}, exp);
  auto b = s.attested_cookie("token-b", Json{{"iss", "b"}}, exp);
  EXPECT_EQ((*s.open_attested(a))->at("iss"), "a");
  EXPECT_EQ(s.open_challenge(a).error().code, "nonce_used");
  auto c = s.attested_cookie("token-c", Json{{"iss", "c"}}, exp);
  EXPECT_EQ(s.attested_sessions(), 2u);
  EXPECT_EQ(s.open_attested(a).error().code, "session_not_found");  // oldest dropped
  EXPECT_EQ((*s.open_attested(b))->at("iss"), "b");
  EXPECT_EQ((*s.open_attested(c))->at("iss"), "c");
  clock->advance(std::chrono::seconds(300));
  EXPECT_EQ(s.open_attested(c).error().code, "token_invalid");
  (void)s.attested_cookie("token-d", Json::object(), exp + std::chrono::seconds(300));
  EXPECT_EQ(s.attested_sessions(), 1u);  // expired ones swept
}

TEST(Sessions, ANewHandshakeDropsTheAttestedSessionItsCookieNames) {
  auto clock = std::make_shared<ManualClock>(from_unix_seconds(1'000'000));
  Sessions s(key(), clock, {});
  Sessions other(key(2), clock, {});
  auto exp = from_unix_seconds(1'000'000 + 300);
  auto a = s.attested_cookie("token-a", Json::object(), exp);
  auto b = s.attested_cookie("token-b", Json::object(), exp);
  // Forged, foreign and challenge cookies drop nothing.
  s.forget_attested("garbage");
  s.forget_attested(other.attested_cookie("token-a", Json::object(), exp));
  s.forget_attested(s.issue_challenge("sample").cookie);
  EXPECT_EQ(s.attested_sessions(), 2u);
  s.forget_attested(a);
  EXPECT_EQ(s.attested_sessions(), 1u);
  EXPECT_EQ(s.open_attested(a).error().code, "session_not_found");
  EXPECT_TRUE(s.open_attested(b));
  // Many handshakes of one long-lived client and many short ones: memory stays bounded.
  for (int i = 0; i < 5000; ++i) s.forget_attested(s.attested_cookie(std::to_string(i), {}, exp));
  EXPECT_EQ(s.attested_sessions(), 1u);
}

TEST(Sessions, SessionKeyFile) {
  testing::TempDir dir;
  auto path = dir.path() / "session.key";
  ASSERT_TRUE(write_file_atomic(path, Bytes(16, 7), 0600));
  EXPECT_EQ(load_session_key(path).error().code, "bad_config");
  ASSERT_TRUE(write_file_atomic(path, Bytes(32, 7), 0644));
  EXPECT_EQ(load_session_key(path).error().code, "insecure_key_file");
  ASSERT_TRUE(write_file_atomic(path, Bytes(32, 7), 0600));
  EXPECT_EQ(*load_session_key(path), Bytes(32, 7));
  EXPECT_EQ(load_session_key(dir.path() / "absent").error().code, "bad_config");
}

}  // namespace
}  // namespace coffer::trustee::kbs
