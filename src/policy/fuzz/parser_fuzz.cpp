// libFuzzer target: the lexer, parser and compiler must reject any input with an error value,
// never crash, hang or recurse without bound.
#include <cstddef>
#include <cstdint>
#include <string>

#include "policy/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string source(reinterpret_cast<const char*>(data), size);
  coffer::policy::CompileOptions opts;
  opts.limits.max_steps = 10'000;
  auto policy = coffer::policy::compile({{"fuzz.rego", std::move(source)}}, opts);
  if (policy) {
    // Evaluate whatever compiled, under tight limits.
    (void)(*policy)->evaluate("data", coffer::Json::object(), coffer::Json::object());
  }
  return 0;
}
