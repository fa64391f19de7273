#include "cli/image_command.h"

#include <termios.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>

#include "cli/exit.h"
#include "cli/kbs_options.h"
#include "core/file.h"
#include "crypto/random.h"
#include "jose/jwt.h"
#include "net/http_client.h"
#include "oci/build.h"
#include "oci/crypt/ocicrypt.h"
#include "oci/layout.h"
#include "oci/sign/cosign.h"
#include "oci/sign/cosign_key.h"
#include "oci/sign/policy.h"
#include "oci/transport.h"
#include "oci/unpack/unpack.h"

namespace coffer::cli {
namespace {

namespace fs = std::filesystem;
using namespace coffer::oci;

struct Common {
  std::string authfile;
  std::vector<std::string> insecure;
  std::string ca_file;
  bool tls_verify = true;
  std::string platform;
  std::string spool_dir;
  std::size_t chunk_size = 0;
};

struct Options {
  Common common;
  std::string src, dst, image, bundle, rootfs, policy, lookaside, key, password_file;
  std::string identity, prefix = "cosign", kbs_key_out, kbs_key_in;
  std::vector<std::string> recipients, decrypt_keys, kbs_key_files;
  KbsConnection kbs;      // --kbs-url, --kbs-ca-file, --kbs-insecure, --kbs-admin-key
  KbsAttestation attest;  // --tee, --quote-service, --init-data
  bool all = false, raw = false, config = false, allow_devices = false, keep_privileges = false;
  bool quiet = false, insecure_policy = false;
  std::uint64_t max_layer_size = unpack::kDefaultMaxLayerBytes;
  std::uint64_t max_image_size = unpack::kDefaultMaxImageBytes;
  bool require_encrypted = false;
  // build
  std::string from_dir, from_tar, workdir, user, os = "linux", arch = host_platform().architecture;
  std::vector<std::string> entrypoint, cmd, env, labels;
};

[[noreturn]] void die(const std::string& cmd, const Error& e, Peer peer = Peer::kRegistry) {
  fail("coffer image " + cmd, e, peer);
}

template <typename T>
T must(const std::string& cmd, Result<T> r) {
  if (!r) die(cmd, r.error());
  return std::move(*r);
}

void must(const std::string& cmd, const Status& s) {
  if (!s) die(cmd, s.error());
}

RegistryOptions registry_options(const Common& c) {
  RegistryOptions o;
  o.auth_file = c.authfile;
  o.insecure_registries.insert(c.insecure.begin(), c.insecure.end());
  o.ca_file = c.ca_file;
  o.tls_skip_verify = !c.tls_verify;
  o.spool_dir = c.spool_dir;
  o.chunk_size = c.chunk_size;
  return o;
}

Platform platform_of(const std::string& cmd, const Common& c) {
  return c.platform.empty() ? host_platform() : must(cmd, parse_platform(c.platform));
}

std::string mib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", bytes / (1024.0 * 1024.0));
  return buf;
}

// Per-layer progress on stderr: a live line on a terminal, a plain line per layer otherwise;
// nothing with --quiet. The config blob is not a layer and is not listed.
ProgressFn progress_printer(const Options& o) {
  if (o.quiet) return nullptr;
  bool tty = ::isatty(STDERR_FILENO) != 0;
  auto start =
      std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
  auto last = std::make_shared<std::string>();
  return [tty, start, last](const LayerProgress& p) {
    if (p.is_config) return;
    if (*last != p.digest) {
      *last = p.digest;
      *start = std::chrono::steady_clock::now();
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - *start).count();
    std::string line = "layer " + std::to_string(p.index + 1) + "/" + std::to_string(p.count) +
                       " " + p.digest.substr(0, 19) + " " + p.action + " " + mib(p.bytes) +
                       (p.total >= 0 ? "/" + mib(static_cast<double>(p.total)) : "") + " MiB";
    if (secs > 0.05) line += " " + mib(static_cast<double>(p.bytes) / secs) + " MiB/s";
    if (tty) {
      std::cerr << "\r\033[K" << line << (p.done ? "\n" : "") << std::flush;
    } else if (p.done) {
      std::cerr << line << "\n";
    }
  };
}

crypto::Key load_pem_key(const std::string& cmd, const std::string& path) {
  auto text = must(cmd, read_text_file(path, 1 << 20));
  return must(cmd, crypto::Key::from_pem(text));
}

// "kbs:///repo/type/tag=FILE" -> kid, key bytes.
crypt::KbsRecipient parse_kbs_key_file(const std::string& cmd, const std::string& spec) {
  auto eq = spec.find('=');
  if (eq == std::string::npos || !spec.starts_with("kbs:///")) {
    die(cmd, Error{"bad_argument", "'" + spec + "' is not kbs:///repo/type/tag=FILE"});
  }
  return {spec.substr(0, eq), must(cmd, read_file(spec.substr(eq + 1), 4096))};
}

// Decryption keys: JWE private keys (--decryption-key), kbs:/// keys from files
// (--kbs-key-file KID=FILE) and, with a KBS URL, every other kbs:/// key fetched by attesting
// (--tee, --quote-service) through the attestation agent's KBS client, as the agent does.
crypt::DecryptConfig decrypt_config(const std::string& cmd, const Options& o) {
  crypt::DecryptConfig dc;
  for (const auto& k : o.decrypt_keys) dc.jwe_keys.push_back(load_pem_key(cmd, k));
  std::map<std::string, Bytes> keys;
  for (const auto& spec : o.kbs_key_files) {
    auto r = parse_kbs_key_file(cmd, spec);
    keys[r.kid] = r.key;
  }
  std::shared_ptr<KbsKeyFetcher> fetcher;
  if (!o.kbs.url.empty()) fetcher = std::make_shared<KbsKeyFetcher>(o.kbs, o.attest);
  // no provider at all: the image's kbs:/// layers fail as missing_decryption_key
  if (keys.empty() && !fetcher) return dc;
  dc.key_provider = [keys, fetcher](const std::string& kid) -> Result<Bytes> {
    if (auto it = keys.find(kid); it != keys.end()) return it->second;
    if (fetcher) return fetcher->fetch(kid);
    return make_error("missing_decryption_key",
                      "no key for " + kid + ": give --kbs-key-file " + kid +
                          "=FILE, or --kbs-url URL (and --tee) to fetch it by "
                          "attesting");
  };
  return dc;
}

crypt::EncryptConfig encrypt_config(const std::string& cmd, const Options& o) {
  crypt::EncryptConfig ec;
  for (const auto& r : o.recipients) {
    if (r.starts_with("jwe:")) {
      ec.jwe_recipients.push_back(load_pem_key(cmd, r.substr(4)));
    } else if (r.starts_with("kbs:///")) {
      // handled with --kbs-key below
    } else {
      die(cmd, Error{"bad_argument", "recipient '" + r + "' is not jwe:FILE or kbs:///..."});
    }
  }
  std::string kid;
  for (const auto& r : o.recipients) {
    if (!r.starts_with("kbs:///")) continue;
    if (!kid.empty() && kid != r) {
      die(cmd, Error{"bad_argument", "give one kbs:///repo/type/tag recipient, not several"});
    }
    kid = r;
  }
  if (kid.empty()) {
    if (!o.kbs_key_in.empty() || !o.kbs_key_out.empty()) {
      die(cmd, Error{"bad_argument",
                     "--kbs-key-in/--kbs-key-out go with a --recipient kbs:///repo/type/tag"});
    }
    return ec;
  }
  // The key is registered when an admin key is known (--kbs-admin-key or COFFER_KBS_ADMIN_KEY),
  // written to --kbs-key-out when given; a new key must end up in at least one of the two.
  bool do_register = !o.kbs.admin_key.empty();
  if (do_register && o.kbs.url.empty()) {
    die(cmd,
        Error{"bad_argument",
              "registering the key needs --kbs-url URL (or COFFER_KBS_URL) with the admin key"});
  }
  crypt::KbsRecipient kr{kid, {}};
  if (!o.kbs_key_in.empty()) {
    kr.key = must(cmd, read_file(o.kbs_key_in, 4096));
  } else {
    if (o.kbs_key_out.empty() && !do_register) {
      die(cmd, Error{"bad_argument",
                     "a new KBS key would be lost: pass --kbs-key-out FILE and/or register it "
                     "with --kbs-url URL --kbs-admin-key FILE (or COFFER_KBS_URL, "
                     "COFFER_KBS_ADMIN_KEY)"});
    }
    kr.key = crypto::random_bytes(32);
  }
  if (!o.kbs_key_out.empty()) must(cmd, write_file_atomic(o.kbs_key_out, kr.key, 0600));
  if (do_register) {
    if (auto s = kbs_set_resource(o.kbs, kid.substr(7), kr.key); !s)
      die(cmd, s.error(), Peer::kKbs);
    std::cerr << "registered " << kid << " in " << o.kbs.url << "\n";
  }
  ec.kbs_recipients.push_back(std::move(kr));
  return ec;
}

// Reads one line from the terminal on stdin with echo off (restored on every path).
std::string prompt_password(const std::string& cmd, const std::string& prompt) {
  termios saved{};
  if (::tcgetattr(STDIN_FILENO, &saved) != 0) {
    die(cmd, Error{"io_error", "cannot read the terminal's settings"});
  }
  termios quiet = saved;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  quiet.c_lflag |= ECHONL;
  // echo off before the prompt shows, so that nothing typed after it is echoed or discarded
  ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  std::cerr << prompt << std::flush;
  std::string line;
  bool got = static_cast<bool>(std::getline(std::cin, line));
  ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
  if (!got) die(cmd, Error{"bad_argument", "no password entered"});
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// The cosign key password: --password-file, else COSIGN_PASSWORD, else asked on the terminal
// (twice with `confirm`, for a new key).
std::string read_password(const std::string& cmd, const std::string& file, bool confirm = false) {
  if (!file.empty()) {
    auto p = must(cmd, read_text_file(file, 4096));
    while (!p.empty() && (p.back() == '\n' || p.back() == '\r')) p.pop_back();
    return p;
  }
  if (const char* env = std::getenv("COSIGN_PASSWORD")) return env;
  if (::isatty(STDIN_FILENO) == 0) {
    die(cmd, Error{"bad_argument",
                   "give the key password with --password-file, COSIGN_PASSWORD or on a terminal"});
  }
  auto first = prompt_password(cmd, "Enter password for private key: ");
  if (confirm && prompt_password(cmd, "Enter password for private key again: ") != first) {
    die(cmd, Error{"bad_argument", "the passwords do not match"});
  }
  return first;
}

// The cosign private key of --sign-key, opened with its password.
crypto::Key load_sign_key(const std::string& cmd, const Options& o) {
  return must(cmd, sign::load_cosign_private_key(must(cmd, read_text_file(o.key, 1 << 20)),
                                                 read_password(cmd, o.password_file)));
}

// Signs `name`'s top-level manifest (digest) with a cosign key.
void sign_with(const std::string& cmd, const Options& o, const ImageName& name,
               const std::string& digest, const crypto::Key& key) {
  auto ro = registry_options(o.common);
  auto src = must(cmd, open_source(name, ro));
  auto dst = must(cmd, open_destination(name, ro));
  std::string identity = o.identity;
  if (identity.empty()) {
    identity = name.transport == Transport::kDocker ? name.reference.str() : name.str();
  }
  must(cmd, sign::sign_image(*src, *dst, digest, identity, key));
  must(cmd, dst->commit());
  std::cerr << "signed " << name.str() << " (" << digest << ")\n";
}

void sign_with(const std::string& cmd, const Options& o, const ImageName& name,
               const std::string& digest) {
  sign_with(cmd, o, name, digest, load_sign_key(cmd, o));
}

// The policy.json `copy` and `unpack` check, as skopeo chooses it: --policy, else the system
// policy (/etc/containers/policy.json, or the file COFFER_CONTAINERS_POLICY names) when it
// exists; without either, refused unless --insecure-policy. Empty: no policy check.
std::string policy_path(const std::string& cmd, const Options& o) {
  if (!o.policy.empty()) return o.policy;
  if (o.insecure_policy) return {};
  const char* env = std::getenv("COFFER_CONTAINERS_POLICY");
  std::string system = env != nullptr && *env != '\0' ? env : "/etc/containers/policy.json";
  std::error_code ec;
  if (fs::exists(system, ec)) return system;
  die(cmd, Error{"no_policy", "no --policy given and no system policy " + system +
                                  ": pass --policy FILE, or --insecure-policy to skip the "
                                  "signature policy check"});
}

// Resolves the image once; with --policy, checks the policy on exactly that manifest. Everything
// after (copy, unpack) takes the returned PinnedImage, never the tag again.
PinnedImage pin_and_check(const std::string& cmd, const Options& o, const ImageName& name,
                          ImageSource& src) {
  auto pinned = must(cmd, pin_image(src));
  if (auto path = policy_path(cmd, o); !path.empty()) {
    auto policy = must(cmd, sign::Policy::load(path));
    must(cmd, policy.evaluate(name, src, pinned, sign::PolicyContext{.lookaside = o.lookaside}));
  }
  return pinned;
}

void run_copy(const std::string& cmd, const Options& o, CopyOptions co) {
  auto ro = registry_options(o.common);
  auto src_name = must(cmd, parse_image_name(o.src));
  auto dst_name = must(cmd, parse_image_name(o.dst));
  auto src = must(cmd, open_source(src_name, ro));
  auto pinned = pin_and_check(cmd, o, src_name, *src);
  // A new layout destination is staged and appears only complete (committed by copy_image);
  // transformed layers are spooled in its blob directory and renamed into place.
  auto dst = must(cmd, open_destination(dst_name, ro));
  co.platform = platform_of(cmd, o.common);
  co.all_platforms = o.all;
  co.progress = progress_printer(o);
  co.require_encrypted_layers = o.require_encrypted;
  if (!o.common.spool_dir.empty()) co.spool_dir = o.common.spool_dir;
  auto result = must(cmd, copy_image(*src, *dst, pinned, co));
  std::cout << result.manifest_digest << "\n";
  if (!o.key.empty()) sign_with(cmd, o, dst_name, result.manifest_digest);
}

// --entrypoint/--cmd: one JSON array of strings, or the words one per occurrence; nullopt when
// not given (the image has no such member).
std::optional<std::vector<std::string>> json_or_words(const std::string& cmd,
                                                      const std::string& option,
                                                      const std::vector<std::string>& values) {
  if (values.empty()) return std::nullopt;
  if (values.size() != 1 || !values[0].starts_with('[')) return values;
  auto j = parse_json(values[0]);
  std::vector<std::string> words;
  bool ok = j && j->is_array();
  for (std::size_t i = 0; ok && i < j->size(); ++i) {
    ok = (*j)[i].is_string();
    if (ok) words.push_back((*j)[i].get<std::string>());
  }
  if (!ok) {
    die(cmd, Error{"bad_argument", option + " '" + printable(values[0]) +
                                       "' is not a JSON array of strings; give one, or the "
                                       "words with one " +
                                       option + " each"});
  }
  return words;
}

// SOURCE_DATE_EPOCH (reproducible-builds.org): seconds since the epoch; unset or empty: 0.
std::int64_t source_date_epoch(const std::string& cmd) {
  const char* env = std::getenv("SOURCE_DATE_EPOCH");
  if (env == nullptr || *env == '\0') return 0;
  std::string_view text(env);
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < 0) {
    die(cmd, Error{"bad_argument", "SOURCE_DATE_EPOCH='" + printable(text) +
                                       "' is not a number of seconds since the epoch"});
  }
  return value;
}

BuildOptions build_options(const std::string& cmd, const Options& o) {
  BuildOptions b;
  b.from_dir = o.from_dir;
  b.from_tar = o.from_tar;
  b.config.entrypoint = json_or_words(cmd, "--entrypoint", o.entrypoint);
  b.config.cmd = json_or_words(cmd, "--cmd", o.cmd);
  for (const auto& e : o.env) {
    if (e.find('=') == std::string::npos || e.starts_with('=')) {
      die(cmd, Error{"bad_argument", "--env '" + printable(e) + "' is not NAME=VALUE"});
    }
  }
  b.config.env = o.env;
  b.config.working_dir = o.workdir;
  b.config.user = o.user;
  for (const auto& l : o.labels) {
    auto eq = l.find('=');
    if (eq == std::string::npos || eq == 0) {
      die(cmd, Error{"bad_argument", "--label '" + printable(l) + "' is not KEY=VALUE"});
    }
    if (!b.config.labels.emplace(l.substr(0, eq), l.substr(eq + 1)).second) {
      die(cmd, Error{"bad_argument", "--label " + printable(l.substr(0, eq)) + " is given twice"});
    }
  }
  b.platform = must(cmd, parse_platform(o.os + "/" + o.arch));
  b.timestamp = source_date_epoch(cmd);
  b.spool_dir = o.common.spool_dir;
  b.progress = progress_printer(o);
  return b;
}

// A private directory for the unencrypted image, removed on every path.
struct ScratchDir {
  explicit ScratchDir(const std::string& cmd, const fs::path& parent) {
    std::string pattern = (parent / "coffer-build-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      die(cmd, Error{"io_error", "cannot create a directory in " + parent.string() + ": " +
                                     std::strerror(errno)});
    }
    path = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  fs::path path;
};

// Builds into the destination; with recipients, builds into a private layout first and encrypts
// while copying (the plaintext never reaches the destination). The destination is committed only
// complete; the cosign key is opened before anything is written, so a wrong password changes
// nothing.
void run_build(const std::string& cmd, const Options& o) {
  auto bo = build_options(cmd, o);
  auto ro = registry_options(o.common);
  auto dst_name = must(cmd, parse_image_name(o.dst));
  // a manifest without a tag would be written by digest only, unreachable in the layout
  if (dst_name.transport == Transport::kOci && dst_name.tag.empty()) {
    die(cmd, Error{"bad_argument",
                   "name the image in the layout: oci:" + dst_name.dir.string() + ":TAG"});
  }
  std::optional<crypto::Key> key;
  if (!o.key.empty()) key = load_sign_key(cmd, o);
  std::string digest;
  if (o.recipients.empty()) {
    auto dst = must(cmd, open_destination(dst_name, ro));
    digest = must(cmd, build_image(bo, *dst)).manifest_digest;
    must(cmd, dst->commit());
  } else {
    ScratchDir scratch(
        cmd, o.common.spool_dir.empty() ? default_spool_dir() : fs::path(o.common.spool_dir));
    auto layout = must(cmd, OciLayout::open_or_create(scratch.path));
    {
      auto plain = make_layout_destination(layout, "build");
      must(cmd, build_image(bo, *plain));
      must(cmd, plain->commit());
    }
    auto co = crypt::encrypt_copy_options(encrypt_config(cmd, o));
    co.platform = bo.platform;
    co.progress = progress_printer(o);
    if (!o.common.spool_dir.empty()) co.spool_dir = o.common.spool_dir;
    auto src = make_layout_source(layout, "build");
    auto pinned = must(cmd, pin_image(*src));
    auto dst = must(cmd, open_destination(dst_name, ro));
    digest = must(cmd, copy_image(*src, *dst, pinned, co)).manifest_digest;
  }
  std::cout << digest << "\n" << std::flush;
  if (key) sign_with(cmd, o, dst_name, digest, *key);
}

void run_inspect(const std::string& cmd, const Options& o) {
  auto name = must(cmd, parse_image_name(o.image));
  auto src = must(cmd, open_source(name, registry_options(o.common)));
  auto pinned = must(cmd, pin_image(*src));
  const RawManifest& top = pinned.top;
  if (o.raw) {
    std::cout << to_string(top.data) << "\n";
    return;
  }
  auto image = must(cmd, resolve_image(*src, pinned, platform_of(cmd, o.common)));
  auto config_bytes = must(cmd, read_blob(*src, image.manifest.config, kMaxConfigBytes));
  if (o.config) {
    std::cout << to_string(config_bytes) << "\n";
    return;
  }
  auto config = must(cmd, parse_image_config(config_bytes));
  Json layers = Json::array();
  for (const auto& l : image.manifest.layers) {
    Json recipients = Json::array();
    for (const auto& [k, v] : l.annotations) {
      if (k.starts_with("org.opencontainers.image.enc.keys.")) recipients.push_back(k.substr(34));
      if (k == crypt::kKeyProviderAnnotation) {
        for (std::size_t start = 0; start < v.size();) {
          auto end = std::min(v.find(',', start), v.size());
          auto packet = base64_decode(v.substr(start, end - start));
          if (packet) {
            if (auto j = parse_json(to_string(*packet)); j && j->is_object()) {
              recipients.push_back(j->value("kid", ""));
            }
          }
          start = end + 1;
        }
      }
    }
    layers.push_back({{"digest", l.digest},
                      {"size", l.size},
                      {"mediaType", l.media_type},
                      {"encrypted", crypt::is_encrypted(l)},
                      {"recipients", recipients}});
  }
  Json out{{"name", name.str()},
           {"digest", top.digest},
           {"mediaType", top.media_type},
           {"manifestDigest", image.manifest_raw.digest},
           {"platform", config.platform.str()},
           {"layers", layers},
           {"config", config.json.value("config", Json::object())}};
  std::cout << out.dump(2) << "\n";
}

void run_unpack(const std::string& cmd, const Options& o) {
  if (o.bundle.empty() == o.rootfs.empty()) {
    die(cmd, Error{"bad_argument", "give exactly one of --bundle DIR or --rootfs DIR"});
  }
  auto name = must(cmd, parse_image_name(o.image));
  auto src = must(cmd, open_source(name, registry_options(o.common)));
  unpack::UnpackOptions uo;
  uo.platform = platform_of(cmd, o.common);
  uo.bundle = !o.bundle.empty();
  uo.decrypt = decrypt_config(cmd, o);
  uo.tree.allow_devices = o.allow_devices;
  uo.tree.keep_privileges = o.keep_privileges;
  uo.max_layer_bytes = o.max_layer_size;
  uo.max_image_bytes = o.max_image_size;
  uo.tree.preserve_owner = ::geteuid() == 0;
  uo.progress = progress_printer(o);
  uo.require_encrypted_layers = o.require_encrypted;
  auto pinned = pin_and_check(cmd, o, name, *src);
  must(cmd, unpack::unpack_image(*src, pinned, uo.bundle ? o.bundle : o.rootfs, uo));
}

// The registry options every `image` command has; `platform`: also --platform (which image of
// an index to use; `build` names its platform with --os/--arch instead).
void add_common(CLI::App* c, Options& o, bool platform = true) {
  c->add_option("--authfile", o.common.authfile, "auth.json with registry credentials");
  c->add_option("--insecure-registry", o.common.insecure, "registry host:port spoken to over HTTP");
  c->add_option("--registry-ca-file", o.common.ca_file, "PEM CA bundle for registry TLS")
      ->check(readable_file());
  c->add_option("--tls-verify", o.common.tls_verify,
                "verify registry TLS certificates; false (as in skopeo) also allows a registry "
                "that speaks plain HTTP")
      ->default_val(true);
  if (platform) {
    c->add_option("--platform", o.common.platform, "os/arch[/variant] to pick from an index");
  }
  c->add_option("--spool-dir", o.common.spool_dir, "directory for temporary blob files");
  c->add_option("--chunk-size", o.common.chunk_size, "upload in chunks of this many bytes");
}

// Options of the commands that move layers: progress and the KBS connection.
void add_transfer(CLI::App* c, Options& o, bool admin) {
  c->add_flag("--quiet,-q", o.quiet, "print no progress");
  add_kbs_connection_options(c, o.kbs, admin, /*short_aliases=*/false);
}

void add_policy(CLI::App* c, Options& o, const std::string& what) {
  auto* policy = c->add_option("--policy", o.policy,
                               "check this policy.json before " + what +
                                   " (default: /etc/containers/policy.json, or the file "
                                   "COFFER_CONTAINERS_POLICY names, when it exists)");
  c->add_flag("--insecure-policy", o.insecure_policy,
              "no policy.json: accept any image without signature checks")
      ->excludes(policy);
  c->add_option("--lookaside", o.lookaside, "GPG signature lookaside directory");
}

constexpr const char* kRecipientNames = "--recipient,--encrypt,--kbs-key";
constexpr const char* kRecipientHelp =
    "recipient: jwe:PUBKEY.pem or kbs:///repo/type/tag (repeatable; one kbs:/// key)";

void add_kbs_key_in_out(CLI::App* c, Options& o) {
  c->add_option("--kbs-key-in", o.kbs_key_in,
                "encrypt with this existing 32-byte key for the kbs:/// recipient");
  c->add_option("--kbs-key-out", o.kbs_key_out, "write the (new) KBS key here (mode 0600)");
}

}  // namespace

void add_image_command(CLI::App& app) {
  auto* image = app.add_subcommand("image", "Confidential container images");
  image->require_subcommand(1);
  auto o = std::make_shared<Options>();

  auto* copy =
      image->add_subcommand("copy", "Copy an image, optionally encrypting/decrypting/signing");
  copy->add_option("src", o->src, "source (docker://REF or oci:DIR[:TAG])")->required();
  copy->add_option("dst", o->dst, "destination")->required();
  copy->add_option(kRecipientNames, o->recipients, kRecipientHelp);
  add_kbs_key_in_out(copy, *o);
  copy->add_option("--decryption-key,--decrypt", o->decrypt_keys,
                   "JWE private key (PEM) to decrypt layers (repeatable)");
  copy->add_option("--kbs-key-file", o->kbs_key_files,
                   "kbs:///repo/type/tag=FILE key to decrypt layers (repeatable)");
  copy->add_option("--sign-key", o->key, "cosign private key to sign the copy with");
  copy->add_option("--password-file", o->password_file, "cosign key password file");
  copy->add_flag("--all", o->all, "copy every platform of an index");
  add_policy(copy, *o, "copying");
  copy->add_flag("--require-encrypted", o->require_encrypted,
                 "refuse a source image with any plaintext layer");
  add_common(copy, *o);
  add_transfer(copy, *o, /*admin=*/true);
  add_kbs_attestation_options(copy, o->attest);
  auto* copy_tee = copy->get_option("--tee");
  copy->callback([o, copy_tee] {
    // Decrypting: JWE keys, kbs:/// key files, or --tee to fetch kbs:/// keys by attesting.
    bool decrypting =
        !o->decrypt_keys.empty() || !o->kbs_key_files.empty() || copy_tee->count() > 0;
    if (!o->recipients.empty() && !o->kbs_key_files.empty() && o->decrypt_keys.empty()) {
      die("copy", Error{"bad_argument",
                        "--kbs-key-file gives decryption keys (kbs:///...=FILE); to encrypt with "
                        "an existing key use --kbs-key-in FILE"});
    }
    if (!o->recipients.empty() && decrypting) {
      die("copy", Error{"bad_argument",
                        "--recipient (encrypt) and --decryption-key/--kbs-key-file/--tee "
                        "(decrypt) cannot be combined"});
    }
    if (!o->recipients.empty() && o->require_encrypted) {
      die("copy", Error{"bad_argument",
                        "--require-encrypted checks the source's layers; with --encrypt every "
                        "layer of the copy is encrypted anyway"});
    }
    CopyOptions co;
    if (!o->recipients.empty()) {
      co = crypt::encrypt_copy_options(encrypt_config("copy", *o));
    } else if (decrypting) {
      co = crypt::decrypt_copy_options(decrypt_config("copy", *o));
    } else if (!o->kbs_key_in.empty() || !o->kbs_key_out.empty()) {
      die("copy", Error{"bad_argument",
                        "--kbs-key-in/--kbs-key-out go with a --recipient kbs:///repo/type/tag"});
    }
    run_copy("copy", *o, std::move(co));
  });

  auto* enc = image->add_subcommand("encrypt", "Encrypt an image's layers (ocicrypt)");
  enc->add_option("src", o->src)->required();
  enc->add_option("dst", o->dst)->required();
  enc->add_option(kRecipientNames, o->recipients, kRecipientHelp)->required();
  add_kbs_key_in_out(enc, *o);
  add_common(enc, *o);
  add_transfer(enc, *o, /*admin=*/true);
  enc->callback(
      [o] { run_copy("encrypt", *o, crypt::encrypt_copy_options(encrypt_config("encrypt", *o))); });

  auto* dec = image->add_subcommand("decrypt", "Decrypt an image's layers");
  dec->add_option("src", o->src)->required();
  dec->add_option("dst", o->dst)->required();
  dec->add_option("--decryption-key,--key", o->decrypt_keys, "JWE private key (PEM, repeatable)");
  dec->add_option("--kbs-key-file", o->kbs_key_files, "kbs:///repo/type/tag=FILE (repeatable)");
  dec->add_flag("--require-encrypted", o->require_encrypted,
                "refuse an image with any plaintext layer");
  add_common(dec, *o);
  add_transfer(dec, *o, /*admin=*/false);
  add_kbs_attestation_options(dec, o->attest);
  dec->callback(
      [o] { run_copy("decrypt", *o, crypt::decrypt_copy_options(decrypt_config("decrypt", *o))); });

  auto* build = image->add_subcommand(
      "build", "Build a reproducible one-layer image from a directory or a tar, without Docker");
  build->add_option("dst", o->dst, "destination (oci:DIR[:TAG] or docker://REF)")->required();
  auto* from_dir = build->add_option("--from-dir", o->from_dir, "the root filesystem directory");
  build->add_option("--from-tar", o->from_tar, "the root filesystem as a tar (plain or gzip)")
      ->excludes(from_dir);
  build->add_option("--entrypoint", o->entrypoint,
                    "Entrypoint: a JSON array, or one word per --entrypoint");
  build->add_option("--cmd", o->cmd, "Cmd: a JSON array, or one word per --cmd");
  build->add_option("--env", o->env, "NAME=VALUE in Env (repeatable)");
  build->add_option("--workdir", o->workdir, "WorkingDir");
  build->add_option("--user", o->user, "User (name, uid or uid:gid)");
  build->add_option("--label", o->labels, "KEY=VALUE in Labels (repeatable)");
  build->add_option("--os", o->os, "the image's os")->capture_default_str();
  build->add_option("--arch", o->arch, "the image's architecture (GOARCH name)")
      ->capture_default_str();
  build->add_option(kRecipientNames, o->recipients, kRecipientHelp);
  add_kbs_key_in_out(build, *o);
  build->add_option("--sign-key", o->key, "cosign private key to sign the image with");
  build->add_option("--password-file", o->password_file, "cosign key password file");
  add_common(build, *o, /*platform=*/false);
  add_transfer(build, *o, /*admin=*/true);
  build->callback([o] {
    if (o->from_dir.empty() == o->from_tar.empty()) {
      die("build", Error{"bad_argument", "give the input with --from-dir DIR or --from-tar FILE"});
    }
    if (o->recipients.empty() && (!o->kbs_key_in.empty() || !o->kbs_key_out.empty())) {
      die("build", Error{"bad_argument",
                         "--kbs-key-in/--kbs-key-out go with a --recipient kbs:///repo/type/tag"});
    }
    run_build("build", *o);
  });

  auto* inspect = image->add_subcommand("inspect", "Show an image's manifest, layers and config");
  inspect->add_option("image", o->image)->required();
  inspect->add_flag("--raw", o->raw, "print the raw top-level manifest");
  inspect->add_flag("--config", o->config, "print the raw image config");
  add_common(inspect, *o);
  inspect->callback([o] { run_inspect("inspect", *o); });

  auto* unpack = image->add_subcommand("unpack", "Verify, decrypt and unpack an image");
  unpack->add_option("image", o->image)->required();
  unpack->add_option("--bundle", o->bundle, "write an OCI runtime bundle (rootfs/ + config.json)");
  unpack->add_option("--rootfs", o->rootfs, "write only the root filesystem");
  unpack->add_option("--decryption-key,--key", o->decrypt_keys,
                     "JWE private key (PEM, repeatable)");
  unpack->add_option("--kbs-key-file", o->kbs_key_files, "kbs:///repo/type/tag=FILE (repeatable)");
  add_policy(unpack, *o, "unpacking");
  unpack->add_flag("--allow-devices", o->allow_devices, "create device nodes (privileged)");
  unpack->add_flag("--keep-privileges,--keep-setuid", o->keep_privileges,
                   "keep setuid/setgid bits and file capabilities (security.capability)");
  unpack
      ->add_option("--max-layer-size", o->max_layer_size,
                   "refuse a layer larger than this uncompressed (sparse files at their "
                   "apparent size); default 32GiB")
      ->transform(CLI::AsSizeValue(false));
  unpack
      ->add_option("--max-image-size", o->max_image_size,
                   "refuse an image whose layers are larger than this uncompressed together; "
                   "default 64GiB")
      ->transform(CLI::AsSizeValue(false));
  unpack->add_flag("--require-encrypted", o->require_encrypted,
                   "refuse an image with any plaintext layer");
  add_common(unpack, *o);
  add_transfer(unpack, *o, /*admin=*/false);
  add_kbs_attestation_options(unpack, o->attest);
  unpack->callback([o] { run_unpack("unpack", *o); });

  auto* keygen =
      image->add_subcommand("keygen", "Generate a cosign key pair (PREFIX.key, PREFIX.pub)");
  keygen->add_option("--output-key-prefix", o->prefix, "file prefix")->default_val("cosign");
  keygen->add_option("--password-file", o->password_file,
                     "password file (else COSIGN_PASSWORD, else asked twice on the terminal)");
  keygen->callback([o] {
    auto pair = must(
        "keygen", sign::generate_cosign_key_pair(read_password("keygen", o->password_file, true)));
    must("keygen", write_file_atomic(o->prefix + ".key", as_bytes(pair.private_pem), 0600));
    must("keygen", write_file_atomic(o->prefix + ".pub", as_bytes(pair.public_pem), 0644));
    std::cerr << "wrote " << o->prefix << ".key and " << o->prefix << ".pub\n";
  });

  auto* signc = image->add_subcommand("sign", "Attach a cosign signature to an image");
  signc->add_option("image", o->image)->required();
  signc->add_option("--key,--sign-key", o->key, "cosign private key")->required();
  signc->add_option("--password-file", o->password_file,
                    "password file (else COSIGN_PASSWORD, else asked on the terminal)");
  signc->add_option("--identity", o->identity, "docker-reference to sign (default: the image)");
  add_common(signc, *o);
  signc->callback([o] {
    auto name = must("sign", parse_image_name(o->image));
    auto src = must("sign", open_source(name, registry_options(o->common)));
    auto pinned = must("sign", pin_image(*src));
    sign_with("sign", *o, name, pinned.digest());
  });

  auto* verify = image->add_subcommand("verify", "Check an image against a policy.json");
  verify->add_option("image", o->image)->required();
  verify->add_option("--policy", o->policy, "containers-policy.json")->required();
  verify->add_option("--lookaside", o->lookaside, "GPG signature lookaside directory");
  add_common(verify, *o);
  verify->callback([o] {
    auto name = must("verify", parse_image_name(o->image));
    auto policy = must("verify", sign::Policy::load(o->policy));
    auto src = must("verify", open_source(name, registry_options(o->common)));
    auto pinned = must("verify", pin_image(*src));
    must("verify",
         policy.evaluate(name, *src, pinned, sign::PolicyContext{.lookaside = o->lookaside}));
    std::cout << "accepted " << name.str() << " " << pinned.digest() << "\n";
  });
}

}  // namespace coffer::cli
