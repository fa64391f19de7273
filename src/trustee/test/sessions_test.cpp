#include "trustee/kbs/sessions.h"

#include "core/bytes.h"

#include <gtest/gtest.h>

namespace coffer::trustee::kbs {
namespace {

TEST(Sessions, NonceUsableOnceAndSessionsExpire) {
  auto clock = std::make_shared<ManualClock>(from_unix_seconds(1'000'000));
  SessionTable table(clock, std::chrono::minutes(5), 10);
  auto s = table.create("sample");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->id.size(), 32u);
  EXPECT_EQ(coffer::base64_decode(s->nonce)->size(), 32u);
  ASSERT_TRUE(table.begin_attest(s->id));
  EXPECT_EQ(table.begin_attest(s->id).error().code, "nonce_used");
  EXPECT_EQ(table.get_attested(s->id).error().code, "session_not_attested");
  table.complete_attest(s->id, Json{{"exp", 1}, {"iss", "test"}});
  EXPECT_EQ(table.get_attested(s->id)->token_claims->at("iss"), "test");
  clock->advance(std::chrono::minutes(5));
  EXPECT_EQ(table.get_attested(s->id).error().code, "session_expired");
  EXPECT_EQ(table.begin_attest("nope").error().code, "session_not_found");
}

TEST(Sessions, BoundedTableRecoversAfterExpiry) {
  auto clock = std::make_shared<ManualClock>(from_unix_seconds(0));
  SessionTable table(clock, std::chrono::seconds(60), 3);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(table.create("sample"));
  EXPECT_EQ(table.create("sample").error().code, "too_many_sessions");
  clock->advance(std::chrono::seconds(61));
  EXPECT_TRUE(table.create("sample"));
  EXPECT_EQ(table.size(), 1u);
}

TEST(Sessions, ReauthReplacesThePresentedSession) {
  SessionTable table(system_clock(), std::chrono::seconds(60), 2);
  auto first = *table.create("sample");
  ASSERT_TRUE(table.begin_attest(first.id));
  table.complete_attest(first.id, Json{{"exp", 4'000'000'000}});
  ASSERT_TRUE(table.get_attested(first.id));
  // The client starts over with its old cookie: the old session is gone, only the new one lives.
  auto second = *table.create("sample", &first.id);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.get_attested(first.id).error().code, "session_not_found");
  EXPECT_EQ(table.get_attested(second.id).error().code, "session_not_attested");
  // Replacing keeps a full table usable for the clients already in it.
  auto other = *table.create("sample");
  EXPECT_TRUE(table.create("sample", &other.id));
  EXPECT_EQ(table.size(), 2u);
  EXPECT_EQ(table.create("sample").error().code, "too_many_sessions");
  // An unknown or forged cookie replaces nothing.
  std::string forged = "00000000000000000000000000000000";
  EXPECT_EQ(table.create("sample", &forged).error().code, "too_many_sessions");
}

TEST(Sessions, IdsAndNoncesAreUnique) {
  SessionTable table(system_clock(), std::chrono::seconds(60), 100);
  auto a = *table.create("sample");
  auto b = *table.create("sample");
  EXPECT_NE(a.id, b.id);
  EXPECT_NE(a.nonce, b.nonce);
}

}  // namespace
}  // namespace coffer::trustee::kbs
