#include "oci/test/test_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <gtest/gtest.h>

#include "core/file.h"
#include "crypto/random.h"
#include "net/http_client.h"
#include "oci/transport.h"

extern char** environ;

namespace coffer::oci::testing {
namespace fs = std::filesystem;

TempDir::TempDir() {
  path_ = fs::temp_directory_path() / ("coffer-oci-test-" + crypto::random_uuid_hex());
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  // Unpacked trees may hold read-only directories: make them writable first.
  for (auto it = fs::recursive_directory_iterator(path_, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) {
      fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
    }
  }
  fs::remove_all(path_, ec);
}

std::uint16_t free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

std::string require_program(const std::string& name) {
  for (const char* dir : {"/usr/bin/", "/usr/local/bin/", "/bin/", "/usr/sbin/"}) {
    std::string p = std::string(dir) + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  ADD_FAILURE() << "required peer program '" << name
                << "' is not installed (run scripts/install-deps)";
  return name;
}

CommandResult run(const std::vector<std::string>& argv) {
  CommandResult result;
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return result;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipefd[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipefd[1], 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipefd[1]);
  if (rc != 0) {
    ::close(pipefd[0]);
    ADD_FAILURE() << "cannot run " << argv[0] << ": " << std::strerror(rc);
    return result;
  }
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) result.output.append(buf, n);
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

Registry::Registry(bool basic_auth) {
  std::string auth;
  if (basic_auth) {
    // bcrypt("s3cret"), cost 4.
    std::string htpasswd = "user:$2a$04$gzUVHD129FGaP1M1OdwjpeHGmvwEJ/ymoho3YUUDm7nqTQS2X.liK\n";
    (void)write_file_atomic(dir_.path() / "htpasswd", as_bytes(htpasswd));
    auth = "auth:\n  htpasswd:\n    realm: coffer-test\n    path: " +
           (dir_.path() / "htpasswd").string() + "\n";
  }
  start(auth);
}

Registry::Registry(const TokenAuthConfig& token) {
  start("auth:\n  token:\n    realm: \"" + token.realm + "\"\n    service: \"" + token.service +
        "\"\n    issuer: \"" + token.issuer +
        "\"\n    rootcertbundle: " + token.root_cert_bundle.string() + "\n");
}

void Registry::start(const std::string& auth_yaml) {
  std::string bin = require_program("docker-registry");
  port_ = free_port();
  std::string config =
      "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
      "storage:\n  filesystem:\n    rootdirectory: " +
      (dir_.path() / "data").string() +
      "\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:" + std::to_string(port_) + "\n" +
      auth_yaml;
  (void)write_file_atomic(dir_.path() / "config.yml", as_bytes(config));
  std::string cfg = (dir_.path() / "config.yml").string();
  std::string log = (dir_.path() / "registry.log").string();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> args{const_cast<char*>(bin.c_str()), const_cast<char*>("serve"),
                          const_cast<char*>(cfg.c_str()), nullptr};
  if (::posix_spawn(&pid_, bin.c_str(), &actions, nullptr, args.data(), environ) != 0) {
    pid_ = -1;
  }
  posix_spawn_file_actions_destroy(&actions);
  if (pid_ < 0) return;
  net::HttpClient client({.connect_timeout = std::chrono::milliseconds(500),
                          .timeout = std::chrono::milliseconds(2000)});
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = client.request({.url = "http://" + host() + "/v2/"});
    if (r && (r->status == 200 || r->status == 401)) {
      ready_ = true;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // readiness polling
  }
  ADD_FAILURE() << "docker-registry did not start: " << read_text_file(log).value_or("");
}

Registry::~Registry() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
}

std::string Registry::host() const { return "127.0.0.1:" + std::to_string(port_); }

namespace {

void put_octal(char* field, std::size_t width, std::uint64_t value) {
  std::string s(width - 1, '0');
  for (std::size_t i = width - 1; i-- > 0 && value > 0;) {
    s[i] = static_cast<char>('0' + (value & 7));
    value >>= 3;
  }
  std::memcpy(field, s.data(), width - 1);
  field[width - 1] = '\0';
}

}  // namespace

Bytes make_tar(const std::vector<TarEntry>& entries) {
  Bytes out;
  for (const auto& e : entries) {
    char h[512] = {};
    std::string name = e.name;
    std::string prefix;
    if (name.size() > 100) {
      // A pax extended header carries the long path.
      std::string record = " path=" + name + "\n";
      std::size_t len = record.size() + 1;
      while (std::to_string(len).size() + record.size() != len) ++len;
      record = std::to_string(len) + record;
      TarEntry pax{.name = "PaxHeader", .type = 'x', .content = record};
      Bytes ph = make_tar({pax});
      ph.resize(ph.size() - 1024);  // drop its end-of-archive blocks
      out.insert(out.end(), ph.begin(), ph.end());
      name = name.substr(0, 100);
    }
    std::memcpy(h, name.data(), std::min<std::size_t>(name.size(), 100));
    put_octal(h + 100, 8, e.mode);
    put_octal(h + 108, 8, e.uid);
    put_octal(h + 116, 8, e.gid);
    put_octal(h + 124, 12, (e.type == '0' || e.type == 'x') ? e.content.size() : 0);
    put_octal(h + 136, 12, static_cast<std::uint64_t>(e.mtime));
    std::memset(h + 148, ' ', 8);
    h[156] = e.type;
    std::memcpy(h + 157, e.link.data(), std::min<std::size_t>(e.link.size(), 100));
    std::memcpy(h + 257, "ustar", 6);
    std::memcpy(h + 263, "00", 2);
    std::memcpy(h + 345, prefix.data(), std::min<std::size_t>(prefix.size(), 155));
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    put_octal(h + 148, 7, sum);
    h[155] = ' ';
    out.insert(out.end(), h, h + 512);
    if (e.type == '0' || e.type == 'x') {
      out.insert(out.end(), e.content.begin(), e.content.end());
      out.resize((out.size() + 511) / 512 * 512, 0);
    }
  }
  out.resize(out.size() + 1024, 0);
  return out;
}

Bytes gzip(ByteView data) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
  Bytes out(deflateBound(&z, data.size()) + 64);
  z.next_in = const_cast<Bytef*>(data.data());
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string write_image(const fs::path& dir, const std::string& tag,
                        const std::vector<Bytes>& layer_tars, bool compress,
                        const Json& run_config) {
  auto layout = OciLayout::open_or_create(dir).value();
  Manifest m;
  m.media_type = media_type::kOciManifest;
  Json diff_ids = Json::array();
  for (const auto& tar : layer_tars) {
    diff_ids.push_back(sha256_digest(tar));
    Bytes blob = compress ? gzip(tar) : tar;
    auto digest = layout.put_bytes(blob).value();
    m.layers.push_back(Descriptor{.media_type = compress ? std::string(media_type::kOciLayerGzip)
                                                         : std::string(media_type::kOciLayer),
                                  .digest = digest,
                                  .size = static_cast<std::int64_t>(blob.size())});
  }
  Json config{{"architecture", host_platform().architecture},
              {"os", "linux"},
              {"config", run_config.is_null() ? Json{{"Env", {"PATH=/usr/bin:/bin"}},
                                                     {"Cmd", {"/bin/sh"}},
                                                     {"WorkingDir", "/"}}
                                              : run_config},
              {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  m.config = put_config(layout, config);
  return put_manifest(layout, m, tag);
}

Descriptor put_config(const OciLayout& layout, const Json& config) {
  auto bytes = to_bytes(config.dump());
  return Descriptor{.media_type = std::string(media_type::kOciConfig),
                    .digest = layout.put_bytes(bytes).value(),
                    .size = static_cast<std::int64_t>(bytes.size())};
}

Manifest read_manifest(const OciLayout& layout, const std::string& tag) {
  auto d = layout.resolve(tag).value();
  return parse_manifest(read_file(layout.blob_path(d.digest)).value()).value();
}

std::string put_manifest(const OciLayout& layout, const Manifest& m, const std::string& tag) {
  auto manifest = m.serialize();
  auto digest = layout.put_bytes(manifest).value();
  EXPECT_TRUE(layout.tag_manifest(Descriptor{.media_type = m.media_type,
                                             .digest = digest,
                                             .size = static_cast<std::int64_t>(manifest.size())},
                                  tag));
  return digest;
}

RegistryOptions insecure_options(const std::string& host) {
  RegistryOptions o;
  o.insecure_registries.insert(host);
  o.auth_file = "/nonexistent/auth.json";
  o.initial_backoff = std::chrono::milliseconds(1);
  return o;
}

Result<CopyResult> copy_by_name(const std::string& from, const std::string& to,
                                const RegistryOptions& options, const CopyOptions& copy_options) {
  auto from_name = COFFER_TRY(parse_image_name(from));
  auto to_name = COFFER_TRY(parse_image_name(to));
  auto src = COFFER_TRY(open_source(from_name, options));
  auto dst = COFFER_TRY(open_destination(to_name, options));
  return copy_image(*src, *dst, copy_options);
}

Bytes sample_layer(char fill, std::size_t n) {
  return make_tar({{.name = "dir", .type = '5', .mode = 0755},
                   {.name = "dir/file", .content = std::string(n, fill)}});
}

std::string policy_json(const Json& requirement, const std::string& transport,
                        const std::string& scope) {
  if (transport.empty()) return Json{{"default", {requirement}}}.dump();
  return Json{{"default", {{{"type", "reject"}}}},
              {"transports", {{transport, {{scope, {requirement}}}}}}}
      .dump();
}

Json sigstore_signed(const fs::path& key_path, const Json& signed_identity) {
  Json r{{"type", "sigstoreSigned"}, {"keyPath", key_path.string()}};
  if (!signed_identity.is_null()) r["signedIdentity"] = signed_identity;
  return r;
}

Json gpg_signed_by(const Json& key) {
  Json r{{"type", "signedBy"}, {"keyType", "GPGKeys"}};
  r.update(key);
  return r;
}

}  // namespace coffer::oci::testing
