// libFuzzer target: the CC event log as claims (the per-type detail decoders read untrusted
// event data).
#include <cstdint>

#include "evidence/tdx/ccel.h"
#include "verifier/tdx/eventlog_claims.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto log = coffer::evidence::tdx::parse_event_log(coffer::ByteView(data, size));
  if (log) (void)coffer::verifier::tdx::event_log_claims(*log).dump();
  return 0;
}
