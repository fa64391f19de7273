#include "guest/config.h"

#include <algorithm>

#include "core/config.h"
#include "evidence/init_data.h"

namespace coffer::guest {
namespace {

std::unexpected<Error> bad(const std::string& what) {
  return make_error("bad_init_data", "init-data " + what);
}

// A sub-table: absent -> nullptr; present with another type -> error.
Result<const toml::table*> table_at(const toml::table* parent, std::string_view key,
                                    const std::string& where) {
  if (parent == nullptr) return nullptr;
  const toml::node* n = parent->get(key);
  if (n == nullptr) return nullptr;
  if (!n->is_table()) return bad(where + "." + std::string(key) + " must be a table");
  return n->as_table();
}

Result<std::string> string_at(const toml::table* t, std::string_view key,
                              const std::string& where) {
  if (t == nullptr) return std::string();
  const toml::node* n = t->get(key);
  if (n == nullptr) return std::string();
  if (!n->is_string()) return bad(where + "." + std::string(key) + " must be a string");
  return n->as_string()->get();
}

Result<bool> bool_at(const toml::table* t, std::string_view key, const std::string& where) {
  if (t == nullptr) return false;
  const toml::node* n = t->get(key);
  if (n == nullptr) return false;
  if (!n->is_boolean()) return bad(where + "." + std::string(key) + " must be a boolean");
  return n->as_boolean()->get();
}

Result<std::vector<std::string>> strings_at(const toml::table* t, std::string_view key,
                                            const std::string& where) {
  std::vector<std::string> out;
  if (t == nullptr) return out;
  const toml::node* n = t->get(key);
  if (n == nullptr) return out;
  const std::string name = where + "." + std::string(key);
  if (!n->is_array()) return bad(name + " must be an array of strings");
  for (const auto& e : *n->as_array()) {
    if (!e.is_string()) return bad(name + " must be an array of strings");
    out.push_back(e.as_string()->get());
  }
  return out;
}

// kbs:///repo/type/tag with segments as the KBS accepts them (the resource is fetched later;
// refusing a malformed one here stops the agent before it runs anything).
Status check_kbs_uri(const std::string& uri, const std::string& name) {
  if (uri.empty()) return ok();
  constexpr std::string_view kPrefix = "kbs:///";
  if (!uri.starts_with(kPrefix)) return bad(name + " must be a kbs:///repo/type/tag URI");
  std::string_view rest = std::string_view(uri).substr(kPrefix.size());
  int segments = 0;
  std::size_t start = 0;
  while (true) {
    auto end = rest.find('/', start);
    auto seg = rest.substr(start, end == std::string_view::npos ? rest.npos : end - start);
    bool valid = !seg.empty() && seg.size() <= 128 && seg.front() != '.' &&
                 std::all_of(seg.begin(), seg.end(), [](char c) {
                   return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
                 });
    if (!valid) return bad(name + " has an invalid segment in " + uri);
    ++segments;
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  if (segments != 3) return bad(name + " must be kbs:///repo/type/tag");
  return ok();
}

std::string trim_slashes(std::string url) {
  while (url.ends_with('/')) url.pop_back();
  return url;
}

// The [data] member `key` parsed as TOML, or nullopt when absent.
Result<std::optional<toml::table>> embedded_toml(const Json& data, const std::string& key) {
  auto it = data.find(key);
  if (it == data.end()) return std::optional<toml::table>();
  if (!it->is_string()) return bad("data.\"" + key + "\" must be a string");
  auto t = config::parse(it->get_ref<const std::string&>(), key);
  if (!t) return bad("data.\"" + key + "\" is not valid TOML: " + t.error().message);
  return std::optional<toml::table>(std::move(*t));
}

Status read_aa(const toml::table& aa, GuestConfig& out) {
  const auto* tokens = COFFER_TRY(table_at(&aa, "token_configs", "aa.toml"));
  const auto* kbs = COFFER_TRY(table_at(tokens, "kbs", "aa.toml token_configs"));
  out.kbs_url = trim_slashes(COFFER_TRY(string_at(kbs, "url", "aa.toml token_configs.kbs")));
  out.kbs_cert_pem = COFFER_TRY(string_at(kbs, "cert", "aa.toml token_configs.kbs"));
  return ok();
}

Status read_cdh(const toml::table& cdh, GuestConfig& out) {
  const auto* kbc = COFFER_TRY(table_at(&cdh, "kbc", "cdh.toml"));
  std::string name = COFFER_TRY(string_at(kbc, "name", "cdh.toml kbc"));
  // Only the KBS protocol client: offline_fs_kbc would read keys from the (host-provided) disk.
  if (!name.empty() && name != "cc_kbc")
    return bad("cdh.toml kbc.name must be \"cc_kbc\" (coffer has no other KBC), not \"" + name +
               "\"");
  std::string url = trim_slashes(COFFER_TRY(string_at(kbc, "url", "cdh.toml kbc")));
  std::string cert = COFFER_TRY(string_at(kbc, "kbs_cert", "cdh.toml kbc"));
  // One KBS: the AA attests to it and the CDH fetches from it, so two different ones are a
  // configuration error, not a choice.
  if (!url.empty()) {
    if (!out.kbs_url.empty() && out.kbs_url != url)
      return bad("cdh.toml kbc.url \"" + url +
                 "\" disagrees with aa.toml token_configs.kbs.url \"" + out.kbs_url + "\"");
    out.kbs_url = url;
  }
  if (!cert.empty()) {
    if (!out.kbs_cert_pem.empty() && out.kbs_cert_pem != cert)
      return bad("cdh.toml kbc.kbs_cert disagrees with aa.toml token_configs.kbs.cert");
    out.kbs_cert_pem = cert;
  }

  const auto* image = COFFER_TRY(table_at(&cdh, "image", "cdh.toml"));
  out.image_security_policy_uri =
      COFFER_TRY(string_at(image, "image_security_policy_uri", "cdh.toml image"));
  COFFER_TRY_STATUS(
      check_kbs_uri(out.image_security_policy_uri, "cdh.toml image.image_security_policy_uri"));
  out.image_security_policy =
      COFFER_TRY(string_at(image, "image_security_policy", "cdh.toml image"));
  out.registry_credentials_uri =
      COFFER_TRY(string_at(image, "authenticated_registry_credentials_uri", "cdh.toml image"));
  COFFER_TRY_STATUS(check_kbs_uri(out.registry_credentials_uri,
                                  "cdh.toml image.authenticated_registry_credentials_uri"));
  out.insecure_registries = COFFER_TRY(strings_at(image, "insecure_registries", "cdh.toml image"));
  out.require_encrypted_layers =
      COFFER_TRY(bool_at(image, "require_encrypted_layers", "cdh.toml image"));

  const auto* sealed = COFFER_TRY(table_at(&cdh, "sealed_secret", "cdh.toml"));
  out.sealed_secret_keys =
      COFFER_TRY(strings_at(sealed, "verification_keys", "cdh.toml sealed_secret"));
  for (const auto& k : out.sealed_secret_keys)
    COFFER_TRY_STATUS(check_kbs_uri(k, "cdh.toml sealed_secret.verification_keys"));
  return ok();
}

}  // namespace

Result<GuestConfig> parse_guest_config(std::string_view init_data_toml) {
  if (init_data_toml.size() > kMaxInitDataBytes)
    return bad("is " + std::to_string(init_data_toml.size()) + " bytes, over the limit of " +
               std::to_string(kMaxInitDataBytes));
  auto parsed = evidence::parse_init_data(init_data_toml);
  if (!parsed) return std::unexpected(parsed.error());
  // The top level once more for the version's type (parse_init_data checked the algorithm).
  auto top = config::parse(init_data_toml, "init-data");
  if (!top) return bad("is not TOML: " + top.error().message);
  if (const auto* v = top->get("version"); v != nullptr && !v->is_string())
    return bad("version must be a string");
  if (const auto* d = top->get("data"); d != nullptr && !d->is_table())
    return bad("data must be a table");

  GuestConfig out;
  out.from_init_data = true;
  out.init_data_toml = std::string(init_data_toml);
  out.init_data_algorithm = parsed->algorithm;
  out.init_data_digest = std::move(parsed->digest);
  const Json& data = parsed->claims;

  if (auto aa = COFFER_TRY(embedded_toml(data, "aa.toml"))) COFFER_TRY_STATUS(read_aa(*aa, out));
  if (auto cdh = COFFER_TRY(embedded_toml(data, "cdh.toml")))
    COFFER_TRY_STATUS(read_cdh(*cdh, out));
  if (auto it = data.find("policy.rego"); it != data.end()) {
    if (!it->is_string()) return bad("data.\"policy.rego\" must be a string");
    out.agent_policy_rego = it->get<std::string>();
  }
  return out;
}

Status check_init_data_binding(const GuestConfig& config, aa::Attester& attester) {
  if (!config.from_init_data) return ok();
  auto binding = attester.check_init_data(config.init_data_digest);
  if (!binding) return std::unexpected(binding.error());
  return ok();
}

}  // namespace coffer::guest
