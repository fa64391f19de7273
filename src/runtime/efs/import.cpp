// import_tree: an unpacked rootfs copied into a new encrypted filesystem.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "runtime/efs/filesystem.h"

namespace coffer::runtime::efs {
namespace {

namespace fs = std::filesystem;

constexpr int kMaxDepth = 256;

std::int64_t mtime_of(const struct stat& st) {
  return (static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000) + st.st_mtim.tv_nsec;
}

class Importer {
 public:
  Importer(Filesystem& efs, ImportStats& stats) : efs_(efs), stats_(stats) {}

  Status dir(const fs::path& src, const std::string& dst, int depth) {
    if (depth > kMaxDepth) return make_error(std::string(kInvalid), "source tree too deep");
    std::vector<std::string> names;
    std::error_code ec;
    for (fs::directory_iterator it(src, ec), end; !ec && it != end; it.increment(ec))
      names.push_back(it->path().filename().string());
    if (ec)
      return make_error(std::string(kIo), "cannot list " + src.string() + ": " + ec.message());
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      fs::path s = src / name;
      std::string d = dst == "/" ? "/" + name : dst + "/" + name;
      struct stat st {};
      if (::lstat(s.c_str(), &st) != 0)
        return make_error(std::string(kIo), "cannot stat " + s.string() + ": " + strerror(errno));
      if (S_ISDIR(st.st_mode)) {
        COFFER_TRY_STATUS(efs_.mkdir(d, st.st_mode & 07777, st.st_uid, st.st_gid));
        COFFER_TRY_STATUS(dir(s, d, depth + 1));
        COFFER_TRY_STATUS(efs_.set_mtime(d, mtime_of(st)));
        ++stats_.dirs;
      } else if (S_ISREG(st.st_mode)) {
        COFFER_TRY_STATUS(file(s, d, st));
      } else if (S_ISLNK(st.st_mode)) {
        std::string target(static_cast<std::size_t>(kMaxSymlinkLength) + 1, '\0');
        ssize_t n = ::readlink(s.c_str(), target.data(), target.size());
        if (n <= 0 || static_cast<std::size_t>(n) > kMaxSymlinkLength)
          return make_error(std::string(kIo), "cannot read the symlink " + s.string());
        target.resize(static_cast<std::size_t>(n));
        COFFER_TRY_STATUS(efs_.symlink(target, d, st.st_uid, st.st_gid));
        COFFER_TRY_STATUS(efs_.set_mtime(d, mtime_of(st)));
        ++stats_.symlinks;
      } else {
        return make_error(std::string(kUnsupported),
                          s.string() + " is a device node, fifo or socket; not imported");
      }
    }
    return ok();
  }

 private:
  Status file(const fs::path& src, const std::string& dst, const struct stat& st) {
    if (st.st_nlink > 1 && !links_.emplace(st.st_dev, st.st_ino).second) ++stats_.hardlink_copies;
    int fd = ::open(src.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return make_error(std::string(kIo), "cannot open " + src.string());
    Status s = copy(fd, dst, st);
    ::close(fd);
    return s;
  }

  Status copy(int fd, const std::string& dst, const struct stat& st) {
    COFFER_TRY_STATUS(efs_.create_file(dst, st.st_mode & 07777, st.st_uid, st.st_gid));
    buf_.resize(1 << 20);
    std::uint64_t off = 0;
    for (;;) {
      ssize_t n = ::read(fd, buf_.data(), buf_.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return make_error(std::string(kIo), "cannot read a source file");
      if (n == 0) break;
      COFFER_TRY_STATUS(efs_.write(dst, off, ByteView(buf_).first(static_cast<std::size_t>(n))));
      off += static_cast<std::uint64_t>(n);
    }
    COFFER_TRY_STATUS(efs_.set_mtime(dst, mtime_of(st)));
    ++stats_.files;
    stats_.bytes += off;
    return ok();
  }

  Filesystem& efs_;
  ImportStats& stats_;
  std::set<std::pair<dev_t, ino_t>> links_;
  Bytes buf_;
};

}  // namespace

Result<ImportStats> import_into(Filesystem& efs, const fs::path& src_dir, std::string_view dst) {
  struct stat st {};
  if (::lstat(src_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return make_error(std::string(kNotFound), src_dir.string() + " is not a directory");
  const std::string d(dst);
  if (d != "/") COFFER_TRY_STATUS(efs.mkdir(d, st.st_mode & 07777, st.st_uid, st.st_gid));
  ImportStats stats;
  Importer importer(efs, stats);
  COFFER_TRY_STATUS(importer.dir(src_dir, d, 0));
  COFFER_TRY_STATUS(efs.set_mtime(d, mtime_of(st)));
  if (d != "/") ++stats.dirs;
  return stats;
}

Result<ImportStats> import_tree(const fs::path& src_dir, const fs::path& efs_dir, ByteView key,
                                const CreateOptions& options) {
  struct stat st {};
  if (::lstat(src_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return make_error(std::string(kNotFound), src_dir.string() + " is not a directory");
  CreateOptions opts = options;
  opts.root_mode = st.st_mode & 07777;
  opts.root_uid = st.st_uid;
  opts.root_gid = st.st_gid;
  COFFER_TRY_STATUS(create(efs_dir, key, opts));
  auto efs = COFFER_TRY(Filesystem::open(efs_dir, key));
  auto stats = COFFER_TRY(import_into(*efs, src_dir, "/"));
  COFFER_TRY_STATUS(efs->commit());
  return stats;
}

}  // namespace coffer::runtime::efs
