// TOML configuration files (toml++), with typed accessors that report the offending key.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "core/error.h"
#include "core/json.h"

namespace coffer::config {

// Deepest nesting accepted in a TOML document or its JSON form: tables, arrays, inline tables and
// each part of a dotted key count one level.
inline constexpr std::size_t kMaxNesting = 64;

// Parses a TOML document; errors ("bad_config") carry line:column. The nesting depth is measured
// on the text first and a document deeper than max_depth is refused before toml++ builds it:
// toml++ recurses once per level (a dotted key of 20,000 parts overflows the stack).
Result<toml::table> parse(std::string_view text, std::string_view source_name = "config",
                          std::size_t max_depth = kMaxNesting);
Result<toml::table> load(const std::filesystem::path& path);

// A view of one table with a dotted name for messages ("http_server").
class Section {
 public:
  Section(const toml::table* table, std::string name) : table_(table), name_(std::move(name)) {}

  [[nodiscard]] bool present() const { return table_ != nullptr; }
  [[nodiscard]] Section section(std::string_view key) const;

  // Each returns the default when the key is absent and "bad_config" when it has the wrong type.
  Result<std::string> string(std::string_view key, std::string_view def) const;
  Result<std::optional<std::string>> optional_string(std::string_view key) const;
  Result<bool> boolean(std::string_view key, bool def) const;
  Result<std::int64_t> integer(std::string_view key, std::int64_t def) const;
  Result<std::vector<std::string>> string_array(std::string_view key) const;
  // Keys present in this table that are not in `known`: misspellings must not pass silently.
  Result<void> reject_unknown(std::initializer_list<std::string_view> known) const;

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] const toml::table* table() const { return table_; }

 private:
  std::string qualified(std::string_view key) const;
  const toml::table* table_;
  std::string name_;
};

}  // namespace coffer::config

namespace coffer::config {
// A TOML table as JSON (dates and times become RFC 3339 strings); "bad_config" when it nests
// deeper than max_depth (the JSON object itself is level 1).
Result<Json> to_json(const toml::table& table, std::size_t max_depth = kMaxNesting);
}  // namespace coffer::config
