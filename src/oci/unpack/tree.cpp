#include "oci/unpack/tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/limits.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "core/bytes.h"
#include "core/fd.h"

namespace coffer::oci::unpack {
namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueWhiteout = ".wh..wh..opq";

std::unexpected<Error> sys_error(const std::string& what) {
  return make_error("io_error", what + ": " + std::strerror(errno));
}

// glibc 2.36 has no openat2() wrapper.
int openat2_in_root(int root, const std::string& path, std::uint64_t flags, mode_t mode = 0) {
  open_how how{};
  how.flags = flags | O_CLOEXEC;
  how.mode = mode;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  for (;;) {
    long fd = ::syscall(SYS_openat2, root, path.empty() ? "." : path.c_str(), &how, sizeof how);
    if (fd >= 0 || errno != EAGAIN) return static_cast<int>(fd);
  }
}

std::pair<std::string, std::string> split_parent(const std::string& rel) {
  auto slash = rel.rfind('/');
  if (slash == std::string::npos) return {"", rel};
  return {rel.substr(0, slash), rel.substr(slash + 1)};
}

// One path component naming an entry of its directory (never the directory or its parent).
bool is_entry_name(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos;
}

// Opens entry `name` of directory `dirfd` without following a symlink or leaving `dirfd`.
int open_child(int dirfd, const std::string& name, std::uint64_t flags) {
  open_how how{};
  how.flags = flags | O_NOFOLLOW | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  for (;;) {
    long fd = ::syscall(SYS_openat2, dirfd, name.c_str(), &how, sizeof how);
    if (fd >= 0 || errno != EAGAIN) return static_cast<int>(fd);
  }
}

// chmod of entry `name` of `dirfd` itself, never a symlink's target: the inode is pinned by an
// O_PATH descriptor and changed through its /proc link (fchmod refuses O_PATH descriptors).
Status chmod_child(int dirfd, const std::string& name, mode_t mode) {
  Fd node(open_child(dirfd, name, O_PATH));
  if (!node.valid()) return sys_error("opening " + name);
  struct stat st {};
  if (::fstat(node.get(), &st) != 0) return sys_error("stat " + name);
  if (S_ISLNK(st.st_mode)) return ok();  // symlinks have no mode of their own
  std::string proc = "/proc/self/fd/" + std::to_string(node.get());
  if (::chmod(proc.c_str(), mode) != 0) return sys_error("chmod " + name);
  return ok();
}

std::unexpected<Error> not_an_entry_name(const std::string& name) {
  return make_error("unsafe_path",
                    "'" + printable_excerpt(name, 64) +
                        "' does not name an entry of its directory; the layer is refused");
}

// How deep a whiteout may remove: each level holds a descriptor and a stack frame, and a layer
// can build a tree deeper than any real image (symlinked parents make depth unbounded).
constexpr std::size_t kMaxRemovalDepth = 256;

// Removes entry `name` of `dirfd` (a directory with all its contents). Nothing is resolved
// through a symlink: `name` is one component and every descent opens with RESOLVE_BENEATH and
// no symlinks.
Status remove_tree_at(int dirfd, const std::string& name, std::size_t depth = 0) {
  if (!is_entry_name(name)) return not_an_entry_name(name);
  if (depth > kMaxRemovalDepth) {
    return make_error("tree_too_deep", "a whiteout would remove a tree more than " +
                                           std::to_string(kMaxRemovalDepth) +
                                           " levels deep; the layer is refused");
  }
  struct stat st {};
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return ok();
    return sys_error("stat " + name);
  }
  if (S_ISDIR(st.st_mode)) {
    Fd d(open_child(dirfd, name, O_RDONLY | O_DIRECTORY));
    if (!d.valid() && errno == EACCES) {  // a directory without read permission
      COFFER_TRY_STATUS(chmod_child(dirfd, name, 0700));
      d = Fd(open_child(dirfd, name, O_RDONLY | O_DIRECTORY));
    }
    if (!d.valid()) return sys_error("opening " + name + " for removal");
    ::fchmod(d.get(), 0700);
    DIR* dir = ::fdopendir(::dup(d.get()));
    if (dir == nullptr) return sys_error("listing " + name);
    std::vector<std::string> children;
    while (dirent* e = ::readdir(dir)) {
      std::string_view n = e->d_name;
      if (n != "." && n != "..") children.emplace_back(n);
    }
    ::closedir(dir);
    for (const auto& c : children) COFFER_TRY_STATUS(remove_tree_at(d.get(), c, depth + 1));
    if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0) return sys_error("removing " + name);
    return ok();
  }
  if (::unlinkat(dirfd, name.c_str(), 0) != 0) return sys_error("removing " + name);
  return ok();
}

// A parent that is not a directory, or a symlink whose in-root target is missing: the entry
// cannot be placed without guessing, so the layer is refused.
std::unexpected<Error> unresolvable(const std::string& parent) {
  return make_error("unsafe_path", "'" + parent +
                                       "' is not a directory inside the image root "
                                       "(a file or a symlink to a missing or outside directory); "
                                       "the layer is refused");
}

// Which extended attributes a layer may set. File capabilities grant privileges like setuid
// does; trusted.* and the other security.* attributes (LSM labels, IMA/EVM) and system.* are
// the host's business, never an image's.
bool xattr_allowed(std::string_view name, const TreeOptions& o) {
  if (name.starts_with("user.")) return true;
  if (name == "security.capability") return o.keep_privileges;
  return false;
}

std::uint32_t effective_mode(std::uint32_t mode, const TreeOptions& o) {
  mode &= 07777;
  if (!o.keep_privileges) mode &= ~static_cast<std::uint32_t>(S_ISUID | S_ISGID);
  return mode;
}

// Writes each block at its offset; the gaps between them stay holes.
Status write_data(int fd, const std::string& rel, std::uint64_t size, FileData& content) {
  std::uint64_t end = 0;
  while (auto block = COFFER_TRY(content.next())) {
    const auto& [offset, bytes] = *block;
    if (offset < end || offset > size || bytes.size() > size - offset) {
      return make_error("corrupt_layer", "data of " + printable_excerpt(rel, 200) +
                                             " lies outside its declared size or out of order");
    }
    const std::uint8_t* p = bytes.data();
    std::size_t left = bytes.size();
    auto at = static_cast<off_t>(offset);
    while (left > 0) {
      ssize_t n = ::pwrite(fd, p, left, at);
      if (n < 0) {
        if (errno == EINTR) continue;
        return sys_error("writing " + rel);
      }
      p += n;
      at += n;
      left -= static_cast<std::size_t>(n);
    }
    end = offset + bytes.size();
  }
  return ok();
}

}  // namespace

Result<std::string> clean_path(std::string_view tar_path) {
  std::string out;
  std::size_t i = 0;
  if (tar_path.size() > PATH_MAX - 1) {
    return make_error("path_too_long",
                      "tar entry path exceeds " + std::to_string(PATH_MAX) + " bytes");
  }
  while (i <= tar_path.size()) {
    auto end = tar_path.find('/', i);
    if (end == std::string_view::npos) end = tar_path.size();
    auto comp = tar_path.substr(i, end - i);
    i = end + 1;
    if (comp.empty() || comp == ".") continue;
    if (comp == "..") {
      return make_error("unsafe_path", "tar entry '" + std::string(tar_path.substr(0, 200)) +
                                           "' climbs out with '..'; the layer is refused");
    }
    if (comp.size() > NAME_MAX) {
      return make_error("path_too_long", "a component of tar entry '" +
                                             std::string(tar_path.substr(0, 200)) +
                                             "' exceeds 255 bytes");
    }
    if (!out.empty()) out.push_back('/');
    out.append(comp);
  }
  return out;
}

Result<RootTree> RootTree::open(const std::filesystem::path& root, TreeOptions options) {
  int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return sys_error("opening unpack root " + root.string());
  // Probe openat2 once so that an old kernel fails clearly.
  int probe = openat2_in_root(fd, ".", O_PATH | O_DIRECTORY);
  if (probe < 0) {
    ::close(fd);
    return make_error("unsupported_kernel",
                      "openat2(RESOLVE_IN_ROOT) is unavailable (Linux >= 5.6 "
                      "needed): " +
                          std::string(std::strerror(errno)));
  }
  ::close(probe);
  return RootTree(fd, options);
}

RootTree::RootTree(RootTree&& o) noexcept
    : root_fd_(std::exchange(o.root_fd_, -1)),
      options_(o.options_),
      this_layer_(std::move(o.this_layer_)),
      dirs_(std::move(o.dirs_)) {}

RootTree& RootTree::operator=(RootTree&& o) noexcept {
  if (this != &o) {
    if (root_fd_ >= 0) ::close(root_fd_);
    root_fd_ = std::exchange(o.root_fd_, -1);
    options_ = o.options_;
    this_layer_ = std::move(o.this_layer_);
    dirs_ = std::move(o.dirs_);
  }
  return *this;
}

RootTree::~RootTree() {
  if (root_fd_ >= 0) ::close(root_fd_);
}

void RootTree::begin_layer() { this_layer_.clear(); }

Result<int> RootTree::open_parent(const std::string& rel, bool create) {
  auto parent = split_parent(rel).first;
  int fd = openat2_in_root(root_fd_, parent, O_PATH | O_DIRECTORY);
  if (fd >= 0) return fd;
  if (errno != ENOENT || !create) return sys_error("resolving " + parent);
  // Create missing ancestors one by one, each resolved inside the root.
  std::string prefix;
  std::size_t i = 0;
  while (i <= parent.size()) {
    auto end = parent.find('/', i);
    if (end == std::string::npos) end = parent.size();
    std::string comp = parent.substr(i, end - i);
    i = end + 1;
    Fd at(openat2_in_root(root_fd_, prefix, O_PATH | O_DIRECTORY));
    if (!at.valid()) return unresolvable(prefix);
    if (::mkdirat(at.get(), comp.c_str(), 0755) != 0 && errno != EEXIST) {
      if (errno == ENOTDIR) return unresolvable(prefix);
      return sys_error("creating directory " + prefix + "/" + comp);
    }
    prefix += (prefix.empty() ? "" : "/") + comp;
  }
  fd = openat2_in_root(root_fd_, parent, O_PATH | O_DIRECTORY);
  if (fd < 0) return unresolvable(parent);
  return fd;
}

Status RootTree::apply_metadata(int fd, const std::string& rel, const TreeEntry& e, bool dir) {
  if (options_.preserve_owner &&
      ::fchown(fd, static_cast<uid_t>(e.uid), static_cast<gid_t>(e.gid)) != 0) {
    return sys_error("chown " + rel);
  }
  if (options_.apply_xattrs) {
    for (const auto& [name, value] : e.xattrs) {
      if (!xattr_allowed(name, options_)) {
        spdlog::debug("not applying xattr {} on {}", printable_excerpt(name, 64), rel);
        continue;
      }
      if (::fsetxattr(fd, name.c_str(), value.data(), value.size(), 0) != 0) {
        // Unprivileged unpacks cannot set security.capability: keep going, say so.
        spdlog::warn("cannot set xattr {} on {}: {}", printable_excerpt(name, 64), rel,
                     std::strerror(errno));
      }
    }
  }
  if (!dir) {
    if (::fchmod(fd, effective_mode(e.mode, options_)) != 0) return sys_error("chmod " + rel);
    timespec ts[2] = {{e.mtime, e.mtime_nsec}, {e.mtime, e.mtime_nsec}};
    if (::futimens(fd, ts) != 0) return sys_error("setting times of " + rel);
  }
  return ok();
}

Status RootTree::apply(const TreeEntry& e, FileData* content) {
  std::string rel = COFFER_TRY(clean_path(e.path));
  if (rel.empty()) {  // the root itself
    if (e.type == EntryType::kDir) dirs_[""] = DirMeta{e.mode, e.mtime, e.mtime_nsec};
    return ok();
  }
  auto [parent, base] = split_parent(rel);
  if (base.starts_with(kWhiteoutPrefix)) {
    std::string hidden = base.substr(kWhiteoutPrefix.size());
    if (base != kOpaqueWhiteout && !is_entry_name(hidden)) {
      return make_error("unsafe_path", "whiteout '" + printable_excerpt(rel, 200) +
                                           "' names no entry (empty, '.' or '..'); the layer "
                                           "is refused");
    }
    Fd dir(openat2_in_root(root_fd_, parent, O_RDONLY | O_DIRECTORY));
    if (!dir.valid()) return ok();  // nothing below to hide
    if (base == kOpaqueWhiteout) {
      DIR* d = ::fdopendir(::dup(dir.get()));
      if (d == nullptr) return sys_error("listing " + parent);
      std::vector<std::string> children;
      while (dirent* de = ::readdir(d)) {
        std::string n = de->d_name;
        if (n == "." || n == "..") continue;
        if (!this_layer_.contains(parent.empty() ? n : parent + "/" + n)) children.push_back(n);
      }
      ::closedir(d);
      for (const auto& c : children) COFFER_TRY_STATUS(remove_tree_at(dir.get(), c));
    } else {
      COFFER_TRY_STATUS(remove_tree_at(dir.get(), hidden));
    }
    return ok();
  }

  Fd at(COFFER_TRY(open_parent(rel, true)));
  struct stat st {};
  bool exists = ::fstatat(at.get(), base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (exists && !(e.type == EntryType::kDir && S_ISDIR(st.st_mode))) {
    COFFER_TRY_STATUS(remove_tree_at(at.get(), base));
    exists = false;
  }
  this_layer_.insert(rel);
  switch (e.type) {
    case EntryType::kFile: {
      Fd f(::openat(at.get(), base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    0600));
      if (!f.valid()) return sys_error("creating " + rel);
      if (content != nullptr) COFFER_TRY_STATUS(write_data(f.get(), rel, e.size, *content));
      // Sized last: a trailing hole stays a hole.
      if (::ftruncate(f.get(), static_cast<off_t>(e.size)) != 0) return sys_error("sizing " + rel);
      return apply_metadata(f.get(), rel, e, false);
    }
    case EntryType::kDir: {
      if (!exists && ::mkdirat(at.get(), base.c_str(), 0700) != 0) {
        return sys_error("creating directory " + rel);
      }
      Fd d(::openat(at.get(), base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!d.valid()) return sys_error("opening directory " + rel);
      ::fchmod(d.get(), 0700);
      dirs_[rel] = DirMeta{e.mode, e.mtime, e.mtime_nsec};
      return apply_metadata(d.get(), rel, e, true);
    }
    case EntryType::kSymlink: {
      if (::symlinkat(e.link.c_str(), at.get(), base.c_str()) != 0) {
        return sys_error("creating symlink " + rel);
      }
      if (options_.preserve_owner &&
          ::fchownat(at.get(), base.c_str(), static_cast<uid_t>(e.uid), static_cast<gid_t>(e.gid),
                     AT_SYMLINK_NOFOLLOW) != 0) {
        return sys_error("chown " + rel);
      }
      timespec ts[2] = {{e.mtime, e.mtime_nsec}, {e.mtime, e.mtime_nsec}};
      ::utimensat(at.get(), base.c_str(), ts, AT_SYMLINK_NOFOLLOW);
      return ok();
    }
    case EntryType::kHardlink: {
      auto target = clean_path(e.link);
      if (!target || target->empty()) {
        return make_error("hardlink_escape", "hardlink " + rel + " -> " + e.link +
                                                 " points outside the image root; refused");
      }
      Fd src(openat2_in_root(root_fd_, *target, O_PATH | O_NOFOLLOW));
      if (!src.valid()) {
        return make_error("hardlink_escape", "hardlink " + rel + " -> " + e.link +
                                                 ": the target is not in the image (" +
                                                 std::strerror(errno) + ")");
      }
      struct stat sst {};
      if (::fstat(src.get(), &sst) != 0 || S_ISDIR(sst.st_mode)) {
        return make_error("hardlink_escape", "hardlink " + rel + " targets a directory");
      }
      std::string proc = "/proc/self/fd/" + std::to_string(src.get());
      if (::linkat(AT_FDCWD, proc.c_str(), at.get(), base.c_str(), AT_SYMLINK_FOLLOW) != 0) {
        return sys_error("creating hardlink " + rel);
      }
      return ok();
    }
    case EntryType::kCharDev:
    case EntryType::kBlockDev:
    case EntryType::kFifo: {
      mode_t kind = e.type == EntryType::kFifo      ? S_IFIFO
                    : e.type == EntryType::kCharDev ? S_IFCHR
                                                    : S_IFBLK;
      if (kind != S_IFIFO && !options_.allow_devices) {
        return make_error("device_refused", "layer contains device node " + rel +
                                                "; devices are only created by a privileged "
                                                "unpack (--allow-devices)");
      }
      if (::mknodat(at.get(), base.c_str(), kind | 0600, e.rdev) != 0) {
        return sys_error("creating node " + rel);
      }
      if (options_.preserve_owner) {
        ::fchownat(at.get(), base.c_str(), static_cast<uid_t>(e.uid), static_cast<gid_t>(e.gid),
                   AT_SYMLINK_NOFOLLOW);
      }
      COFFER_TRY_STATUS(chmod_child(at.get(), base, effective_mode(e.mode, options_)));
      timespec ts[2] = {{e.mtime, e.mtime_nsec}, {e.mtime, e.mtime_nsec}};
      ::utimensat(at.get(), base.c_str(), ts, AT_SYMLINK_NOFOLLOW);
      return ok();
    }
  }
  return ok();
}

Status RootTree::finish() {
  // Deepest first, so that a parent turning read-only does not block its children.
  std::vector<std::pair<std::string, DirMeta>> dirs(dirs_.begin(), dirs_.end());
  std::sort(dirs.begin(), dirs.end(), [](const auto& a, const auto& b) {
    return std::count(a.first.begin(), a.first.end(), '/') + (a.first.empty() ? 0 : 1) >
           std::count(b.first.begin(), b.first.end(), '/') + (b.first.empty() ? 0 : 1);
  });
  for (const auto& [rel, meta] : dirs) {
    Fd d(openat2_in_root(root_fd_, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    if (!d.valid()) continue;  // removed by a later whiteout
    if (::fchmod(d.get(), effective_mode(meta.mode, options_)) != 0)
      return sys_error("chmod " + rel);
    timespec ts[2] = {{meta.mtime, meta.mtime_nsec}, {meta.mtime, meta.mtime_nsec}};
    if (::futimens(d.get(), ts) != 0) return sys_error("setting times of " + rel);
  }
  return ok();
}

}  // namespace coffer::oci::unpack
