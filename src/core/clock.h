// Time source injected into everything that checks validity windows or expiry, so that tests
// can pin "now" (collateral in testdata/evidence is only valid at fixed past instants).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "core/error.h"

namespace coffer {

using TimePoint = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  [[nodiscard]] virtual TimePoint now() const = 0;
  // Monotonic time for latency measurement and timeouts that must not jump.
  [[nodiscard]] virtual std::chrono::steady_clock::time_point steady_now() const {
    return std::chrono::steady_clock::now();
  }
};

class SystemClock final : public Clock {
 public:
  [[nodiscard]] TimePoint now() const override { return std::chrono::system_clock::now(); }
};

// A clock that only moves when told to; thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start) : ns_(to_ns(start)) {}
  [[nodiscard]] TimePoint now() const override {
    return TimePoint(std::chrono::nanoseconds(ns_.load()));
  }
  void set(TimePoint t) { ns_.store(to_ns(t)); }
  void advance(std::chrono::nanoseconds d) { ns_.fetch_add(d.count()); }

 private:
  static std::int64_t to_ns(TimePoint t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  }
  std::atomic<std::int64_t> ns_;
};

std::shared_ptr<const Clock> system_clock();

// Seconds since the Unix epoch.
std::int64_t unix_seconds(TimePoint t);
TimePoint from_unix_seconds(std::int64_t s);

// RFC 3339 / ISO 8601 UTC timestamps as used in Intel collateral ("2025-07-01T00:00:00Z",
// fractional seconds and numeric offsets accepted).
Result<TimePoint> parse_rfc3339(std::string_view text);
std::string format_rfc3339(TimePoint t);

}  // namespace coffer
