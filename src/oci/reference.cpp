#include "oci/reference.h"

#include <cctype>

#include "oci/digest.h"

namespace coffer::oci {
namespace {

constexpr std::string_view kDockerHub = "docker.io";
constexpr std::size_t kMaxNameLength = 255;

bool is_alnum_lower(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// A path component: [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)*
bool valid_component(std::string_view c) {
  if (c.empty() || !is_alnum_lower(c.front()) || !is_alnum_lower(c.back())) return false;
  std::size_t i = 0;
  while (i < c.size()) {
    if (is_alnum_lower(c[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < c.size() && !is_alnum_lower(c[j])) ++j;
    auto sep = c.substr(i, j - i);
    bool dashes = sep.find_first_not_of('-') == std::string_view::npos;
    if (!(sep == "." || sep == "_" || sep == "__" || dashes)) return false;
    i = j;
  }
  return true;
}

bool valid_host(std::string_view host) {
  if (host.empty()) return false;
  if (host.front() == '[') {  // IPv6 literal, optionally with a port
    auto close = host.find(']');
    if (close == std::string_view::npos) return false;
    auto rest = host.substr(close + 1);
    return rest.empty() || (rest.size() > 1 && rest[0] == ':' &&
                            rest.substr(1).find_first_not_of("0123456789") == std::string::npos);
  }
  auto colon = host.find(':');
  auto name = host.substr(0, colon);
  if (colon != std::string_view::npos) {
    auto port = host.substr(colon + 1);
    if (port.empty() || port.find_first_not_of("0123456789") != std::string_view::npos) {
      return false;
    }
  }
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-')) return false;
  }
  return !name.empty();
}

std::unexpected<Error> bad(std::string_view text, const std::string& why) {
  return make_error("bad_reference",
                    "image reference '" + std::string(text.substr(0, 300)) + "': " + why);
}

}  // namespace

Status validate_tag(std::string_view tag) {
  if (tag.empty() || tag.size() > 128)
    return make_error("bad_reference", "tag must be 1-128 chars");
  for (std::size_t i = 0; i < tag.size(); ++i) {
    char c = tag[i];
    bool word = std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    if (!(word || (i > 0 && (c == '.' || c == '-')))) {
      return make_error("bad_reference", "tag '" + std::string(tag) + "' has invalid characters");
    }
  }
  return ok();
}

Result<Reference> parse_reference(std::string_view text) {
  if (text.empty()) return bad(text, "empty");
  Reference ref;
  std::string_view rest = text;
  if (auto at = rest.find('@'); at != std::string_view::npos) {
    ref.digest = std::string(rest.substr(at + 1));
    if (auto st = validate_digest(ref.digest); !st) return bad(text, st.error().message);
    rest = rest.substr(0, at);
  }
  // A tag is after the last ':' that follows the last '/'.
  auto slash = rest.rfind('/');
  auto colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    ref.tag = std::string(rest.substr(colon + 1));
    if (auto st = validate_tag(ref.tag); !st) return bad(text, st.error().message);
    rest = rest.substr(0, colon);
  }
  // The first component is a registry if it looks like a host: has '.', ':' or is localhost.
  std::string_view path = rest;
  auto first_slash = rest.find('/');
  if (first_slash != std::string_view::npos) {
    auto first = rest.substr(0, first_slash);
    if (first.find_first_of(".:[") != std::string_view::npos || first == "localhost") {
      if (!valid_host(first))
        return bad(text, "invalid registry host '" + std::string(first) + "'");
      ref.registry = std::string(first);
      path = rest.substr(first_slash + 1);
    }
  }
  if (ref.registry.empty() || ref.registry == "index.docker.io" ||
      ref.registry == "registry-1.docker.io") {
    ref.registry = std::string(kDockerHub);
  }
  if (path.empty()) return bad(text, "no repository name");
  std::size_t start = 0;
  for (;;) {
    auto end = path.find('/', start);
    auto component = path.substr(start, end == std::string_view::npos ? end : end - start);
    if (!valid_component(component)) {
      return bad(text, "repository component '" + std::string(component) +
                           "' must be lower-case letters and digits separated by '.', '_', "
                           "'__' or dashes");
    }
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  ref.repository = std::string(path);
  if (ref.registry == kDockerHub && ref.repository.find('/') == std::string::npos) {
    ref.repository = "library/" + ref.repository;
  }
  if (ref.name().size() > kMaxNameLength) return bad(text, "name longer than 255 characters");
  if (ref.tag.empty() && ref.digest.empty()) ref.tag = "latest";
  return ref;
}

std::string Reference::str() const {
  std::string s = name();
  if (!tag.empty()) s += ":" + tag;
  if (!digest.empty()) s += "@" + digest;
  return s;
}

std::string Reference::api_host() const {
  return registry == kDockerHub ? "registry-1.docker.io" : registry;
}

}  // namespace coffer::oci
