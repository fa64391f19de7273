// Writing a root filesystem from tar entries without ever leaving it: every path is resolved
// with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) against a directory descriptor of the
// root, and final components are created with *at() calls that do not follow symlinks.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "oci/io.h"

namespace coffer::oci::unpack {

struct TreeOptions {
  bool allow_devices = false;  // mknod for char/block devices (privileged unpack)
  // Privilege-granting metadata: setuid/setgid bits and file capabilities (security.capability)
  // are dropped unless this is set (a container bundle whose capability bounding set governs).
  bool keep_privileges = false;
  bool preserve_owner = false;  // chown to the tar's uid/gid (needs root)
  // user.* extended attributes. trusted.* and security.* other than security.capability (see
  // keep_privileges) are never applied, nor any other namespace.
  bool apply_xattrs = true;
};

enum class EntryType { kFile, kDir, kSymlink, kHardlink, kCharDev, kBlockDev, kFifo };

struct TreeEntry {
  std::string path;  // as in the tar
  EntryType type = EntryType::kFile;
  std::string link;  // symlink target or hardlink source (tar path)
  std::uint32_t mode = 0644;
  std::int64_t uid = 0, gid = 0;
  std::int64_t mtime = 0;
  std::uint32_t mtime_nsec = 0;
  std::uint64_t size = 0;  // a regular file's apparent size (sparse files: with the holes)
  dev_t rdev = 0;
  std::vector<std::pair<std::string, Bytes>> xattrs;
};

// A regular file's data as blocks at increasing offsets; what no block covers is a hole.
class FileData {
 public:
  struct Block {
    std::uint64_t offset = 0;
    ByteView bytes;
  };
  virtual ~FileData() = default;
  // The next block, or nullopt after the last one.
  virtual Result<std::optional<Block>> next() = 0;
};

class RootTree {
 public:
  // `root` must exist and be a directory.
  static Result<RootTree> open(const std::filesystem::path& root, TreeOptions options);
  RootTree(RootTree&&) noexcept;
  RootTree& operator=(RootTree&&) noexcept;
  RootTree(const RootTree&) = delete;
  RootTree& operator=(const RootTree&) = delete;
  ~RootTree();

  // Call between layers: opaque whiteouts apply to what earlier layers created only.
  void begin_layer();
  // Applies one entry; `content` supplies a regular file's data (written at its offsets, holes
  // left unallocated, the file then sized to entry.size). Whiteout entries (.wh.NAME,
  // .wh..wh..opq) remove from earlier layers, resolved inside the root like creation; NAME is
  // never empty, '.' or '..'. Errors: "unsafe_path" (.., empty), "path_too_long",
  // "device_refused", "hardlink_escape", "corrupt_layer" (data beyond the file's size),
  // "io_error".
  Status apply(const TreeEntry& entry, FileData* content);
  // Sets directory modes and times last (children would otherwise change the mtimes, and
  // read-only directories would block later layers).
  Status finish();

 private:
  RootTree(int root_fd, TreeOptions options) : root_fd_(root_fd), options_(options) {}
  Result<int> open_parent(const std::string& rel, bool create);
  Status apply_metadata(int fd, const std::string& rel, const TreeEntry& e, bool symlink);
  int root_fd_ = -1;
  TreeOptions options_;
  std::set<std::string> this_layer_;
  struct DirMeta {
    std::uint32_t mode;
    std::int64_t mtime;
    std::uint32_t mtime_nsec;
  };
  std::map<std::string, DirMeta> dirs_;
};

// "a/./b/" -> "a/b", leading '/' dropped (absolute tar paths stay inside the root);
// "unsafe_path" for '..' components and empty names, "path_too_long" beyond PATH_MAX/NAME_MAX.
Result<std::string> clean_path(std::string_view tar_path);

}  // namespace coffer::oci::unpack
