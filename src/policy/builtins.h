// The standard builtin functions (OPA policy reference, "Built-in Functions"), as a static table.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "policy/policy.h"
#include "policy/value.h"

namespace re2 {
class RE2;
}

namespace coffer::policy {

// Compiled regular expressions shared by all evaluations of a policy (RE2 objects are
// thread-safe once built). Bounded: cleared when full.
class RegexCache {
 public:
  ~RegexCache();
  Result<std::shared_ptr<const re2::RE2>> get(std::string_view pattern);

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const re2::RE2>> map_;
};

struct BuiltinContext {
  const Limits* limits = nullptr;
  std::int64_t now_ns = 0;  // fixed for one evaluation, as OPA does
  RegexCache* regex = nullptr;
};

using BuiltinFn = Result<Value> (*)(BuiltinContext& ctx, std::span<const Value> args);

// Parameter type masks: bit (1 << Value::Type).
enum TypeMask : std::uint16_t {
  kTNull = 1 << 1,
  kTBool = 1 << 2,
  kTNum = 1 << 3,
  kTStr = 1 << 4,
  kTArr = 1 << 5,
  kTObj = 1 << 6,
  kTSet = 1 << 7,
  kTColl = kTArr | kTObj | kTSet,
  kTAny = 0xFFFE,
};

struct BuiltinDef {
  std::string_view name;
  int arity = 0;
  BuiltinFn fn = nullptr;
  std::uint16_t params[4] = {kTAny, kTAny, kTAny, kTAny};
};

const BuiltinDef* find_builtin(std::string_view name);

// Per-area registration (builtins_*.cpp).
void add_operator_builtins(std::vector<BuiltinDef>& out);
void add_aggregate_builtins(std::vector<BuiltinDef>& out);
void add_string_builtins(std::vector<BuiltinDef>& out);
void add_collection_builtins(std::vector<BuiltinDef>& out);
void add_encoding_builtins(std::vector<BuiltinDef>& out);
void add_misc_builtins(std::vector<BuiltinDef>& out);

// Shared helpers for builtin implementations.
std::unexpected<Error> operand_error(std::string_view fn, std::size_t pos, std::string_view want,
                                     const Value& got);
std::unexpected<Error> builtin_error(std::string_view fn, std::string_view msg);
Status check_output_size(std::string_view fn, std::size_t size, const BuiltinContext& ctx);
// Numbers: results of arithmetic (overflowing integers fall back to doubles).
Value add_numbers(const Value& a, const Value& b);
Value sub_numbers(const Value& a, const Value& b);
Value mul_numbers(const Value& a, const Value& b);

}  // namespace coffer::policy
