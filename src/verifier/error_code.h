// Typed error codes of the verifiers and their collateral sources. Each module has an enum and one
// constexpr table giving each enumerator its stable wire string (what Error::code carries and what
// tests, clients and policies match on). Code makes errors from the enum and branches with
// has_code(), never by comparing Error::code with a string literal, so a renamed or mistyped code
// is a compile error instead of a silently dead branch.
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/error.h"

namespace coffer::verifier {

template <typename E>
struct ErrorCodeName {
  E code;
  std::string_view name;
};

// The table lists every enumerator once, in declaration order (checked by static_assert).
template <typename E, std::size_t N>
constexpr bool error_table_is_ordered(const std::array<ErrorCodeName<E>, N>& table) {
  for (std::size_t i = 0; i < N; ++i) {
    if (static_cast<std::size_t>(table[i].code) != i || table[i].name.empty()) return false;
  }
  return static_cast<std::size_t>(E::kCount) == N;
}

// A module's code enum: an enum with a kCount sentinel and a code_string() found by ADL.
template <typename E>
concept ErrorCodeEnum = std::is_enum_v<E> && requires(E e) {
  { code_string(e) } -> std::same_as<std::string_view>;
};

using coffer::make_error;

template <ErrorCodeEnum E>
std::unexpected<Error> make_error(E code, std::string message) {
  return coffer::make_error(std::string(code_string(code)), std::move(message));
}

template <ErrorCodeEnum E>
bool has_code(const Error& error, E code) {
  return error.code == code_string(code);
}

}  // namespace coffer::verifier
