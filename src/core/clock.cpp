#include "core/clock.h"

#include <charconv>
#include <ctime>

namespace coffer {
namespace {

bool parse_int(std::string_view s, int& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

// TimePoint counts nanoseconds in 64 bits (1677-09-21 to 2262-04-11). Instants outside that
// range, such as X.509's 99991231235959Z ("no well-defined expiration date", RFC 5280
// 4.1.2.5) or a year 0225 in untrusted collateral, saturate instead of overflowing.
TimePoint saturating_time_point(std::chrono::sys_seconds s, std::int64_t nanos) {
  using std::chrono::duration_cast;
  using std::chrono::seconds;
  constexpr auto kMax = duration_cast<seconds>(TimePoint::duration::max()).count() - 1;
  constexpr auto kMin = duration_cast<seconds>(TimePoint::duration::min()).count() + 1;
  auto count = s.time_since_epoch().count();
  if (count > kMax) return TimePoint::max();
  if (count < kMin) return TimePoint::min();
  return TimePoint(seconds(count)) + std::chrono::nanoseconds(nanos);
}

}  // namespace

std::shared_ptr<const Clock> system_clock() {
  static const auto clock = std::make_shared<SystemClock>();
  return clock;
}

std::int64_t unix_seconds(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

TimePoint from_unix_seconds(std::int64_t s) {
  return saturating_time_point(std::chrono::sys_seconds(std::chrono::seconds(s)), 0);
}

Result<TimePoint> parse_rfc3339(std::string_view text) {
  auto bad = [&] {
    return make_error("bad_timestamp",
                      "not an RFC 3339 timestamp: '" + std::string(text.substr(0, 64)) + "'");
  };
  // YYYY-MM-DDTHH:MM:SS
  if (text.size() < 20 || text[4] != '-' || text[7] != '-' ||
      (text[10] != 'T' && text[10] != 't' && text[10] != ' ') || text[13] != ':' ||
      text[16] != ':') {
    return bad();
  }
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!parse_int(text.substr(0, 4), y) || !parse_int(text.substr(5, 2), mo) ||
      !parse_int(text.substr(8, 2), d) || !parse_int(text.substr(11, 2), h) ||
      !parse_int(text.substr(14, 2), mi) || !parse_int(text.substr(17, 2), s)) {
    return bad();
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return bad();
  std::size_t pos = 19;
  std::int64_t nanos = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (digits < 9) {
        nanos = nanos * 10 + (text[pos] - '0');
        ++digits;
      }
      ++pos;
    }
    if (digits == 0) return bad();
    for (; digits < 9; ++digits) nanos *= 10;
  }
  int offset_minutes = 0;
  if (pos >= text.size()) return bad();
  if (text[pos] == 'Z' || text[pos] == 'z') {
    ++pos;
  } else if (text[pos] == '+' || text[pos] == '-') {
    if (pos + 6 != text.size() || text[pos + 3] != ':') return bad();
    int oh = 0, om = 0;
    if (!parse_int(text.substr(pos + 1, 2), oh) || !parse_int(text.substr(pos + 4, 2), om))
      return bad();
    offset_minutes = (oh * 60 + om) * (text[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return bad();
  }
  if (pos != text.size()) return bad();
  std::chrono::year_month_day ymd{std::chrono::year(y),
                                  std::chrono::month(static_cast<unsigned>(mo)),
                                  std::chrono::day(static_cast<unsigned>(d))};
  if (!ymd.ok()) return bad();
  // in seconds first: any four-digit year fits, the nanosecond TimePoint may not
  std::chrono::sys_seconds secs = std::chrono::sys_days(ymd) + std::chrono::hours(h) +
                                  std::chrono::minutes(mi) + std::chrono::seconds(s) -
                                  std::chrono::minutes(offset_minutes);
  return saturating_time_point(secs, nanos);
}

std::string format_rfc3339(TimePoint t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace coffer
