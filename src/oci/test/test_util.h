// Test fixtures: temp directories, child processes (docker-registry, skopeo, umoci) and small
// images built in memory.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/json.h"
#include "oci/copy.h"
#include "oci/layout.h"
#include "oci/registry.h"

namespace coffer::oci::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A free loopback TCP port (bound then released).
std::uint16_t free_port();

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout + stderr
};
// Runs argv (no shell), capturing output; fails the test if the program is missing.
CommandResult run(const std::vector<std::string>& argv);
// The path of a required peer program; ADD_FAILURE if absent.
std::string require_program(const std::string& name);

// Distribution token authentication (the registry config's "auth: token:" section): the
// registry accepts JWTs from `issuer` for `service`, signed by a key whose certificate chains to
// a CA in `root_cert_bundle`, and sends clients without one to `realm`.
struct TokenAuthConfig {
  std::string realm;
  std::string service;
  std::string issuer;
  std::filesystem::path root_cert_bundle;  // PEM
};

// docker-registry 2.8 on 127.0.0.1 with a temp config and storage, stopped on destruction.
class Registry {
 public:
  // With a user, htpasswd basic auth (password "s3cret") is enabled.
  explicit Registry(bool basic_auth = false);
  explicit Registry(const TokenAuthConfig& token);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;
  [[nodiscard]] bool ok() const { return ready_; }
  [[nodiscard]] std::string host() const;  // "127.0.0.1:PORT"
  [[nodiscard]] const std::filesystem::path& storage() const { return dir_.path(); }

 private:
  void start(const std::string& auth_yaml);

  TempDir dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
  bool ready_ = false;
};

// A deterministic tar (ustar) built in memory: files, dirs, symlinks, hardlinks.
struct TarEntry {
  std::string name;
  char type = '0';  // '0' file, '5' dir, '2' symlink, '1' hardlink, '3' char dev, '6' fifo
  std::string content;
  std::string link;
  unsigned mode = 0644;
  unsigned uid = 0, gid = 0;
  std::int64_t mtime = 1700000000;
};
Bytes make_tar(const std::vector<TarEntry>& entries);
Bytes gzip(ByteView data);

// Writes a single-platform image with the given layers (each a tar, gzip-compressed when
// `compress`) into layout `dir` under `tag`; returns the manifest digest. `run_config` is the
// image config's "config" member (Entrypoint, Cmd, Env, WorkingDir, User); null: a /bin/sh
// default.
std::string write_image(const std::filesystem::path& dir, const std::string& tag,
                        const std::vector<Bytes>& layer_tars, bool compress = true,
                        const Json& run_config = nullptr);

// Options for a plain-HTTP test registry: no auth file, 1 ms first backoff.
RegistryOptions insecure_options(const std::string& host);

// copy_image between two transport names ("oci:DIR:TAG", "docker://HOST/REPO:TAG").
Result<CopyResult> copy_by_name(const std::string& from, const std::string& to,
                                const RegistryOptions& options = {},
                                const CopyOptions& copy_options = {});

// A layer tar with a directory "dir" and "dir/file" of `n` bytes of `fill`.
Bytes sample_layer(char fill, std::size_t n);

// Stores an image config and returns its (OCI config) descriptor.
Descriptor put_config(const OciLayout& layout, const Json& config);
// The manifest `tag` names in `layout`.
Manifest read_manifest(const OciLayout& layout, const std::string& tag);
// Serializes `m` into `layout`, tags it, and returns its digest.
std::string put_manifest(const OciLayout& layout, const Manifest& m, const std::string& tag);

// containers-policy.json(5) text: `requirement` as the default, or, with a transport, the only
// requirement of `scope` in that transport and "reject" as the default.
std::string policy_json(const Json& requirement, const std::string& transport = "",
                        const std::string& scope = "");
// A sigstoreSigned requirement for a public key file; `signed_identity` null: the default.
Json sigstore_signed(const std::filesystem::path& key_path, const Json& signed_identity = nullptr);
// A signedBy (GPGKeys) requirement; `key` is {"keyPath": ...} or {"keyData": ...}.
Json gpg_signed_by(const Json& key);

}  // namespace coffer::oci::testing
