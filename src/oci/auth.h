// Registry credentials (docker/containers auth.json) and the WWW-Authenticate challenge.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace coffer::oci {

struct Credentials {
  std::string username;
  std::string password;
};

// Credentials for `registry/repository` from an auth.json ({"auths": {KEY: {"auth":
// base64("user:pass")} | {"username","password"}}}). KEY may be a host, a host/namespace prefix
// (the longest match wins) or a URL such as "https://index.docker.io/v1/". nullopt if none.
Result<std::optional<Credentials>> lookup_credentials(const std::filesystem::path& auth_file,
                                                      std::string_view registry,
                                                      std::string_view repository);
// The same lookup in auth.json text held in memory (the enclave's credentials come from its
// attested configuration, never from a file of the host); `what` names it in errors.
Result<std::optional<Credentials>> lookup_credentials_in(std::string_view auth_json,
                                                         std::string_view registry,
                                                         std::string_view repository,
                                                         std::string_view what = "auth.json");

// The auth file to use when none is given: $REGISTRY_AUTH_FILE,
// $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json,
// ~/.docker/config.json — the first that exists (empty path if none).
std::filesystem::path default_auth_file();

struct AuthChallenge {
  std::string scheme;                         // "bearer" or "basic" (lower case)
  std::map<std::string, std::string> params;  // realm, service, scope, error
};

// Parses one WWW-Authenticate value: Bearer realm="...",service="...",scope="..."
Result<AuthChallenge> parse_www_authenticate(std::string_view header);

// Percent-encodes a URL query component (RFC 3986 unreserved characters kept).
std::string url_encode(std::string_view s);

}  // namespace coffer::oci
