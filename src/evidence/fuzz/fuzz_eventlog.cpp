// libFuzzer target: CC event log parser and RTMR replay; a parsed log serializes to a log that
// parses to the same records.
#include <cstdint>
#include <cstdlib>

#include "evidence/tdx/ccel.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace etdx = coffer::evidence::tdx;
  auto log = etdx::parse_event_log(coffer::ByteView(data, size));
  if (!log) return 0;
  (void)etdx::replay_rtmrs(*log);
  auto again = etdx::parse_event_log(etdx::serialize_event_log(*log));
  if (!again || again->events.size() != log->events.size()) std::abort();
  return 0;
}
