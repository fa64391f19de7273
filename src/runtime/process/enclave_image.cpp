#include "runtime/process/enclave_image.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "core/bytes.h"
#include "core/fd.h"
#include "core/file.h"
#include "crypto/digest.h"

extern char** environ;

namespace coffer::runtime::process {

namespace {

namespace fs = std::filesystem;

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

bool valid_component(std::string_view c) {
  if (c.empty() || c == "." || c == "..") return false;
  return std::ranges::all_of(c, [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '+' || ch == '-' || ch == '@';
  });
}

// "/a/b/c": absolute, no empty, "." or ".." components, a conservative character set.
bool valid_image_path(std::string_view p) {
  if (p.size() < 2 || p.size() > 1024 || p.front() != '/') return false;
  std::size_t start = 1;
  while (start <= p.size()) {
    const auto slash = p.find('/', start);
    const auto end = slash == std::string_view::npos ? p.size() : slash;
    if (!valid_component(p.substr(start, end - start))) return false;
    start = end + 1;
  }
  return true;
}

// The whole of `s` is a number in `base` (no sign, no prefix).
template <typename T>
bool parse_number(std::string_view s, T& out, int base) {
  const char* first = std::to_address(s.begin());
  const char* last = std::to_address(s.end());
  auto [ptr, ec] = std::from_chars(first, last, out, base);
  return ec == std::errc() && ptr == last;
}

Status bad_manifest(const std::string& why) {
  return make_error("bad_enclave_manifest", "the enclave manifest is not canonical: " + why);
}

// Opens `rel` (relative to dirfd) for reading, refusing symlinks anywhere on the way and any
// escape from dirfd.
Result<Fd> open_beneath(int dirfd, const std::string& rel) {
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  const int fd = static_cast<int>(::syscall(SYS_openat2, dirfd, rel.c_str(), &how, sizeof how));
  if (fd < 0) {
    if (errno == ENOENT) return make_error("enclave_image_missing_file", rel + " is missing");
    if (errno == ELOOP || errno == EXDEV) {
      return make_error("enclave_image_bad_file", rel + " is or passes through a symlink");
    }
    return make_error("io_error", errno_text("opening " + rel));
  }
  return Fd(fd);
}

Result<std::string> sha384_fd(int fd, std::uint64_t& size) {
  crypto::Hasher h(crypto::DigestAlg::kSha384);
  std::vector<std::uint8_t> buf(1 << 20);
  size = 0;
  if (::lseek(fd, 0, SEEK_SET) < 0) return make_error("io_error", errno_text("seek"));
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error("io_error", errno_text("read"));
    }
    if (n == 0) break;
    h.update(ByteView(buf.data(), static_cast<std::size_t>(n)));
    size += static_cast<std::uint64_t>(n);
  }
  return hex_encode(h.finish());
}

// Checks an open file against its entry: regular, mode, size, digest.
Status check_file(int fd, const ManifestEntry& e, std::string_view where) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return make_error("io_error", errno_text("stat " + e.path));
  if (!S_ISREG(st.st_mode)) {
    return make_error("enclave_image_bad_file",
                      e.path + " is not a regular file " + std::string(where));
  }
  const mode_t mode = st.st_mode & 07777;
  if (mode != e.mode) {
    std::ostringstream m;
    m << e.path << " has mode " << std::oct << mode << " " << where << ", the manifest says "
      << e.mode;
    return make_error("enclave_image_mode_mismatch", m.str());
  }
  if (static_cast<std::uint64_t>(st.st_size) != e.size) {
    return make_error("enclave_image_size_mismatch",
                      e.path + " has " + std::to_string(st.st_size) + " bytes " +
                          std::string(where) + ", the manifest says " + std::to_string(e.size));
  }
  std::uint64_t size = 0;
  auto digest = COFFER_TRY(sha384_fd(fd, size));
  if (size != e.size) {
    return make_error("enclave_image_size_mismatch", e.path + " changed while it was read");
  }
  if (digest != e.sha384) {
    return make_error("enclave_image_digest_mismatch",
                      e.path + " " + std::string(where) + " does not have the manifest's SHA-384");
  }
  return ok();
}

Result<std::string> read_manifest_text(const fs::path& image_dir) {
  auto text = read_text_file(image_dir / "manifest", kMaxManifestBytes);
  if (!text) {
    if (text.error().code == "not_found") {
      return make_error("enclave_image_missing_file",
                        (image_dir / "manifest").string() + " is missing (not an enclave image)");
    }
    return std::unexpected(text.error());
  }
  return text;
}

// `ldd FILE`: the libraries the host's loader maps for FILE, and the loader itself.
Result<std::vector<fs::path>> ldd(const fs::path& file) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return make_error("io_error", errno_text("pipe"));
  Fd rd(pipefd[0]);
  Fd wr(pipefd[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, wr.get(), 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  const std::string path = file.string();
  std::array<char*, 3> argv{const_cast<char*>("ldd"), const_cast<char*>(path.c_str()), nullptr};
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, "ldd", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return make_error("ldd_failed", "cannot run ldd: " + std::string(strerror(rc)));
  wr = Fd();
  std::string out;
  std::array<char, 4096> buf{};
  for (;;) {
    const ssize_t n = ::read(rd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf.data(), static_cast<std::size_t>(n));
    if (out.size() > (1 << 20)) break;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return make_error("ldd_failed", "ldd " + path + " failed (not a dynamic executable?)");
  }
  std::vector<fs::path> libs;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    // "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "\t/lib64/ld-linux... (0x...)"
    std::string_view l(line);
    const auto arrow = l.find("=> ");
    std::string_view p = arrow == std::string_view::npos ? l : l.substr(arrow + 3);
    while (!p.empty() && (p.front() == ' ' || p.front() == '\t')) p.remove_prefix(1);
    const auto paren = p.find(" (");
    if (paren != std::string_view::npos) p = p.substr(0, paren);
    if (p.empty() || p.front() != '/') {
      if (l.find("not found") != std::string_view::npos) {
        return make_error("ldd_failed", path + ": a library is not found: " + line);
      }
      continue;  // linux-vdso.so.1 and the like
    }
    libs.emplace_back(p);
  }
  return libs;
}

}  // namespace

Status strip_debug(const fs::path& from, const fs::path& to) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  const std::string f = from.string();
  const std::string t = to.string();
  std::array<char*, 5> argv{const_cast<char*>("objcopy"), const_cast<char*>("--strip-debug"),
                            const_cast<char*>(f.c_str()), const_cast<char*>(t.c_str()), nullptr};
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, "objcopy", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    return make_error("strip_failed",
                      "cannot run objcopy (binutils) to strip the agent's debug "
                      "sections: " +
                          std::string(strerror(rc)));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return make_error("strip_failed", "objcopy --strip-debug " + f + " failed");
  }
  return ok();
}

namespace {

Status mkdirs_at(int rootfd, const std::string& rel_dir) {
  std::size_t pos = 0;
  while (pos < rel_dir.size()) {
    const auto slash = rel_dir.find('/', pos);
    const auto end = slash == std::string::npos ? rel_dir.size() : slash;
    const std::string prefix = rel_dir.substr(0, end);
    if (::mkdirat(rootfd, prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return make_error("io_error", errno_text("creating " + prefix));
    }
    pos = end + 1;
  }
  return ok();
}

// Copies the open file `src` to rel (created exclusively under rootfd) with `mode`.
Status copy_to(int src, int rootfd, const std::string& rel, mode_t mode) {
  const auto slash = rel.rfind('/');
  if (slash != std::string::npos) COFFER_TRY_STATUS(mkdirs_at(rootfd, rel.substr(0, slash)));
  Fd dst(::openat(rootfd, rel.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (dst.get() < 0) return make_error("io_error", errno_text("creating " + rel));
  if (::lseek(src, 0, SEEK_SET) < 0) return make_error("io_error", errno_text("seek"));
  std::vector<std::uint8_t> buf(1 << 20);
  for (;;) {
    const ssize_t n = ::read(src, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error("io_error", errno_text("reading for " + rel));
    }
    if (n == 0) break;
    ssize_t off = 0;
    while (off < n) {
      const ssize_t w = ::write(dst.get(), buf.data() + off, static_cast<std::size_t>(n - off));
      if (w < 0) {
        if (errno == EINTR) continue;
        return make_error("io_error", errno_text("writing " + rel));
      }
      off += w;
    }
  }
  if (::fchmod(dst.get(), mode) != 0) return make_error("io_error", errno_text("chmod " + rel));
  return ok();
}

// Runs `fn` on every entry, on two threads (hashing ~90 MB is most of a launch); the error of
// the first failing entry in manifest order, so that errors do not depend on scheduling.
Status for_each_entry(const EnclaveManifest& m,
                      const std::function<Status(const ManifestEntry&)>& fn) {
  std::vector<Status> results(m.entries.size());
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t i = next++; i < m.entries.size(); i = next++) {
      try {
        results[i] = fn(m.entries[i]);
      } catch (const std::exception& ex) {
        results[i] = make_error("io_error", m.entries[i].path + ": " + ex.what());
      }
    }
  };
  {
    std::jthread helper(work);
    work();
  }
  for (auto& r : results) {
    if (!r) return r;
  }
  return ok();
}

// Reads the open image file `src` once: checks it is regular with the entry's mode and size,
// copies its bytes into a new memfd while hashing them, compares the digest and seals the memfd.
Result<Fd> stage_file(int src, const ManifestEntry& e, Bytes& digest) {
  struct stat st {};
  if (::fstat(src, &st) != 0) return make_error("io_error", errno_text("stat " + e.path));
  if (!S_ISREG(st.st_mode)) {
    return make_error("enclave_image_bad_file", e.path + " is not a regular file in the image");
  }
  const mode_t mode = st.st_mode & 07777;
  if (mode != e.mode) {
    std::ostringstream m;
    m << e.path << " has mode " << std::oct << mode << " in the image, the manifest says "
      << e.mode;
    return make_error("enclave_image_mode_mismatch", m.str());
  }
  if (static_cast<std::uint64_t>(st.st_size) != e.size) {
    return make_error("enclave_image_size_mismatch", e.path + " has " + std::to_string(st.st_size) +
                                                         " bytes in the image, the manifest says " +
                                                         std::to_string(e.size));
  }
  Fd mem(::memfd_create("coffer-enclave-file", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (mem.get() < 0) return make_error("io_error", errno_text("memfd for " + e.path));
  crypto::Hasher h(crypto::DigestAlg::kSha384);
  std::vector<std::uint8_t> buf(1 << 20);
  std::uint64_t size = 0;
  for (;;) {
    const ssize_t n = ::read(src, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error("io_error", errno_text("reading " + e.path));
    }
    if (n == 0) break;
    h.update(ByteView(buf.data(), static_cast<std::size_t>(n)));
    size += static_cast<std::uint64_t>(n);
    if (size > e.size) break;  // growing while read: refused below
    ssize_t off = 0;
    while (off < n) {
      const ssize_t w = ::write(mem.get(), buf.data() + off, static_cast<std::size_t>(n - off));
      if (w < 0) {
        if (errno == EINTR) continue;
        return make_error("io_error", errno_text("staging " + e.path));
      }
      off += w;
    }
  }
  if (size != e.size) {
    return make_error("enclave_image_size_mismatch", e.path + " changed while it was read");
  }
  digest = h.finish();
  if (hex_encode(digest) != e.sha384) {
    return make_error("enclave_image_digest_mismatch",
                      e.path + " in the image does not have the manifest's SHA-384");
  }
  // From here the memfd's bytes are the checked bytes, for good.
  if (::fcntl(mem.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) !=
      0) {
    return make_error("io_error", errno_text("sealing " + e.path));
  }
  return mem;
}

// Copies the sealed memfd `mem` (size bytes) to rel, created exclusively under rootfd, with mode.
Status copy_sealed(int mem, std::uint64_t size, int rootfd, const std::string& rel, mode_t mode) {
  const auto slash = rel.rfind('/');
  if (slash != std::string::npos) COFFER_TRY_STATUS(mkdirs_at(rootfd, rel.substr(0, slash)));
  Fd dst(::openat(rootfd, rel.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (dst.get() < 0) return make_error("io_error", errno_text("creating " + rel));
  off_t off = 0;
  while (static_cast<std::uint64_t>(off) < size) {
    const ssize_t n = ::sendfile(dst.get(), mem, &off, static_cast<std::size_t>(size) - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error("io_error", errno_text("writing " + rel));
    }
    if (n == 0) return make_error("io_error", "writing " + rel + ": short copy");
  }
  if (::fchmod(dst.get(), mode) != 0) return make_error("io_error", errno_text("chmod " + rel));
  return ok();
}

// Every file under rootfs is a manifest entry (an extra file, e.g. a preloaded library or a config
// the loader reads, would change what runs without changing the measurement).
Status check_no_extra_files(const fs::path& rootfs, const EnclaveManifest& m) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(rootfs, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const auto status = it->symlink_status(ec);
    if (ec) break;
    if (fs::is_directory(status)) continue;
    const std::string path = "/" + it->path().lexically_relative(rootfs).generic_string();
    if (!fs::is_regular_file(status) || m.find(path) == nullptr) {
      return make_error("enclave_image_extra_file",
                        path + " is in the image but not in its manifest");
    }
  }
  if (ec) return make_error("io_error", "listing " + rootfs.string() + ": " + ec.message());
  return ok();
}

}  // namespace

std::string EnclaveManifest::text() const {
  std::ostringstream out;
  out << kManifestHeader << "\n"
      << "agent " << agent << "\n";
  for (const auto& e : entries) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(e.mode));
    out << "file " << mode << " " << e.size << " " << e.sha384 << " " << e.path << "\n";
  }
  return out.str();
}

const ManifestEntry* EnclaveManifest::find(std::string_view path) const {
  auto it = std::ranges::lower_bound(entries, path, {}, &ManifestEntry::path);
  return it != entries.end() && it->path == path ? &*it : nullptr;
}

Result<EnclaveManifest> parse_manifest(std::string_view text) {
  if (text.size() > kMaxManifestBytes) COFFER_TRY_STATUS(bad_manifest("larger than 1 MiB"));
  if (text.empty() || text.back() != '\n') COFFER_TRY_STATUS(bad_manifest("no final newline"));
  std::vector<std::string_view> lines;
  for (std::size_t s = 0; s < text.size();) {
    const auto nl = text.find('\n', s);
    lines.push_back(text.substr(s, nl - s));
    s = nl + 1;
  }
  if (lines.size() < 2 || lines[0] != kManifestHeader) {
    COFFER_TRY_STATUS(
        bad_manifest("the first line is not \"" + std::string(kManifestHeader) + "\""));
  }
  EnclaveManifest m;
  if (!lines[1].starts_with("agent ") || !valid_image_path(lines[1].substr(6))) {
    COFFER_TRY_STATUS(bad_manifest("the second line is not \"agent <path>\""));
  }
  m.agent = std::string(lines[1].substr(6));
  if (lines.size() - 2 > kMaxManifestEntries) COFFER_TRY_STATUS(bad_manifest("too many entries"));
  for (std::size_t i = 2; i < lines.size(); ++i) {
    const std::string where = "line " + std::to_string(i + 1);
    std::vector<std::string_view> f;
    std::string_view l = lines[i];
    for (std::size_t s = 0; s <= l.size();) {
      const auto sp = l.find(' ', s);
      const auto end = sp == std::string_view::npos ? l.size() : sp;
      f.push_back(l.substr(s, end - s));
      s = end + 1;
    }
    if (f.size() != 5 || f[0] != "file")
      COFFER_TRY_STATUS(bad_manifest(where + ": not a file line"));
    ManifestEntry e;
    unsigned mode = 0;
    if (f[1].size() != 4 || f[1][0] != '0' || !parse_number(f[1], mode, 8)) {
      COFFER_TRY_STATUS(bad_manifest(where + ": the mode is not 4 octal digits without set-id"));
    }
    e.mode = static_cast<mode_t>(mode);
    if (f[2].empty() || (f[2].size() > 1 && f[2][0] == '0') || !parse_number(f[2], e.size, 10)) {
      COFFER_TRY_STATUS(bad_manifest(where + ": the size is not a canonical decimal"));
    }
    if (f[3].size() != 96 || !std::ranges::all_of(f[3], [](char c) {
          return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
        })) {
      COFFER_TRY_STATUS(bad_manifest(where + ": the digest is not 96 lowercase hex digits"));
    }
    e.sha384 = std::string(f[3]);
    if (!valid_image_path(f[4])) COFFER_TRY_STATUS(bad_manifest(where + ": bad path"));
    e.path = std::string(f[4]);
    if (!m.entries.empty() && m.entries.back().path >= e.path) {
      COFFER_TRY_STATUS(bad_manifest(where + ": paths are not sorted and unique"));
    }
    // A path that is also a directory of another entry cannot be both.
    if (!m.entries.empty() && e.path.starts_with(m.entries.back().path + "/")) {
      COFFER_TRY_STATUS(bad_manifest(where + ": " + m.entries.back().path + " is a file"));
    }
    m.entries.push_back(std::move(e));
  }
  if (m.find(m.agent) == nullptr) COFFER_TRY_STATUS(bad_manifest("the agent is not an entry"));
  return m;
}

Result<std::vector<fs::path>> host_libraries(const fs::path& file) { return ldd(file); }

Result<EnclaveManifest> build_enclave_image(const EnclaveImageOptions& options,
                                            const fs::path& out_dir) {
  std::error_code ec;
  if (fs::exists(out_dir, ec) && !fs::is_empty(out_dir, ec)) {
    return make_error("already_exists", out_dir.string() + " exists and is not empty");
  }
  // image path -> host file
  std::map<std::string, fs::path> files;
  auto add_with_libs = [&](const fs::path& host, std::string image_path) -> Status {
    if (!fs::is_regular_file(host, ec)) {
      return make_error("not_found", host.string() + " is not a regular file");
    }
    files[std::move(image_path)] = host;
    const auto libs = COFFER_TRY(ldd(host));
    for (const auto& lib : libs) files[lib.lexically_normal().string()] = lib;
    return ok();
  };
  COFFER_TRY_STATUS(add_with_libs(options.agent, std::string(kImageAgentPath)));
  // No crun (empty): an image whose entry runs no containers itself (the app enclave's boot).
  if (!options.crun.empty()) {
    COFFER_TRY_STATUS(add_with_libs(options.crun, std::string(kImageCrunPath)));
  }
  fs::create_directories(out_dir, ec);
  if (ec) return make_error("io_error", "creating " + out_dir.string() + ": " + ec.message());
  // The stripped agent, next to rootfs while it is copied in (removed after).
  const fs::path stripped = out_dir / ".agent.stripped";
  struct RemoveStripped {
    fs::path path;
    ~RemoveStripped() {
      std::error_code ignored;
      fs::remove(path, ignored);
    }
  } remove_stripped{stripped};
  if (options.strip_debug) {
    COFFER_TRY_STATUS(strip_debug(options.agent, stripped));
    files[std::string(kImageAgentPath)] = stripped;
  }
  for (const auto& extra : options.extra_files) {
    if (!extra.is_absolute()) return make_error("usage", extra.string() + " is not absolute");
    files[extra.lexically_normal().string()] = extra;
  }

  fs::create_directories(out_dir / "rootfs", ec);
  if (ec) return make_error("io_error", "creating " + out_dir.string() + ": " + ec.message());
  Fd root(::open((out_dir / "rootfs").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (root.get() < 0) return make_error("io_error", errno_text("opening the image rootfs"));

  EnclaveManifest m;
  m.agent = std::string(kImageAgentPath);
  for (const auto& [image_path, host] : files) {
    if (!valid_image_path(image_path)) {
      return make_error("usage", image_path + " cannot be named by the manifest");
    }
    // The host's libraries are often symlinks (libfoo.so.1 -> libfoo.so.1.2.3): the image holds
    // the target's bytes at the name the loader looks up.
    Fd src(::open(host.c_str(), O_RDONLY | O_CLOEXEC));
    if (src.get() < 0) return make_error("not_found", errno_text("opening " + host.string()));
    struct stat st {};
    if (::fstat(src.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return make_error("not_found", host.string() + " is not a regular file");
    }
    // Normalised modes: executable or not, never writable by others, no set-id.
    const mode_t mode = (st.st_mode & 0111) != 0 ? 0755 : 0644;
    const std::string rel = image_path.substr(1);
    COFFER_TRY_STATUS(copy_to(src.get(), root.get(), rel, mode));
    Fd copy = COFFER_TRY(open_beneath(root.get(), rel));
    ManifestEntry e{.path = image_path, .mode = mode};
    e.sha384 = COFFER_TRY(sha384_fd(copy.get(), e.size));
    m.entries.push_back(std::move(e));
  }
  std::ranges::sort(m.entries, {}, &ManifestEntry::path);
  COFFER_TRY_STATUS(write_file_atomic(out_dir / "manifest", as_bytes(m.text()), 0644));
  return m;
}

Result<EnclaveManifest> verify_enclave_image(const fs::path& image_dir) {
  const std::string text = COFFER_TRY(read_manifest_text(image_dir));
  auto m = COFFER_TRY(parse_manifest(text));
  const fs::path rootfs = image_dir / "rootfs";
  Fd root(::open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  if (root.get() < 0) {
    return make_error("enclave_image_missing_file", rootfs.string() + " is missing");
  }
  const Status all = for_each_entry(m, [&](const ManifestEntry& e) -> Status {
    Fd fd = COFFER_TRY(open_beneath(root.get(), e.path.substr(1)));
    return check_file(fd.get(), e, "in the image");
  });
  COFFER_TRY_STATUS(all);
  COFFER_TRY_STATUS(check_no_extra_files(rootfs, m));
  return m;
}

Result<EnclaveManifest> install_enclave_image(const fs::path& image_dir, const fs::path& root) {
  const std::string text = COFFER_TRY(read_manifest_text(image_dir));
  auto m = COFFER_TRY(parse_manifest(text));
  Fd src_root(
      ::open((image_dir / "rootfs").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  if (src_root.get() < 0) {
    return make_error("enclave_image_missing_file",
                      (image_dir / "rootfs").string() + " is missing");
  }
  Fd dst_root(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (dst_root.get() < 0) return make_error("io_error", errno_text("opening " + root.string()));
  const Status all = for_each_entry(m, [&](const ManifestEntry& e) -> Status {
    const std::string rel = e.path.substr(1);
    Fd src = COFFER_TRY(open_beneath(src_root.get(), rel));
    struct stat st {};
    if (::fstat(src.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return make_error("enclave_image_bad_file", e.path + " is not a regular file");
    }
    if ((st.st_mode & 07777) != e.mode) {
      return make_error("enclave_image_mode_mismatch", e.path + " does not have its manifest mode");
    }
    COFFER_TRY_STATUS(copy_to(src.get(), dst_root.get(), rel, e.mode));
    // What counts is the copy: it is what the enclave maps.
    Fd copy = COFFER_TRY(open_beneath(dst_root.get(), rel));
    return check_file(copy.get(), e, "in the enclave root");
  });
  COFFER_TRY_STATUS(all);
  const std::string manifest_rel = std::string(kInstalledManifestPath).substr(1);
  COFFER_TRY_STATUS(mkdirs_at(dst_root.get(), "etc/coffer"));
  Fd out(::openat(dst_root.get(), manifest_rel.c_str(),
                  O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444));
  if (out.get() < 0) return make_error("io_error", errno_text("writing the installed manifest"));
  if (::write(out.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return make_error("io_error", errno_text("writing the installed manifest"));
  }
  return m;
}

Result<StagedImage> stage_enclave_image(const fs::path& image_dir) {
  StagedImage staged;
  staged.manifest_text = COFFER_TRY(read_manifest_text(image_dir));
  staged.manifest = COFFER_TRY(parse_manifest(staged.manifest_text));
  const EnclaveManifest& m = staged.manifest;
  const fs::path rootfs = image_dir / "rootfs";
  Fd root(::open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  if (root.get() < 0) {
    return make_error("enclave_image_missing_file", rootfs.string() + " is missing");
  }
  std::vector<Fd> mems(m.entries.size());
  std::vector<Bytes> digests(m.entries.size());
  const Status all = for_each_entry(m, [&](const ManifestEntry& e) -> Status {
    const auto i = static_cast<std::size_t>(&e - m.entries.data());
    Fd src = COFFER_TRY(open_beneath(root.get(), e.path.substr(1)));
    mems[i] = COFFER_TRY(stage_file(src.get(), e, digests[i]));
    return ok();
  });
  COFFER_TRY_STATUS(all);
  COFFER_TRY_STATUS(check_no_extra_files(rootfs, m));
  for (std::size_t i = 0; i < mems.size(); ++i) {
    if (m.entries[i].path == m.agent) staged.agent_sha384 = digests[i];
    staged.memfds.push_back(std::move(mems[i]));
  }
  return staged;
}

Result<EnclaveManifest> install_staged_image(const StagedImage& staged, const fs::path& root) {
  const EnclaveManifest& m = staged.manifest;
  if (staged.memfds.size() != m.entries.size()) {
    return make_error("io_error", "the staged image is incomplete");
  }
  Fd dst_root(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (dst_root.get() < 0) return make_error("io_error", errno_text("opening " + root.string()));
  const Status all = for_each_entry(m, [&](const ManifestEntry& e) -> Status {
    const auto i = static_cast<std::size_t>(&e - m.entries.data());
    return copy_sealed(staged.memfds[i].get(), e.size, dst_root.get(), e.path.substr(1), e.mode);
  });
  COFFER_TRY_STATUS(all);
  const std::string manifest_rel = std::string(kInstalledManifestPath).substr(1);
  COFFER_TRY_STATUS(mkdirs_at(dst_root.get(), "etc/coffer"));
  Fd out(::openat(dst_root.get(), manifest_rel.c_str(),
                  O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444));
  if (out.get() < 0) return make_error("io_error", errno_text("writing the installed manifest"));
  const std::string& text = staged.manifest_text;
  if (::write(out.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return make_error("io_error", errno_text("writing the installed manifest"));
  }
  return m;
}

evidence::sim::EnclaveComponents enclave_components(const fs::path& image_dir,
                                                    const EnclaveManifest& manifest,
                                                    std::optional<std::string> init_data) {
  evidence::sim::EnclaveComponents c;
  c.kind = evidence::sim::EnclaveKind::kProcess;
  c.agent = image_dir / "rootfs" / manifest.agent.substr(1);
  c.rootfs_manifest = image_dir / "manifest";
  c.init_data = std::move(init_data);
  return c;
}

Result<evidence::sim::SgxIdentity> sign_enclave_image(const fs::path& image_dir,
                                                      const crypto::Key& signer,
                                                      const EnclaveSignOptions& options) {
  auto manifest = COFFER_TRY(verify_enclave_image(image_dir));
  auto measured =
      COFFER_TRY(evidence::sim::measure_enclave(enclave_components(image_dir, manifest, {})));
  evidence::sim::SgxSigstruct s;
  s.mr_enclave = measured.mr_enclave;
  s.isv_prod_id = options.isv_prod_id;
  s.isv_svn = options.isv_svn;
  if (options.debug) s.flags |= evidence::sim::kSgxFlagsDebug;
  const std::string text = COFFER_TRY(evidence::sim::sign_sigstruct(s, signer));
  COFFER_TRY_STATUS(write_file_atomic(image_dir / kEnclaveSignatureFile, as_bytes(text), 0644));
  return evidence::sim::verify_sigstruct(text, measured.mr_enclave);
}

Result<evidence::sim::SgxIdentity> read_enclave_signature(
    const fs::path& image_dir, const evidence::Fixed<32>& measured_mr_enclave) {
  const fs::path path = image_dir / kEnclaveSignatureFile;
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(path, ec))) {
    return make_error("enclave_not_signed", image_dir.string() +
                                                " is not signed (coffer enclave sign --key K " +
                                                image_dir.string() + ")");
  }
  auto text = read_text_file(path, evidence::sim::kMaxSigstructBytes);
  if (!text) {
    return make_error("enclave_signature_invalid",
                      "cannot read " + path.string() + ": " + text.error().message);
  }
  return evidence::sim::verify_sigstruct(*text, measured_mr_enclave);
}

}  // namespace coffer::runtime::process
