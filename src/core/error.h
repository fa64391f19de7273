// Error model: every fallible operation on untrusted input returns Result<T>.
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace coffer {

// An error with a stable machine-readable code (snake_case, e.g. "tcb_info_expired") that tests
// and callers match on, and a human message that tells the user what went wrong and what to do.
struct Error {
  std::string code;
  std::string message;

  [[nodiscard]] std::string to_string() const { return code + ": " + message; }
  bool operator==(const Error&) const = default;
};

template <typename T>
using Result = std::expected<T, Error>;

// Status is a Result with no value.
using Status = Result<void>;

// make_error("bad_hex", "odd number of digits") -> std::unexpected<Error>, usable as `return`.
inline std::unexpected<Error> make_error(std::string code, std::string message) {
  return std::unexpected<Error>(Error{std::move(code), std::move(message)});
}

// Prefix context onto an error while keeping its code: "reading config: file not found".
inline std::unexpected<Error> wrap_error(const Error& e, std::string_view context) {
  return std::unexpected<Error>(Error{e.code, std::string(context) + ": " + e.message});
}

inline Status ok() { return {}; }

}  // namespace coffer

// Propagate an error from an expression returning Result<T>; yields the value otherwise.
// Uses a GNU statement expression (g++ and clang both support it).
#define COFFER_TRY(expr)                                             \
  __extension__({                                                    \
    auto&& coffer_try_result_ = (expr);                              \
    if (!coffer_try_result_) {                                       \
      return std::unexpected(std::move(coffer_try_result_).error()); \
    }                                                                \
    std::move(coffer_try_result_).value();                           \
  })

// Propagate an error from a Status expression.
#define COFFER_TRY_STATUS(expr)                                      \
  do {                                                               \
    auto&& coffer_try_status_ = (expr);                              \
    if (!coffer_try_status_) {                                       \
      return std::unexpected(std::move(coffer_try_status_).error()); \
    }                                                                \
  } while (false)
