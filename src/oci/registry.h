// Distribution API v2 client for one repository: anonymous, basic and bearer-token auth,
// retries with backoff, verified manifests and blobs, streaming uploads and downloads.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "oci/auth.h"
#include "oci/image.h"
#include "oci/reference.h"

namespace coffer::oci {

struct RegistryOptions {
  // auth.json to read credentials from; empty: default_auth_file().
  std::filesystem::path auth_file;
  // auth.json text to take credentials from instead of any file (auth_file and the default
  // files are then never read).
  std::optional<std::string> auth_json;
  // Explicit credentials per registry ("host:port"), taking precedence over the auth file.
  std::map<std::string, Credentials> credentials;
  // Registries spoken to over plain HTTP. Nothing else ever is.
  std::set<std::string> insecure_registries;
  // PEM CA bundle for HTTPS; empty: system store.
  std::string ca_file;
  // Skip TLS verification; as skopeo's --tls-verify=false, a registry that does not speak TLS
  // at all (first request) is then spoken to over plain HTTP.
  bool tls_skip_verify = false;
  int max_attempts = 4;
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{5'000};
  // 0: monolithic uploads (POST + PUT); otherwise PATCH chunks of this size.
  std::size_t chunk_size = 0;
  // Where downloaded blobs are spooled while verified; empty: default_spool_dir().
  std::filesystem::path spool_dir;
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds stall_timeout{60'000};
};

class RegistryClient {
 public:
  RegistryClient(Reference ref, RegistryOptions options);
  ~RegistryClient();
  RegistryClient(RegistryClient&&) noexcept;
  RegistryClient& operator=(RegistryClient&&) noexcept;

  [[nodiscard]] const Reference& reference() const;

  // Fetches by tag or digest and verifies the digest. "manifest_unknown" (404),
  // "manifest_too_large", "digest_mismatch", "unauthorized", "registry_error".
  Result<RawManifest> get_manifest(const std::string& tag_or_digest);
  // Downloads into a spool file, verifying size and digest; the reader streams the verified
  // file. `observer` (optional) sees the bytes as they arrive, reset with each retried attempt.
  // "blob_unknown" (404).
  Result<std::unique_ptr<Reader>> get_blob(const Descriptor& d, StreamObserver* observer = nullptr);
  Result<bool> has_blob(const std::string& digest);
  // Uploads (monolithic or chunked per options); `content` must yield d's bytes.
  Status put_blob(const Descriptor& d, Reader& content);
  // Cross-repository mount from `from_repository` on the same registry; false if refused.
  Result<bool> mount_blob(const std::string& digest, const std::string& from_repository);
  Status put_manifest(ByteView data, std::string_view media_type, const std::string& tag_or_digest);
  Result<std::vector<std::string>> list_tags();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

std::unique_ptr<ImageSource> make_registry_source(Reference ref, RegistryOptions options);
std::unique_ptr<ImageDestination> make_registry_destination(Reference ref, RegistryOptions options);

}  // namespace coffer::oci
