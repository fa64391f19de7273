#define FUSE_USE_VERSION 31
#include "runtime/efs/fuse_mount.h"

#include <fcntl.h>
#include <fuse.h>
#include <malloc.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "core/log.h"

namespace coffer::runtime::efs {
namespace {

Filesystem& efs() { return *static_cast<Filesystem*>(fuse_get_context()->private_data); }

// Maps a result to a FUSE return value; integrity failures are logged without plaintext names.
int fail(const Error& e) {
  int code = errno_for(e);
  if (code == EIO) spdlog::error("coffer-efs: {}", e.to_string());
  return -code;
}

int status(const Status& s) { return s ? 0 : fail(s.error()); }

// Commits are rate-limited: rewriting the directories up to the root and the superblock after
// every operation made creating files through the mount 50 times slower than on the host. A change
// is committed by the next operation at least kCommitInterval after the last commit, by the
// committer thread within that interval otherwise, on fsync (durably) and at unmount. A host crash
// in between loses those changes and fails closed (docs/encrypted-fs.md).
constexpr auto kCommitInterval = std::chrono::milliseconds(500);
std::int64_t g_last_commit_ns = 0;  // steady clock; guarded by g_lock

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int commit_now(bool durable = false) {
  g_last_commit_ns = steady_ns();
  return status(efs().commit(durable));
}

int committed(const Status& s) {
  if (!s) return fail(s.error());
  if (steady_ns() - g_last_commit_ns < std::chrono::nanoseconds(kCommitInterval).count()) return 0;
  return commit_now();
}

// Filesystem is not thread-safe: one operation at a time, except read_concurrent (shared).
std::shared_mutex g_lock;

template <typename F>
int guard(F&& f) noexcept {
  try {
    std::unique_lock lock(g_lock);
    return f();
  } catch (...) {
    return -EIO;
  }
}

void fill_stat(const Attr& a, struct stat* st, std::uint32_t block_size) {
  std::memset(st, 0, sizeof *st);
  mode_t type = a.kind == Kind::kDir ? S_IFDIR : a.kind == Kind::kSymlink ? S_IFLNK : S_IFREG;
  st->st_mode = type | a.mode;
  st->st_nlink = a.nlink;
  st->st_uid = a.uid;
  st->st_gid = a.gid;
  st->st_size = static_cast<off_t>(a.size);
  st->st_blksize = static_cast<blksize_t>(block_size);
  st->st_blocks = static_cast<blkcnt_t>((a.size + 511) / 512);
  st->st_mtim.tv_sec = a.mtime_ns / 1000000000;
  st->st_mtim.tv_nsec = a.mtime_ns % 1000000000;
  st->st_ctim = st->st_mtim;
  st->st_atim = st->st_mtim;
}

void* op_init(fuse_conn_info* conn, fuse_config* cfg) {
  // Only this daemon changes the tree, so the kernel may keep decrypted pages between opens; the
  // pages were authenticated when read and live in the enclave's mount only.
  cfg->kernel_cache = 1;
  cfg->entry_timeout = 1.0;
  cfg->attr_timeout = 1.0;
  cfg->negative_timeout = 0.0;
  conn->max_write = 1U << 20;
  conn->max_readahead = 1U << 20;
  return fuse_get_context()->private_data;
}

void op_destroy(void* data) {
  auto s = static_cast<Filesystem*>(data)->commit();
  if (!s) spdlog::error("coffer-efs: final commit failed: {}", s.error().to_string());
}

int op_getattr(const char* path, struct stat* st, fuse_file_info* /*fi*/) {
  return guard([&] {
    auto a = efs().stat(path);
    if (!a) return fail(a.error());
    fill_stat(*a, st, efs().block_size());
    return 0;
  });
}

int op_readlink(const char* path, char* buf, size_t size) {
  return guard([&] {
    auto t = efs().readlink(path);
    if (!t) return fail(t.error());
    if (size == 0) return -EINVAL;
    std::size_t n = std::min(size - 1, t->size());
    std::memcpy(buf, t->data(), n);
    buf[n] = '\0';
    return 0;
  });
}

int op_mkdir(const char* path, mode_t mode) {
  return guard([&] {
    auto* ctx = fuse_get_context();
    return committed(efs().mkdir(path, mode & 07777, ctx->uid, ctx->gid));
  });
}

int op_unlink(const char* path) {
  return guard([&] { return committed(efs().unlink(path)); });
}
int op_rmdir(const char* path) {
  return guard([&] { return committed(efs().rmdir(path)); });
}

int op_symlink(const char* target, const char* path) {
  return guard([&] {
    auto* ctx = fuse_get_context();
    return committed(efs().symlink(target, path, ctx->uid, ctx->gid));
  });
}

int op_rename(const char* from, const char* to, unsigned int flags) {
  return guard([&] {
    if ((flags & ~static_cast<unsigned int>(RENAME_NOREPLACE)) != 0) return -EINVAL;
    return committed(efs().rename(from, to, (flags & RENAME_NOREPLACE) != 0));
  });
}

int op_chmod(const char* path, mode_t mode, fuse_file_info* /*fi*/) {
  return guard([&] { return committed(efs().chmod(path, mode & 07777)); });
}

int op_chown(const char* path, uid_t uid, gid_t gid, fuse_file_info* /*fi*/) {
  return guard([&] {
    std::optional<std::uint32_t> u;
    std::optional<std::uint32_t> g;
    if (uid != static_cast<uid_t>(-1)) u = uid;
    if (gid != static_cast<gid_t>(-1)) g = gid;
    return committed(efs().chown(path, u, g));
  });
}

int op_truncate(const char* path, off_t size, fuse_file_info* /*fi*/) {
  return guard([&] {
    if (size < 0) return -EINVAL;
    return committed(efs().truncate(path, static_cast<std::uint64_t>(size)));
  });
}

int op_open(const char* path, fuse_file_info* /*fi*/) {
  return guard([&] {
    auto a = efs().stat(path);
    if (!a) return fail(a.error());
    if (a->kind == Kind::kDir) return -EISDIR;
    return 0;
  });
}

int op_create(const char* path, mode_t mode, fuse_file_info* /*fi*/) {
  return guard([&] {
    auto* ctx = fuse_get_context();
    return committed(efs().create_file(path, mode & 07777, ctx->uid, ctx->gid));
  });
}

int op_read(const char* path, char* buf, size_t size, off_t off, fuse_file_info* /*fi*/) {
  if (off < 0) return -EINVAL;
  std::span<std::uint8_t> out(reinterpret_cast<std::uint8_t*>(buf), size);
  try {
    std::shared_lock lock(g_lock);
    auto n = efs().read_concurrent(path, static_cast<std::uint64_t>(off), out);
    if (n) return static_cast<int>(*n);
    if (n.error().code != kNotLoaded) return fail(n.error());
  } catch (...) {
    return -EIO;
  }
  return guard([&] {  // first read: loads directories and the block table
    auto n = efs().read(path, static_cast<std::uint64_t>(off), out);
    if (!n) return fail(n.error());
    return static_cast<int>(*n);
  });
}

int op_write(const char* path, const char* buf, size_t size, off_t off, fuse_file_info* /*fi*/) {
  return guard([&] {
    if (off < 0) return -EINVAL;
    auto s = efs().write(path, static_cast<std::uint64_t>(off),
                         ByteView(reinterpret_cast<const std::uint8_t*>(buf), size));
    if (!s) return fail(s.error());
    return static_cast<int>(size);
  });
}

// Space and inode counts are the host filesystem's (df, and programs checking free space).
int op_statfs(const char* /*path*/, struct statvfs* st) {
  return guard([&] {
    if (::statvfs(efs().directory().c_str(), st) != 0) return -errno;
    st->f_namemax = kMaxNameLength;
    return 0;
  });
}

int op_release(const char* /*path*/, fuse_file_info* fi) {
  return guard([&] { return (fi->flags & O_ACCMODE) == O_RDONLY ? 0 : committed(ok()); });
}

int op_fsync(const char* /*path*/, int /*datasync*/, fuse_file_info* /*fi*/) {
  return guard([&] { return commit_now(true); });
}

int op_readdir(const char* path, void* buf, fuse_fill_dir_t filler, off_t /*off*/,
               fuse_file_info* /*fi*/, fuse_readdir_flags /*flags*/) {
  return guard([&] {
    auto entries = efs().list(path);
    if (!entries) return fail(entries.error());
    filler(buf, ".", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
    filler(buf, "..", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
    for (const auto& [name, attr] : *entries) {
      struct stat st {};
      fill_stat(attr, &st, efs().block_size());
      if (filler(buf, name.c_str(), &st, 0, static_cast<fuse_fill_dir_flags>(0)) != 0) break;
    }
    return 0;
  });
}

int op_utimens(const char* path, const struct timespec tv[2], fuse_file_info* /*fi*/) {
  return guard([&] {
    if (tv == nullptr || tv[1].tv_nsec == UTIME_NOW) {
      struct timespec now {};
      clock_gettime(CLOCK_REALTIME, &now);
      return committed(efs().set_mtime(path, (now.tv_sec * 1000000000LL) + now.tv_nsec));
    }
    if (tv[1].tv_nsec == UTIME_OMIT) return 0;
    return committed(efs().set_mtime(path, (tv[1].tv_sec * 1000000000LL) + tv[1].tv_nsec));
  });
}

fuse_operations make_ops() {
  fuse_operations ops{};
  ops.getattr = op_getattr;
  ops.readlink = op_readlink;
  ops.mkdir = op_mkdir;
  ops.unlink = op_unlink;
  ops.rmdir = op_rmdir;
  ops.symlink = op_symlink;
  ops.rename = op_rename;
  ops.chmod = op_chmod;
  ops.chown = op_chown;
  ops.truncate = op_truncate;
  ops.open = op_open;
  ops.read = op_read;
  ops.write = op_write;
  ops.statfs = op_statfs;
  ops.release = op_release;
  ops.fsync = op_fsync;
  ops.readdir = op_readdir;
  ops.init = op_init;
  ops.destroy = op_destroy;
  ops.create = op_create;
  ops.utimens = op_utimens;
  return ops;
}

}  // namespace

Status serve(std::unique_ptr<Filesystem> fs, const std::filesystem::path& mountpoint,
             const MountOptions& options) {
  // libfuse allocates a buffer per read request (128 KiB and more): above glibc's mmap threshold
  // every request would map, fault in, zero and unmap fresh pages. Keep such buffers on the heap.
  mallopt(M_MMAP_THRESHOLD, 8 << 20);
  mallopt(M_TRIM_THRESHOLD, 32 << 20);
  std::vector<std::string> argv_s = {"coffer-efs", "-o",
                                     "default_permissions,fsname=coffer-efs,subtype=coffer-efs"};
  if (options.allow_other) argv_s.insert(argv_s.end(), {"-o", "allow_other"});
  if (options.debug) argv_s.emplace_back("-d");
  std::vector<char*> argv;
  argv.reserve(argv_s.size());
  for (auto& a : argv_s) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  fuse_operations ops = make_ops();
  fuse* f = fuse_new(&args, &ops, sizeof ops, fs.get());
  fuse_opt_free_args(&args);
  if (f == nullptr) return make_error("efs_mount_failed", "fuse_new failed");
  if (fuse_mount(f, mountpoint.c_str()) != 0) {
    fuse_destroy(f);
    return make_error("efs_mount_failed", "cannot mount on " + mountpoint.string());
  }
  if (fuse_daemonize(options.foreground ? 1 : 0) != 0 ||
      fuse_set_signal_handlers(fuse_get_session(f)) != 0) {
    fuse_unmount(f);
    fuse_destroy(f);
    return make_error("efs_mount_failed", "cannot set up the FUSE daemon");
  }
  // the committer: commits what the rate limit left pending
  std::mutex stop_mutex;
  std::condition_variable stop_cv;
  bool stopping = false;
  std::thread committer([&] {
    std::unique_lock stop_lock(stop_mutex);
    while (!stop_cv.wait_for(stop_lock, kCommitInterval, [&] { return stopping; })) {
      std::unique_lock lock(g_lock);
      g_last_commit_ns = steady_ns();
      if (auto c = fs->commit(); !c)
        spdlog::error("coffer-efs: commit failed: {}", c.error().to_string());
    }
  });
  int rc = options.multithreaded ? fuse_loop_mt(f, 0) : fuse_loop(f);
  {
    std::lock_guard stop_lock(stop_mutex);
    stopping = true;
  }
  stop_cv.notify_all();
  committer.join();
  fuse_remove_signal_handlers(fuse_get_session(f));
  fuse_unmount(f);
  fuse_destroy(f);  // calls op_destroy: the final commit
  if (rc != 0) return make_error("efs_mount_failed", "the FUSE loop ended with an error");
  return ok();
}

}  // namespace coffer::runtime::efs
