#include "policy/builtins.h"

#include <re2/re2.h>

namespace coffer::policy {

namespace {

constexpr std::size_t kMaxCachedRegexes = 1000;

std::unordered_map<std::string_view, BuiltinDef> build_table() {
  std::vector<BuiltinDef> all;
  add_operator_builtins(all);
  add_aggregate_builtins(all);
  add_string_builtins(all);
  add_collection_builtins(all);
  add_encoding_builtins(all);
  add_misc_builtins(all);
  std::unordered_map<std::string_view, BuiltinDef> table;
  for (const auto& b : all) table.emplace(b.name, b);
  return table;
}

}  // namespace

const BuiltinDef* find_builtin(std::string_view name) {
  static const auto table = build_table();
  auto it = table.find(name);
  return it == table.end() ? nullptr : &it->second;
}

RegexCache::~RegexCache() = default;

Result<std::shared_ptr<const re2::RE2>> RegexCache::get(std::string_view pattern) {
  {
    std::lock_guard lock(mu_);
    auto it = map_.find(std::string(pattern));
    if (it != map_.end()) return it->second;
  }
  RE2::Options opts;
  opts.set_log_errors(false);
  auto re =
      std::make_shared<const re2::RE2>(re2::StringPiece(pattern.data(), pattern.size()), opts);
  if (!re->ok()) return builtin_error("regex.match", "invalid pattern: " + re->error());
  std::lock_guard lock(mu_);
  if (map_.size() >= kMaxCachedRegexes) map_.clear();
  map_.emplace(std::string(pattern), re);
  return re;
}

std::unexpected<Error> operand_error(std::string_view fn, std::size_t pos, std::string_view want,
                                     const Value& got) {
  return make_error("eval_type_error", std::string(fn) + ": operand " + std::to_string(pos) +
                                           " must be " + std::string(want) + " but got " +
                                           std::string(type_name(got.type())));
}

std::unexpected<Error> builtin_error(std::string_view fn, std::string_view msg) {
  return make_error("eval_builtin_error", std::string(fn) + ": " + std::string(msg));
}

Status check_output_size(std::string_view fn, std::size_t size, const BuiltinContext& ctx) {
  if (size > ctx.limits->max_output_bytes) {
    return make_error("eval_limit_exceeded",
                      std::string(fn) + ": result of " + std::to_string(size) +
                          " bytes/elements exceeds max_output_bytes (" +
                          std::to_string(ctx.limits->max_output_bytes) + ")");
  }
  return ok();
}

}  // namespace coffer::policy
