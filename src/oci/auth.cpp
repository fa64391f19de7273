#include "oci/auth.h"

#include <cctype>
#include <cstdlib>

#include "core/bytes.h"
#include "core/file.h"
#include "core/json.h"

namespace coffer::oci {
namespace {

namespace fs = std::filesystem;

// "https://index.docker.io/v1/" -> "index.docker.io"; "host/ns" stays.
std::string normalise_key(std::string key) {
  for (std::string_view scheme : {"https://", "http://"}) {
    if (key.starts_with(scheme)) {
      key = key.substr(scheme.size());
      auto slash = key.find('/');
      key = key.substr(0, slash);  // URL keys name a whole registry
    }
  }
  while (!key.empty() && key.back() == '/') key.pop_back();
  if (key == "index.docker.io" || key == "registry-1.docker.io") key = "docker.io";
  return key;
}

Result<Credentials> entry_credentials(const std::string& key, const Json& entry) {
  if (!entry.is_object()) return make_error("bad_auth_file", "auths entry '" + key + "'");
  if (auto a = entry.find("auth");
      a != entry.end() && a->is_string() && !a->get<std::string>().empty()) {
    auto decoded = base64_decode(a->get<std::string>());
    if (!decoded) {
      return make_error("bad_auth_file", "auths entry '" + key + "' has invalid base64 in 'auth'");
    }
    auto text = to_string(*decoded);
    auto colon = text.find(':');
    if (colon == std::string::npos) {
      return make_error("bad_auth_file", "auths entry '" + key + "' is not user:password");
    }
    return Credentials{text.substr(0, colon), text.substr(colon + 1)};
  }
  return Credentials{entry.value("username", ""), entry.value("password", "")};
}

}  // namespace

Result<std::optional<Credentials>> lookup_credentials(const fs::path& auth_file,
                                                      std::string_view registry,
                                                      std::string_view repository) {
  if (auth_file.empty()) return std::optional<Credentials>{};
  auto text = read_text_file(auth_file, 1 << 20);
  if (!text) {
    if (text.error().code == "not_found") return std::optional<Credentials>{};
    return std::unexpected(text.error());
  }
  return lookup_credentials_in(*text, registry, repository, auth_file.string());
}

Result<std::optional<Credentials>> lookup_credentials_in(std::string_view auth_json,
                                                         std::string_view registry,
                                                         std::string_view repository,
                                                         std::string_view what) {
  auto j = parse_json(auth_json);
  if (!j || !j->is_object()) {
    return make_error("bad_auth_file", std::string(what) + " is not a JSON object");
  }
  auto auths = j->find("auths");
  if (auths == j->end() || !auths->is_object()) return std::optional<Credentials>{};
  std::string full = std::string(registry) + "/" + std::string(repository);
  const Json* best = nullptr;
  std::string best_key;
  std::size_t best_len = 0;
  for (const auto& [key, entry] : auths->items()) {
    std::string k = normalise_key(key);
    bool match = k == registry || (full.starts_with(k) && full.size() > k.size() &&
                                   full[k.size()] == '/' && k.starts_with(registry));
    if (k == full) match = true;
    if (match && k.size() >= best_len) {
      best = &entry;
      best_key = key;
      best_len = k.size();
    }
  }
  if (best == nullptr) return std::optional<Credentials>{};
  return std::optional<Credentials>(COFFER_TRY(entry_credentials(best_key, *best)));
}

fs::path default_auth_file() {
  std::error_code ec;
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v != nullptr ? v : "";
  };
  std::vector<fs::path> candidates;
  if (auto f = env("REGISTRY_AUTH_FILE"); !f.empty()) return f;
  if (auto x = env("XDG_RUNTIME_DIR"); !x.empty()) {
    candidates.push_back(fs::path(x) / "containers/auth.json");
  }
  if (auto h = env("HOME"); !h.empty()) {
    candidates.push_back(fs::path(h) / ".config/containers/auth.json");
    candidates.push_back(fs::path(h) / ".docker/config.json");
  }
  for (const auto& c : candidates) {
    if (fs::exists(c, ec)) return c;
  }
  return {};
}

Result<AuthChallenge> parse_www_authenticate(std::string_view h) {
  AuthChallenge c;
  std::size_t i = 0;
  while (i < h.size() && h[i] == ' ') ++i;
  std::size_t start = i;
  while (i < h.size() && h[i] != ' ') ++i;
  for (char ch : h.substr(start, i - start)) {
    c.scheme.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
  }
  if (c.scheme.empty()) return make_error("bad_challenge", "empty WWW-Authenticate header");
  while (i < h.size()) {
    while (i < h.size() && (h[i] == ' ' || h[i] == ',')) ++i;
    std::size_t ks = i;
    while (i < h.size() && h[i] != '=' && h[i] != ',') ++i;
    if (i >= h.size() || h[i] != '=') break;
    std::string key(h.substr(ks, i - ks));
    for (auto& ch : key) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    ++i;
    std::string value;
    if (i < h.size() && h[i] == '"') {
      ++i;
      while (i < h.size() && h[i] != '"') {
        if (h[i] == '\\' && i + 1 < h.size()) ++i;
        value.push_back(h[i++]);
      }
      if (i >= h.size()) return make_error("bad_challenge", "unterminated quoted string");
      ++i;
    } else {
      std::size_t vs = i;
      while (i < h.size() && h[i] != ',') ++i;
      value = std::string(h.substr(vs, i - vs));
    }
    c.params[key] = value;
  }
  return c;
}

std::string url_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      out.push_back(static_cast<char>(ch));
    } else {
      out.push_back('%');
      out.push_back(kHex[ch >> 4]);
      out.push_back(kHex[ch & 15]);
    }
  }
  return out;
}

}  // namespace coffer::oci
