// libFuzzer target: CoCo init-data, the TOML any client may send to /attest. It must never crash
// or recurse without bound, and whatever it accepts must give claims within the nesting limit that
// serialise as JSON (they end up in the attestation token).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/config.h"
#include "core/json.h"
#include "evidence/init_data.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = coffer::evidence::parse_init_data(text);
  if (!parsed) {
    if (parsed.error().code != "bad_init_data") std::abort();
    return 0;
  }
  if (coffer::json_depth(parsed->claims, 4 * coffer::config::kMaxNesting) >
      coffer::config::kMaxNesting) {
    std::abort();
  }
  if (parsed->digest.size() != coffer::crypto::digest_size(parsed->algorithm)) std::abort();
  try {
    (void)parsed->claims.dump();
  } catch (const coffer::Json::exception&) {
    std::abort();
  }
  return 0;
}
