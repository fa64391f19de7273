#include "core/config.h"

#include <sstream>

#include "core/file.h"

namespace coffer::config {

Result<toml::table> parse(std::string_view text, std::string_view source_name) {
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

Json node_to_json(const toml::node& node) {
  if (auto t = node.as_table()) return to_json(*t);
  if (auto a = node.as_array()) {
    Json arr = Json::array();
    for (const auto& el : *a) arr.push_back(node_to_json(el));
    return arr;
  }
  if (auto s = node.as_string()) return s->get();
  if (auto i = node.as_integer()) return i->get();
  if (auto f = node.as_floating_point()) return f->get();
  if (auto b = node.as_boolean()) return b->get();
  std::ostringstream os;
  if (auto d = node.as_date()) {
    os << d->get();
  } else if (auto t = node.as_time()) {
    os << t->get();
  } else if (auto dt = node.as_date_time()) {
    os << dt->get();
  }
  return os.str();
}

}  // namespace

Json to_json(const toml::table& table) {
  Json obj = Json::object();
  for (const auto& [k, v] : table) obj[std::string(k.str())] = node_to_json(v);
  return obj;
}

}  // namespace coffer::config
