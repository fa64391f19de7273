// coffer's encrypted filesystem (docs/encrypted-fs.md): a tree of AES-256-GCM encrypted objects
// on untrusted host storage, authenticated up to one root in an HMAC-protected superblock.
// Filesystem is the whole logic; the FUSE daemon (fuse_mount.h) and the tests drive it by path.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/bytes.h"
#include "core/error.h"

namespace coffer::runtime::efs {

// Error codes. Integrity failures never return plaintext.
inline constexpr std::string_view kIntegrity = "efs_integrity";   // tampered or stale host data
inline constexpr std::string_view kWrongKey = "efs_wrong_key";    // key does not open this fs
inline constexpr std::string_view kRollback = "efs_rollback";     // generation below the minimum
inline constexpr std::string_view kBadFormat = "efs_bad_format";  // not an efs directory
inline constexpr std::string_view kNotFound = "efs_not_found";    // ENOENT
inline constexpr std::string_view kExists = "efs_exists";         // EEXIST
inline constexpr std::string_view kNotDir = "efs_not_dir";        // ENOTDIR
inline constexpr std::string_view kIsDir = "efs_is_dir";          // EISDIR
inline constexpr std::string_view kNotEmpty = "efs_not_empty";    // ENOTEMPTY
inline constexpr std::string_view kInvalid = "efs_invalid";       // EINVAL (bad name, op)
inline constexpr std::string_view kNameTooLong = "efs_name_too_long";  // ENAMETOOLONG
inline constexpr std::string_view kIo = "efs_io";                      // host I/O error (EIO)
inline constexpr std::string_view kUnsupported = "efs_unsupported";    // device nodes, fifos...
inline constexpr std::string_view kNotLoaded = "efs_not_loaded";  // read_concurrent: use read()

// The errno a FUSE reply uses for an error of this module (EIO for integrity and unknown codes).
int errno_for(const Error& e);

inline constexpr std::size_t kKeySize = 32;
inline constexpr std::size_t kIdSize = 16;
inline constexpr std::size_t kHashSize = 32;
inline constexpr std::size_t kTagSize = 16;
inline constexpr std::size_t kNonceSize = 12;
inline constexpr std::uint32_t kDefaultBlockSize = 64 * 1024;
inline constexpr std::size_t kMaxNameLength = 255;
inline constexpr std::size_t kMaxSymlinkLength = 4095;

using ObjectId = std::array<std::uint8_t, kIdSize>;
using Hash = std::array<std::uint8_t, kHashSize>;
using Tag = std::array<std::uint8_t, kTagSize>;

enum class Kind : std::uint8_t { kFile = 1, kDir = 2, kSymlink = 3 };

struct Attr {
  Kind kind = Kind::kFile;
  std::uint32_t mode = 0;  // permission bits with setuid/setgid/sticky (07777)
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::int64_t mtime_ns = 0;
  std::uint64_t size = 0;  // file: bytes; symlink: target length; dir: 0
  std::uint32_t nlink = 1;
};

struct CreateOptions {
  std::uint32_t block_size = kDefaultBlockSize;  // a power of two, 4 KiB .. 1 MiB
  std::uint32_t root_mode = 0755;
  std::uint32_t root_uid = 0;
  std::uint32_t root_gid = 0;
};

struct OpenOptions {
  // A whole-filesystem rollback (every host file replaced by an older copy) is only detected
  // against a trusted monotonic value: open refuses a generation below this one (efs_rollback).
  std::uint64_t min_generation = 0;
};

// Creates an empty filesystem (superblock and root directory) in `dir` (created if missing; must
// not already hold a filesystem: efs_exists). `key` is 32 bytes.
Status create(const std::filesystem::path& dir, ByteView key, const CreateOptions& options = {});

struct ImportStats {
  std::uint64_t files = 0;
  std::uint64_t dirs = 0;
  std::uint64_t symlinks = 0;
  std::uint64_t bytes = 0;
  std::uint64_t hardlink_copies = 0;  // extra links of a file, stored as independent copies
};

// Creates a filesystem in `efs_dir` holding a copy of `src_dir` (an unpacked rootfs): regular
// files, directories, symlinks with their modes, uid/gid and mtimes. Hard links become copies;
// device nodes, fifos and sockets are refused (efs_unsupported).
Result<ImportStats> import_tree(const std::filesystem::path& src_dir,
                                const std::filesystem::path& efs_dir, ByteView key,
                                const CreateOptions& options = {});

class Filesystem;

// Copies `src_dir` into the open filesystem `efs` as the new directory `dst` (absolute; "/" fills
// the root), with the same rules as import_tree; the caller commits.
Result<ImportStats> import_into(Filesystem& efs, const std::filesystem::path& src_dir,
                                std::string_view dst);

class Filesystem {
 public:
  // Reads and authenticates the superblock: efs_bad_format, efs_wrong_key, efs_integrity,
  // efs_rollback.
  static Result<std::unique_ptr<Filesystem>> open(const std::filesystem::path& dir, ByteView key,
                                                  const OpenOptions& options = {});
  ~Filesystem();
  Filesystem(const Filesystem&) = delete;
  Filesystem& operator=(const Filesystem&) = delete;

  // Paths are absolute ("/", "/etc/passwd"); symlinks are not followed (the kernel does that).
  Result<Attr> stat(std::string_view path);
  Result<std::vector<std::pair<std::string, Attr>>> list(std::string_view path);
  Result<std::string> readlink(std::string_view path);
  // Reads up to out.size() bytes at `offset`; returns the count (0 at or after the end).
  Result<std::size_t> read(std::string_view path, std::uint64_t offset,
                           std::span<std::uint8_t> out);
  Result<Bytes> read_all(std::string_view path);
  // read() for a multi-threaded server: it changes no state, so several threads may run it at
  // once (never alongside any other call). It fails with efs_not_loaded, and read() is to be
  // used instead, until the path's directories and the file's block table have been loaded.
  Result<std::size_t> read_concurrent(std::string_view path, std::uint64_t offset,
                                      std::span<std::uint8_t> out) const;

  Status create_file(std::string_view path, std::uint32_t mode, std::uint32_t uid,
                     std::uint32_t gid);
  Status mkdir(std::string_view path, std::uint32_t mode, std::uint32_t uid, std::uint32_t gid);
  Status symlink(std::string_view target, std::string_view path, std::uint32_t uid,
                 std::uint32_t gid);
  Status write(std::string_view path, std::uint64_t offset, ByteView data);
  Status truncate(std::string_view path, std::uint64_t size);
  Status unlink(std::string_view path);
  Status rmdir(std::string_view path);
  // POSIX rename: replaces a file/symlink target, or an empty directory target.
  Status rename(std::string_view from, std::string_view to, bool no_replace = false);
  Status chmod(std::string_view path, std::uint32_t mode);
  Status chown(std::string_view path, std::optional<std::uint32_t> uid,
               std::optional<std::uint32_t> gid);
  Status set_mtime(std::string_view path, std::int64_t mtime_ns);

  // Writes every changed directory and the superblock (generation + 1), making the on-disk tree
  // consistent again. Mutations are in memory (directories) or in place (file blocks) until then.
  // durable: fsync file blocks, directory objects, the superblock and the renames (fsync(2)).
  // Without it a host crash may lose the last commits; what remains fails closed (efs_integrity).
  Status commit(bool durable = false);
  // Authenticates the whole tree: every directory, every file's block table and every block.
  Status check();

  [[nodiscard]] std::uint64_t generation() const;
  [[nodiscard]] std::uint32_t block_size() const;
  // The host directory holding the objects (absolute).
  [[nodiscard]] const std::filesystem::path& directory() const;

  struct Node;
  struct State;

 private:
  explicit Filesystem(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace coffer::runtime::efs
