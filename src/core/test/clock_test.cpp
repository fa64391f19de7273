#include "core/clock.h"

#include <gtest/gtest.h>

namespace coffer {
namespace {

TEST(Rfc3339, ParsesIntelCollateralTimes) {
  auto t = parse_rfc3339("2025-07-01T00:00:00Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(unix_seconds(*t), 1751328000);
  EXPECT_EQ(format_rfc3339(*t), "2025-07-01T00:00:00Z");
  auto frac = parse_rfc3339("2023-07-01T01:00:00.500Z");
  ASSERT_TRUE(frac);
  EXPECT_EQ(unix_seconds(*frac), 1688173200);
  auto off = parse_rfc3339("2025-07-01T02:00:00+02:00");
  ASSERT_TRUE(off);
  EXPECT_EQ(unix_seconds(*off), 1751328000);
}

TEST(Rfc3339, RejectsMalformed) {
  for (const char* s :
       {"", "2025-07-01", "2025-13-01T00:00:00Z", "2025-02-30T00:00:00Z", "2025-07-01T00:00:00",
        "2025-07-01T00:00:00Zjunk", "2025-07-01T00:00:00.Z"}) {
    EXPECT_EQ(parse_rfc3339(s).error().code, "bad_timestamp") << s;
  }
}

// Found by fuzzing the collateral parser: years outside TimePoint's 64-bit nanosecond range
// (1677 to 2262) overflowed; they saturate now, as X.509's 9999-12-31 "no expiry" must.
TEST(Rfc3339, YearsOutsideTheNanosecondRangeSaturate) {
  auto early = parse_rfc3339("0225-11-26T13:07:17Z");
  ASSERT_TRUE(early);
  EXPECT_EQ(*early, TimePoint::min());
  auto late = parse_rfc3339("9999-12-31T23:59:59Z");
  ASSERT_TRUE(late);
  EXPECT_EQ(*late, TimePoint::max());
  EXPECT_EQ(from_unix_seconds(253402300799), TimePoint::max());
  EXPECT_EQ(unix_seconds(*parse_rfc3339("2262-04-11T00:00:00Z")), 9223286400);
}

TEST(ManualClock, Advances) {
  ManualClock c(from_unix_seconds(100));
  c.advance(std::chrono::seconds(5));
  EXPECT_EQ(unix_seconds(c.now()), 105);
}

}  // namespace
}  // namespace coffer
