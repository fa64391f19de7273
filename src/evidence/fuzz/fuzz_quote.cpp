// libFuzzer target: TDX quote v4/v5 and SGX quote v3 parsers; whatever parses must serialize back
// to the bytes it was parsed from (up to tolerated trailing bytes).
#include <cstdint>
#include <cstdlib>

#include "evidence/sgx/quote.h"
#include "evidence/tdx/quote.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  coffer::ByteView in(data, size);
  if (auto q = coffer::evidence::tdx::parse_quote(in)) {
    coffer::Bytes out = coffer::evidence::tdx::serialize_quote(*q);
    if (out.size() > size || !std::equal(out.begin(), out.end(), data)) std::abort();
    (void)coffer::evidence::tdx::serialize_signed_region(*q);
  }
  if (auto q = coffer::evidence::sgx::parse_quote(in)) {
    (void)coffer::evidence::sgx::serialize_quote(*q);
  }
  return 0;
}
