#include "oci/registry.h"

#include <algorithm>
#include <thread>

#include "core/log.h"
#include "net/http_client.h"

namespace coffer::oci {
namespace {

constexpr std::size_t kMaxErrorBody = 64 * 1024;

bool retryable_status(int s) { return s == 429 || s == 500 || s == 502 || s == 503 || s == 504; }
bool retryable_error(const Error& e) {
  return e.code == "connect_failed" || e.code == "network_error" || e.code == "timeout";
}

std::string strip_params(std::string_view content_type) {
  auto semi = content_type.find(';');
  auto v = content_type.substr(0, semi);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  return std::string(v);
}

// "errors":[{"code","message"}] of a distribution error body, for messages.
std::string registry_error_text(const std::string& body) {
  auto j = parse_json(body.substr(0, kMaxErrorBody));
  if (j && j->is_object()) {
    auto errs = j->find("errors");
    if (errs != j->end() && errs->is_array() && !errs->empty() && (*errs)[0].is_object()) {
      const Json& e = (*errs)[0];
      return e.value("code", "") + " " + e.value("message", "");
    }
  }
  return body.substr(0, 200);
}

std::unexpected<Error> status_error(const net::Response& r, const std::string& what) {
  std::string detail = registry_error_text(r.body);
  if (r.status == 401 || r.status == 403) {
    // RFC 6750 section 3.1: a bearer challenge names what was wrong with the token we sent.
    auto challenge = parse_www_authenticate(r.headers.get("WWW-Authenticate").value_or(""));
    if (challenge && challenge->scheme == "bearer") {
      const std::string& error = challenge->params["error"];
      if (error == "insufficient_scope") {
        return make_error("unauthorized",
                          what + ": access denied (HTTP " + std::to_string(r.status) +
                              " insufficient_scope): the token server did not "
                              "grant '" +
                              challenge->params["scope"] + "' to these credentials");
      }
      if (error == "invalid_token") {
        return make_error("unauthorized",
                          what + ": access denied (HTTP " + std::to_string(r.status) +
                              " invalid_token): the registry does not accept the token server's "
                              "tokens (issuer, service or signing certificate)");
      }
    }
    return make_error("unauthorized", what + ": access denied (HTTP " + std::to_string(r.status) +
                                          " " + detail +
                                          "); check the credentials in your auth file");
  }
  return make_error("registry_error", what + ": HTTP " + std::to_string(r.status) + " " + detail);
}

}  // namespace

class RegistryClient::Impl {
 public:
  Impl(Reference ref, RegistryOptions options)
      : ref_(std::move(ref)), options_(std::move(options)), http_(client_options(options_)) {
    bool insecure = options_.insecure_registries.contains(ref_.registry);
    base_ = std::string(insecure ? "http" : "https") + "://" + ref_.api_host();
    if (options_.spool_dir.empty()) options_.spool_dir = default_spool_dir();
  }

  Reference ref_;
  RegistryOptions options_;
  net::HttpClient http_;
  std::string base_;
  bool answered_ = false;  // the registry answered a request (its scheme is settled)
  std::map<std::string, std::string> authorization_;  // by scope
  std::string basic_;                                 // "Basic ..." once a registry asked for it
  std::optional<std::optional<Credentials>> creds_;

  static net::HttpClientOptions client_options(const RegistryOptions& o) {
    net::HttpClientOptions h;
    h.connect_timeout = o.connect_timeout;
    h.timeout = std::chrono::milliseconds{0};
    h.stall_timeout = o.stall_timeout;
    h.ca_file = o.ca_file;
    h.insecure_skip_verify = o.tls_skip_verify;
    h.max_response_bytes = kMaxManifestBytes;
    h.cookies = false;
    return h;
  }

  std::string repo_url(const std::string& tail) const {
    return base_ + "/v2/" + ref_.repository + tail;
  }

  std::string absolute(const std::string& location) const {
    if (location.starts_with("http://") || location.starts_with("https://")) return location;
    if (location.starts_with("/")) return base_ + location;
    return base_ + "/" + location;
  }

  Result<std::optional<Credentials>> credentials() {
    if (!creds_) {
      if (auto it = options_.credentials.find(ref_.registry); it != options_.credentials.end()) {
        creds_ = std::optional<Credentials>(it->second);
      } else if (options_.auth_json) {
        creds_ =
            COFFER_TRY(lookup_credentials_in(*options_.auth_json, ref_.registry, ref_.repository));
      } else {
        auto file = options_.auth_file.empty() ? default_auth_file() : options_.auth_file;
        creds_ = COFFER_TRY(lookup_credentials(file, ref_.registry, ref_.repository));
      }
    }
    return *creds_;
  }

  Status authenticate(const net::Response& r, const std::vector<std::string>& scopes) {
    auto header = r.headers.get("WWW-Authenticate");
    if (!header) return status_error(r, "registry " + ref_.registry);
    auto challenge = COFFER_TRY(parse_www_authenticate(*header));
    auto creds = COFFER_TRY(credentials());
    std::string basic =
        creds ? "Basic " + base64_encode(as_bytes(creds->username + ":" + creds->password)) : "";
    if (challenge.scheme == "basic") {
      if (!creds) {
        return make_error("unauthorized", "registry " + ref_.registry +
                                              " requires credentials; add them to an auth.json");
      }
      basic_ = basic;
      return ok();
    }
    if (challenge.scheme != "bearer") {
      return make_error("unauthorized", "unsupported auth scheme '" + challenge.scheme + "'");
    }
    const std::string& realm = challenge.params["realm"];
    if (!realm.starts_with("https://") && !realm.starts_with("http://")) {
      return make_error("unauthorized", "token realm '" + realm + "' is not an http(s) URL");
    }
    if (realm.starts_with("http://") && !base_.starts_with("http://") && creds) {
      // Never send a password for a TLS registry over plain HTTP.
      return make_error("unauthorized",
                        "refusing to send credentials to plain-HTTP realm " + realm);
    }
    std::string url = realm + (realm.find('?') == std::string::npos ? "?" : "&");
    if (!challenge.params["service"].empty()) {
      url += "service=" + url_encode(challenge.params["service"]) + "&";
    }
    for (const auto& s : scopes) url += "scope=" + url_encode(s) + "&";
    url.pop_back();
    net::ClientRequest req{.method = "GET", .url = url};
    if (creds) req.headers.set("Authorization", basic);
    auto resp = COFFER_TRY(http_.request(req));
    if (resp.status != 200) return status_error(resp, "token server " + realm);
    auto j = parse_json(resp.body);
    std::string token;
    if (j && j->is_object()) {
      token = j->value("token", "");
      if (token.empty()) token = j->value("access_token", "");
    }
    if (token.empty()) return make_error("unauthorized", "token server returned no token");
    authorization_[join(scopes)] = "Bearer " + token;
    return ok();
  }

  static std::string join(const std::vector<std::string>& scopes) {
    std::string s;
    for (const auto& x : scopes) s += x + " ";
    return s;
  }

  std::vector<std::string> scopes(bool push) const {
    return {"repository:" + ref_.repository + (push ? ":pull,push" : ":pull")};
  }

  void backoff(int attempt, const net::Response* r) const {
    auto delay = options_.initial_backoff * (1 << std::min(attempt, 10));
    if (r != nullptr) {
      if (auto ra = r->headers.get("Retry-After")) {
        char* end = nullptr;
        long secs = std::strtol(ra->c_str(), &end, 10);
        if (end != ra->c_str() && secs >= 0) delay = std::chrono::seconds(secs);
      }
    }
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(
        std::chrono::duration_cast<std::chrono::milliseconds>(delay), options_.max_backoff));
  }

  // One request with authentication and retries. `body` (optional) streams the request body;
  // `spool` (optional) receives a streamed response body, recreated per attempt, and
  // `new_attempt` (optional) returns, for each attempt, the sink that sees that attempt's bytes:
  // nothing of a failed attempt (a 5xx body, a truncated transfer) may reach the next one.
  Result<net::Response> perform(net::ClientRequest req, const std::vector<std::string>& scope,
                                Reader* body = nullptr, std::optional<TempFile>* spool = nullptr,
                                const std::function<ChunkSink()>& new_attempt = nullptr) {
    bool reauthenticated = false;
    for (int attempt = 0;; ++attempt) {
      net::ClientRequest r = req;
      if (auto it = authorization_.find(join(scope)); it != authorization_.end()) {
        r.headers.set("Authorization", it->second);
      } else if (!basic_.empty()) {
        r.headers.set("Authorization", basic_);
      }
      if (body != nullptr) {
        if (attempt > 0) COFFER_TRY_STATUS(body->rewind());
        r.body_reader = [body](std::span<std::uint8_t> buf) { return body->read(buf); };
        if (body->size() >= 0) r.body_length = static_cast<std::uint64_t>(body->size());
      }
      Result<net::Response> resp;
      if (spool != nullptr) {
        *spool = COFFER_TRY(TempFile::create(options_.spool_dir));
        TempFile& file = **spool;
        ChunkSink observe = new_attempt ? new_attempt() : nullptr;
        resp = http_.request_streaming(r, [&](ByteView chunk) -> Status {
          if (observe) COFFER_TRY_STATUS(observe(chunk));
          return file.write(chunk);
        });
      } else {
        resp = http_.request(r);
      }
      bool last = attempt + 1 >= options_.max_attempts;
      if (!resp && (resp.error().code == "tls_wrong_version" || resp.error().code == "tls_error") &&
          options_.tls_skip_verify && !answered_ && base_.starts_with("https://") &&
          req.url.starts_with(base_)) {
        // skopeo's --tls-verify=false: a registry that does not speak TLS at all is then spoken
        // to over plain HTTP (decided once, on the first request to it).
        std::string http_base = "http://" + ref_.api_host();
        spdlog::info("registry {} does not speak TLS ({}); using HTTP as --tls-verify=false allows",
                     ref_.registry, resp.error().message);
        req.url = http_base + req.url.substr(base_.size());
        base_ = http_base;
        if (body != nullptr) COFFER_TRY_STATUS(body->rewind());
        --attempt;
        continue;
      }
      if (resp) answered_ = true;
      if (!resp) {
        if (resp.error().code == "too_large") {
          return make_error("manifest_too_large", req.url + ": response exceeds " +
                                                      std::to_string(kMaxManifestBytes) + " bytes");
        }
        if (retryable_error(resp.error()) && !last) {
          spdlog::warn("registry request {} failed ({}); retrying", req.url, resp.error().message);
          backoff(attempt, nullptr);
          continue;
        }
        return std::unexpected(resp.error());
      }
      if (resp->status == 401 && !reauthenticated) {
        reauthenticated = true;
        COFFER_TRY_STATUS(authenticate(*resp, scope));
        --attempt;  // authentication does not use up a retry
        continue;
      }
      if (retryable_status(resp->status) && !last) {
        spdlog::warn("registry answered HTTP {} for {}; retrying", resp->status, req.url);
        backoff(attempt, &*resp);
        continue;
      }
      if (spool != nullptr && resp->status >= 300) {
        // Error bodies were spooled: bring back a bounded excerpt for the message.
        auto reader = COFFER_TRY((*spool)->reader());
        auto bytes = read_all(*reader, kMaxErrorBody);
        if (bytes) resp->body = to_string(*bytes);
      }
      return resp;
    }
  }
};

RegistryClient::RegistryClient(Reference ref, RegistryOptions options)
    : impl_(std::make_unique<Impl>(std::move(ref), std::move(options))) {}
RegistryClient::~RegistryClient() = default;
RegistryClient::RegistryClient(RegistryClient&&) noexcept = default;
RegistryClient& RegistryClient::operator=(RegistryClient&&) noexcept = default;

const Reference& RegistryClient::reference() const { return impl_->ref_; }

Result<RawManifest> RegistryClient::get_manifest(const std::string& tag_or_digest) {
  net::ClientRequest req{.method = "GET", .url = impl_->repo_url("/manifests/" + tag_or_digest)};
  req.headers.set("Accept", manifest_accept_header());
  auto resp = COFFER_TRY(impl_->perform(req, impl_->scopes(false)));
  std::string what = "manifest " + impl_->ref_.name() + ":" + tag_or_digest;
  if (resp.status == 404) {
    return make_error("manifest_unknown", what + " does not exist in the registry");
  }
  if (resp.status != 200) return status_error(resp, what);
  RawManifest m{to_bytes(resp.body), strip_params(resp.headers.get("Content-Type").value_or("")),
                ""};
  m.digest = sha256_digest(m.data);
  bool by_digest = tag_or_digest.find(':') != std::string::npos;
  if (by_digest && tag_or_digest.starts_with("sha256:") && m.digest != tag_or_digest) {
    return make_error("digest_mismatch", what + ": the registry sent content with digest " +
                                             m.digest + "; refusing it");
  }
  if (!by_digest) {
    auto header = resp.headers.get("Docker-Content-Digest");
    if (header && header->starts_with("sha256:") && *header != m.digest) {
      return make_error("digest_mismatch", what + ": content digest " + m.digest +
                                               " differs from Docker-Content-Digest " + *header);
    }
  }
  return m;
}

Result<std::unique_ptr<Reader>> RegistryClient::get_blob(const Descriptor& d,
                                                         StreamObserver* observer) {
  COFFER_TRY_STATUS(validate_digest(d.digest));
  std::optional<TempFile> spool;
  std::optional<DigestChecker> checker;
  // Each attempt starts a fresh digest, size count and observer.
  auto new_attempt = [&]() -> ChunkSink {
    checker.emplace(d.digest, d.size);
    if (observer != nullptr) observer->reset();
    return [&](ByteView chunk) -> Status {
      checker->update(chunk);
      if (checker->over_size()) {
        return make_error("size_mismatch", "blob " + d.digest + " is larger than described");
      }
      if (observer != nullptr) observer->update(chunk);
      return ok();
    };
  };
  net::ClientRequest req{.method = "GET", .url = impl_->repo_url("/blobs/" + d.digest)};
  auto resp = COFFER_TRY(impl_->perform(req, impl_->scopes(false), nullptr, &spool, new_attempt));
  if (resp.status == 404) {
    return make_error("blob_unknown",
                      "blob " + d.digest + " does not exist in " + impl_->ref_.name());
  }
  if (resp.status != 200) return status_error(resp, "blob " + d.digest);
  if (!checker) checker.emplace(d.digest, d.size);
  COFFER_TRY_STATUS(checker->finish());
  // The open descriptor keeps the verified content after the spool file's name goes away.
  auto reader = COFFER_TRY(spool->reader());
  return std::unique_ptr<Reader>(std::move(reader));
}

Result<bool> RegistryClient::has_blob(const std::string& digest) {
  COFFER_TRY_STATUS(validate_digest(digest));
  net::ClientRequest req{.method = "HEAD", .url = impl_->repo_url("/blobs/" + digest)};
  auto resp = COFFER_TRY(impl_->perform(req, impl_->scopes(true)));
  if (resp.status == 200) return true;
  if (resp.status == 404) return false;
  return status_error(resp, "checking blob " + digest);
}

Status RegistryClient::put_blob(const Descriptor& d, Reader& content) {
  COFFER_TRY_STATUS(validate_digest(d.digest));
  auto push = impl_->scopes(true);
  net::ClientRequest start{.method = "POST", .url = impl_->repo_url("/blobs/uploads/")};
  auto resp = COFFER_TRY(impl_->perform(start, push));
  if (resp.status != 202) return status_error(resp, "starting upload of " + d.digest);
  auto location = resp.headers.get("Location");
  if (!location) return make_error("registry_error", "upload session without a Location");
  std::string url = impl_->absolute(*location);
  auto sep = [](const std::string& u) { return u.find('?') == std::string::npos ? "?" : "&"; };
  if (impl_->options_.chunk_size == 0) {
    net::ClientRequest put{.method = "PUT",
                           .url = url + sep(url) + "digest=" + url_encode(d.digest)};
    put.headers.set("Content-Type", "application/octet-stream");
    auto r = COFFER_TRY(impl_->perform(put, push, &content));
    if (r.status != 201) return status_error(r, "uploading " + d.digest);
    return ok();
  }
  std::vector<std::uint8_t> chunk(impl_->options_.chunk_size);
  std::uint64_t offset = 0;
  for (;;) {
    std::size_t filled = 0;
    while (filled < chunk.size()) {
      std::size_t n = COFFER_TRY(content.read(std::span(chunk).subspan(filled)));
      if (n == 0) break;
      filled += n;
    }
    if (filled == 0) break;
    net::ClientRequest patch{.method = "PATCH", .url = url};
    patch.headers.set("Content-Type", "application/octet-stream");
    patch.headers.set("Content-Range",
                      std::to_string(offset) + "-" + std::to_string(offset + filled - 1));
    patch.body.assign(reinterpret_cast<const char*>(chunk.data()), filled);
    auto r = COFFER_TRY(impl_->perform(patch, push));
    if (r.status != 202) return status_error(r, "uploading a chunk of " + d.digest);
    if (auto next = r.headers.get("Location")) url = impl_->absolute(*next);
    offset += filled;
    if (filled < chunk.size()) break;
  }
  net::ClientRequest put{.method = "PUT", .url = url + sep(url) + "digest=" + url_encode(d.digest)};
  put.headers.set("Content-Type", "application/octet-stream");
  auto r = COFFER_TRY(impl_->perform(put, push));
  if (r.status != 201) return status_error(r, "completing upload of " + d.digest);
  return ok();
}

Result<bool> RegistryClient::mount_blob(const std::string& digest,
                                        const std::string& from_repository) {
  COFFER_TRY_STATUS(validate_digest(digest));
  auto scopes = impl_->scopes(true);
  scopes.push_back("repository:" + from_repository + ":pull");
  net::ClientRequest req{.method = "POST",
                         .url = impl_->repo_url("/blobs/uploads/?mount=" + url_encode(digest) +
                                                "&from=" + url_encode(from_repository))};
  auto resp = COFFER_TRY(impl_->perform(req, scopes));
  if (resp.status == 201) return true;
  if (resp.status == 202) return false;  // the registry opened a normal upload instead
  return status_error(resp, "mounting " + digest);
}

Status RegistryClient::put_manifest(ByteView data, std::string_view media_type,
                                    const std::string& tag_or_digest) {
  net::ClientRequest req{.method = "PUT", .url = impl_->repo_url("/manifests/" + tag_or_digest)};
  req.headers.set("Content-Type", std::string(media_type));
  req.body = to_string(data);
  auto resp = COFFER_TRY(impl_->perform(req, impl_->scopes(true)));
  if (resp.status != 201 && resp.status != 200) {
    return status_error(resp, "pushing manifest " + tag_or_digest);
  }
  return ok();
}

Result<std::vector<std::string>> RegistryClient::list_tags() {
  net::ClientRequest req{.method = "GET", .url = impl_->repo_url("/tags/list")};
  auto resp = COFFER_TRY(impl_->perform(req, impl_->scopes(false)));
  if (resp.status != 200) return status_error(resp, "listing tags");
  auto j = COFFER_TRY(parse_json(resp.body));
  std::vector<std::string> tags;
  if (j.is_object() && j.contains("tags") && j["tags"].is_array()) {
    for (const auto& t : j["tags"]) {
      if (t.is_string()) tags.push_back(t.get<std::string>());
    }
  }
  return tags;
}

namespace {

class RegistrySource final : public ImageSource {
 public:
  RegistrySource(Reference ref, RegistryOptions options)
      : client_(std::move(ref), std::move(options)) {}

  Result<RawManifest> manifest() override {
    return client_.get_manifest(client_.reference().tag_or_digest());
  }
  Result<RawManifest> manifest_by_digest(const std::string& digest) override {
    COFFER_TRY_STATUS(validate_digest(digest));
    return client_.get_manifest(digest);
  }
  Result<std::optional<RawManifest>> manifest_by_tag(const std::string& tag) override {
    auto m = client_.get_manifest(tag);
    if (!m) {
      if (m.error().code == "manifest_unknown") return std::optional<RawManifest>{};
      return std::unexpected(m.error());
    }
    return std::optional<RawManifest>(std::move(*m));
  }
  Result<std::unique_ptr<Reader>> blob(const Descriptor& d) override { return client_.get_blob(d); }
  // The download into the private spool file is the one pass the observer needs.
  Result<std::unique_ptr<Reader>> blob_observed(const Descriptor& d,
                                                StreamObserver& observer) override {
    return client_.get_blob(d, &observer);
  }
  [[nodiscard]] std::string describe() const override {
    return "docker://" + client_.reference().str();
  }
  [[nodiscard]] const Reference& reference() const { return client_.reference(); }

 private:
  RegistryClient client_;
};

class RegistryDestination final : public ImageDestination {
 public:
  RegistryDestination(Reference ref, RegistryOptions options)
      : client_(std::move(ref), std::move(options)) {}

  Result<bool> has_blob(const Descriptor& d) override { return client_.has_blob(d.digest); }
  Status put_blob(const Descriptor& d, Reader& content) override {
    return client_.put_blob(d, content);
  }
  Status put_manifest(ByteView data, std::string_view media_type, const std::string& tag) override {
    return client_.put_manifest(data, media_type, tag.empty() ? sha256_digest(data) : tag);
  }
  Result<bool> try_mount(const Descriptor& d, const ImageSource& from) override {
    const auto* src = dynamic_cast<const RegistrySource*>(&from);
    if (src == nullptr || src->reference().registry != client_.reference().registry ||
        src->reference().repository == client_.reference().repository) {
      return false;
    }
    return client_.mount_blob(d.digest, src->reference().repository);
  }
  [[nodiscard]] std::string tag() const override { return client_.reference().tag; }
  [[nodiscard]] std::string describe() const override {
    return "docker://" + client_.reference().str();
  }

 private:
  RegistryClient client_;
};

}  // namespace

std::unique_ptr<ImageSource> make_registry_source(Reference ref, RegistryOptions options) {
  return std::make_unique<RegistrySource>(std::move(ref), std::move(options));
}

std::unique_ptr<ImageDestination> make_registry_destination(Reference ref,
                                                            RegistryOptions options) {
  return std::make_unique<RegistryDestination>(std::move(ref), std::move(options));
}

}  // namespace coffer::oci
