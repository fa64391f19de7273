#include "core/config.h"

#include <algorithm>
#include <sstream>
#include <vector>

#include "core/file.h"

namespace coffer::config {
namespace {

// Index one past the TOML string starting at s[i] (basic "...", literal '...', or their
// multi-line forms), or s.size() if it does not end.
std::size_t skip_toml_string(std::string_view s, std::size_t i) {
  const char q = s[i];
  const bool basic = q == '"';
  if (s.substr(i, 3) == std::string(3, q)) {  // multi-line; up to two quotes may end it early
    for (std::size_t j = i + 3; j < s.size(); ++j) {
      if (basic && s[j] == '\\') {
        ++j;
      } else if (s.substr(j, 3) == std::string(3, q)) {
        j += 3;
        for (int extra = 0; extra < 2 && j < s.size() && s[j] == q; ++extra) ++j;
        return j;
      }
    }
    return s.size();
  }
  for (std::size_t j = i + 1; j < s.size() && s[j] != '\n'; ++j) {
    if (basic && s[j] == '\\') {
      ++j;
    } else if (s[j] == q) {
      return j + 1;
    }
  }
  return s.size();
}

// The nesting depth of the tree a TOML text describes, read from the text alone: a [table] or
// [[array]] header is as deep as its key has parts (an array header one more), a key = value as
// its table plus the key's parts, an inline table or array one level per bracket. Strings and
// comments are skipped. (Each [[array]] level on a header path adds a level this does not count,
// so the real depth is at most twice this; to_json checks the built tree exactly.) Stops as soon
// as `limit` is exceeded.
std::size_t toml_depth(std::string_view s, std::size_t limit) {
  struct Open {
    bool table;  // inline table (holds keys) or array
    std::size_t depth;
  };
  std::vector<Open> open;
  std::size_t table_depth = 0;  // of the current [table]
  std::size_t deepest = 0;
  std::size_t parts = 0;    // of the key being read
  std::size_t pending = 0;  // depth of the value after '='
  bool line_start = true;
  bool in_key = false;
  bool value_start = false;
  auto note = [&](std::size_t d) { deepest = std::max(deepest, d); };
  for (std::size_t i = 0; i < s.size() && deepest <= limit; ++i) {
    const char c = s[i];
    if (c == '"' || c == '\'') {
      i = skip_toml_string(s, i) - 1;
      value_start = false;
      continue;
    }
    if (c == '#') {
      while (i + 1 < s.size() && s[i + 1] != '\n') ++i;
      continue;
    }
    if (c == '\n') {
      if (open.empty()) {
        line_start = true;
        in_key = false;
      }
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r') continue;
    if (line_start) {
      line_start = false;
      if (c == '[') {  // [a.b] or [[a.b]]
        const bool array = i + 1 < s.size() && s[i + 1] == '[';
        std::size_t header_parts = 1;
        std::size_t j = i + (array ? 2 : 1);
        for (; j < s.size() && s[j] != ']' && s[j] != '\n'; ++j) {
          if (s[j] == '"' || s[j] == '\'') {
            j = skip_toml_string(s, j) - 1;
          } else if (s[j] == '.') {
            ++header_parts;
          }
        }
        table_depth = header_parts + (array ? 1 : 0);
        note(table_depth);
        i = array ? j + 1 : j;
        continue;
      }
      in_key = true;
      parts = 1;
    }
    const std::size_t container = open.empty() ? table_depth : open.back().depth;
    if (in_key) {
      if (c == '.') {
        ++parts;
      } else if (c == '=') {
        in_key = false;
        value_start = true;
        pending = container + parts;
        note(pending);
      } else if (c == '}' && !open.empty()) {  // an empty inline table
        open.pop_back();
        in_key = false;
      }
      continue;
    }
    if (c == '{' || c == '[') {
      const std::size_t d = value_start ? pending : container + 1;
      open.push_back({c == '{', d});
      note(d);
      in_key = c == '{';
      parts = 1;
    } else if (c == '}' || c == ']') {
      if (!open.empty()) open.pop_back();
    } else if (c == ',' && !open.empty() && open.back().table) {
      in_key = true;
      parts = 1;
    }
    value_start = false;
  }
  return deepest;
}

Result<Json> node_to_json(const toml::node& node, std::size_t depth, std::size_t max_depth);

}  // namespace

Result<toml::table> parse(std::string_view text, std::string_view source_name,
                          std::size_t max_depth) {
  if (toml_depth(text, max_depth) > max_depth) {
    return make_error("bad_config", std::string(source_name) + ": nesting deeper than " +
                                        std::to_string(max_depth) + " levels");
  }
  try {
    return toml::parse(text, std::string(source_name));
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << source_name << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
        << e.description();
    return make_error("bad_config", msg.str());
  }
}

Result<toml::table> load(const std::filesystem::path& path) {
  auto text = read_text_file(path, 4 * 1024 * 1024);
  if (!text) return wrap_error(text.error(), "reading config");
  return parse(*text, path.string());
}

std::string Section::qualified(std::string_view key) const {
  return name_.empty() ? std::string(key) : name_ + "." + std::string(key);
}

Section Section::section(std::string_view key) const {
  const toml::table* sub = nullptr;
  if (table_ != nullptr) sub = (*table_)[key].as_table();
  return Section(sub, qualified(key));
}

Result<std::string> Section::string(std::string_view key, std::string_view def) const {
  auto v = COFFER_TRY(optional_string(key));
  return v ? *v : std::string(def);
}

Result<std::optional<std::string>> Section::optional_string(std::string_view key) const {
  if (table_ == nullptr) return std::optional<std::string>{};
  auto node = (*table_)[key];
  if (!node) return std::optional<std::string>{};
  if (auto s = node.value<std::string>(); s && node.is_string()) return s;
  return make_error("bad_config", "'" + qualified(key) + "' must be a string");
}

Result<bool> Section::boolean(std::string_view key, bool def) const {
  if (table_ == nullptr) return def;
  auto node = (*table_)[key];
  if (!node) return def;
  if (!node.is_boolean())
    return make_error("bad_config", "'" + qualified(key) + "' must be true or false");
  return *node.value<bool>();
}

Result<std::int64_t> Section::integer(std::string_view key, std::int64_t def) const {
  if (table_ == nullptr) return def;
  auto node = (*table_)[key];
  if (!node) return def;
  if (!node.is_integer())
    return make_error("bad_config", "'" + qualified(key) + "' must be an integer");
  return *node.value<std::int64_t>();
}

Result<std::vector<std::string>> Section::string_array(std::string_view key) const {
  std::vector<std::string> out;
  if (table_ == nullptr) return out;
  auto node = (*table_)[key];
  if (!node) return out;
  const toml::array* arr = node.as_array();
  if (arr == nullptr)
    return make_error("bad_config", "'" + qualified(key) + "' must be an array of strings");
  for (const auto& el : *arr) {
    if (!el.is_string())
      return make_error("bad_config", "'" + qualified(key) + "' must be an array of strings");
    out.push_back(*el.value<std::string>());
  }
  return out;
}

Result<void> Section::reject_unknown(std::initializer_list<std::string_view> known) const {
  if (table_ == nullptr) return {};
  for (const auto& [k, v] : *table_) {
    bool found = false;
    for (auto kn : known) found = found || (k.str() == kn);
    if (!found) return make_error("bad_config", "unknown key '" + qualified(k.str()) + "'");
  }
  return {};
}

}  // namespace coffer::config

namespace coffer::config {
namespace {

// `depth` is the level of the value's parent; a table or array here is one deeper.
Result<Json> node_to_json(const toml::node& node, std::size_t depth, std::size_t max_depth) {
  if ((node.is_table() || node.is_array()) && depth + 1 > max_depth) {
    return make_error("bad_config",
                      "TOML nests deeper than " + std::to_string(max_depth) + " levels");
  }
  if (const auto* t = node.as_table()) {
    Json obj = Json::object();
    for (const auto& [k, v] : *t) {
      obj[std::string(k.str())] = COFFER_TRY(node_to_json(v, depth + 1, max_depth));
    }
    return obj;
  }
  if (const auto* a = node.as_array()) {
    Json arr = Json::array();
    for (const auto& el : *a) arr.push_back(COFFER_TRY(node_to_json(el, depth + 1, max_depth)));
    return arr;
  }
  if (auto s = node.as_string()) return Json(s->get());
  if (auto i = node.as_integer()) return Json(i->get());
  if (auto f = node.as_floating_point()) return Json(f->get());
  if (auto b = node.as_boolean()) return Json(b->get());
  std::ostringstream os;
  if (auto d = node.as_date()) {
    os << d->get();
  } else if (auto t = node.as_time()) {
    os << t->get();
  } else if (auto dt = node.as_date_time()) {
    os << dt->get();
  }
  return Json(os.str());
}

}  // namespace

Result<Json> to_json(const toml::table& table, std::size_t max_depth) {
  return node_to_json(table, 0, max_depth);
}

}  // namespace coffer::config
