// A program's main(): runs its body and turns an exception that escapes it (a bug: errors are
// Result values) into one line on stderr and exit code 70 (EX_SOFTWARE) instead of an abort.
#pragma once

#include <cstdio>
#include <exception>
#include <utility>

namespace coffer {

template <class Body>
int run_main(const char* program, Body&& body) noexcept {
  try {
    return std::forward<Body>(body)();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: internal error: %s\n", program, e.what());
  } catch (...) {
    std::fprintf(stderr, "%s: internal error: unknown exception\n", program);
  }
  return 70;
}

}  // namespace coffer
