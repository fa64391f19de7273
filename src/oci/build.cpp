#include "oci/build.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <memory>
#include <unordered_map>

#include "core/clock.h"
#include "core/fd.h"
#include "core/json.h"
#include "oci/digest.h"
#include "oci/io.h"
#include "oci/unpack/tree.h"

namespace coffer::oci {
namespace {

namespace fs = std::filesystem;

enum class Kind { kFile, kDir, kSymlink, kHardlink };

// One input entry, normalised: a relative path without "./", trailing '/' or '..'.
struct Entry {
  std::string path;
  Kind kind = Kind::kFile;
  std::uint32_t mode = 0;  // permission bits with setuid/setgid/sticky as given
  std::uint64_t size = 0;
  std::string link;          // symlink target; for kHardlink the path holding the content
  std::size_t group = 0;     // files: hard-link group (one inode); unique otherwise
  std::uint64_t offset = 0;  // tar input: where the content is in the spool file
  fs::path source;           // directory input: the file to read
};

std::unexpected<Error> sys_error(const std::string& what) {
  int err = errno;
  std::string code = err == ENOENT ? "not_found" : err == EACCES ? "permission_denied" : "io_error";
  return make_error(code, what + ": " + std::strerror(err));
}

using ArchivePtr = std::unique_ptr<struct archive, int (*)(struct archive*)>;
using EntryPtr = std::unique_ptr<struct archive_entry, void (*)(struct archive_entry*)>;

class Budget {
 public:
  Budget(const BuildOptions& o) : max_bytes_(o.max_bytes), max_entries_(o.max_entries) {}
  Status add_entry() {
    if (++entries_ > max_entries_) {
      return make_error("input_too_large",
                        "the input has more than " + std::to_string(max_entries_) + " entries");
    }
    return ok();
  }
  Status add_bytes(std::uint64_t n) {
    if (n > max_bytes_ - bytes_) {
      return make_error("input_too_large", "the input's files hold more than " +
                                               std::to_string(max_bytes_) + " bytes");
    }
    bytes_ += n;
    return ok();
  }

 private:
  std::uint64_t max_bytes_;
  std::size_t max_entries_;
  std::uint64_t bytes_ = 0;
  std::size_t entries_ = 0;
};

Status check_link_target(const std::string& path, const std::string& target) {
  if (target.empty() || target.size() >= PATH_MAX) {
    return make_error("unsafe_path", "symlink " + printable_excerpt(path, 200) +
                                         " has an empty or too long target");
  }
  return ok();
}

// ---- directory input ----------------------------------------------------------------------

Result<std::vector<Entry>> read_dir(const fs::path& root, Budget& budget) {
  struct stat st {};
  if (::stat(root.c_str(), &st) != 0) return sys_error("input directory " + root.string());
  if (!S_ISDIR(st.st_mode)) {
    return make_error("not_found", "input " + root.string() + " is not a directory");
  }
  std::vector<Entry> entries;
  std::map<std::pair<dev_t, ino_t>, std::size_t> inodes;  // hard-link groups
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec);
  if (ec) return make_error("io_error", "listing " + root.string() + ": " + ec.message());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return make_error("io_error", "listing " + root.string() + ": " + ec.message());
    const fs::path& p = it->path();
    COFFER_TRY_STATUS(budget.add_entry());
    Entry e;
    e.path = p.lexically_relative(root).generic_string();
    COFFER_TRY(unpack::clean_path(e.path));  // bounds the length
    if (::lstat(p.c_str(), &st) != 0) return sys_error("stat " + p.string());
    e.mode = st.st_mode & 07777;
    e.group = entries.size();
    if (S_ISREG(st.st_mode)) {
      e.kind = Kind::kFile;
      e.size = static_cast<std::uint64_t>(st.st_size);
      e.source = p;
      if (st.st_nlink > 1) {
        auto [pos, fresh] = inodes.try_emplace({st.st_dev, st.st_ino}, e.group);
        e.group = pos->second;
        if (fresh) COFFER_TRY_STATUS(budget.add_bytes(e.size));
      } else {
        COFFER_TRY_STATUS(budget.add_bytes(e.size));
      }
    } else if (S_ISDIR(st.st_mode)) {
      e.kind = Kind::kDir;
    } else if (S_ISLNK(st.st_mode)) {
      e.kind = Kind::kSymlink;
      std::array<char, PATH_MAX> buf{};
      auto n = ::readlink(p.c_str(), buf.data(), buf.size());
      if (n < 0) return sys_error("reading symlink " + p.string());
      e.link.assign(buf.data(), static_cast<std::size_t>(n));
      COFFER_TRY_STATUS(check_link_target(e.path, e.link));
    } else {
      const char* what = S_ISFIFO(st.st_mode)   ? "a FIFO"
                         : S_ISSOCK(st.st_mode) ? "a socket"
                                                : "a device node";
      return make_error("unsupported_file_type",
                        printable_excerpt(e.path, 200) + " is " + what +
                            "; an image holds only files, directories and links: remove it from "
                            "the input");
    }
    entries.push_back(std::move(e));
  }
  return entries;
}

// ---- tar input ----------------------------------------------------------------------------

struct TarInput {
  std::vector<Entry> entries;
  std::optional<TempFile> spool;  // the regular files' content, one after the other
};

// A tar path as an entry path: absolute paths and '..' are refused, not rewritten.
Result<std::string> tar_path(const char* raw) {
  if (raw == nullptr || *raw == '\0') return make_error("bad_archive", "tar entry without a name");
  std::string_view s(raw);
  if (s.starts_with('/')) {
    return make_error("unsafe_path", "tar entry '" + printable_excerpt(s, 200) +
                                         "' is an absolute path; the input is refused");
  }
  return unpack::clean_path(s);
}

Result<TarInput> read_tar(const fs::path& file, const fs::path& spool_dir, Budget& budget) {
  Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return sys_error("input tar " + file.string());
  ArchivePtr a(archive_read_new(), archive_read_free);
  archive_read_support_filter_gzip(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_fd(a.get(), fd.get(), 64 * 1024) != ARCHIVE_OK) {
    return make_error("bad_archive", file.string() + ": " + archive_error_string(a.get()));
  }
  TarInput in;
  in.spool = COFFER_TRY(TempFile::create(spool_dir));
  std::unordered_map<std::string, std::size_t> index;
  std::vector<std::uint8_t> buf(kStreamBufferSize);
  struct archive_entry* ae = nullptr;
  for (;;) {
    int rc = archive_read_next_header(a.get(), &ae);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN) {
      return make_error("bad_archive", file.string() + ": " + archive_error_string(a.get()));
    }
    COFFER_TRY_STATUS(budget.add_entry());
    Entry e;
    e.path = COFFER_TRY(tar_path(archive_entry_pathname(ae)));
    e.mode = static_cast<std::uint32_t>(archive_entry_mode(ae)) & 07777;
    e.group = in.entries.size();
    auto type = archive_entry_filetype(ae);
    if (const char* hl = archive_entry_hardlink(ae)) {
      std::string target = COFFER_TRY(tar_path(hl));
      auto it = index.find(target);
      if (it == index.end() || in.entries[it->second].kind != Kind::kFile) {
        return make_error("unsafe_path", "hard link " + printable_excerpt(e.path, 200) + " names " +
                                             printable_excerpt(target, 200) +
                                             ", which is not an earlier file of the input");
      }
      const Entry& t = in.entries[it->second];
      e.kind = Kind::kFile;  // made a link again after sorting (see normalise_links)
      e.group = t.group;
      e.mode = t.mode;
      e.size = t.size;
      e.offset = t.offset;
    } else if (type == AE_IFREG) {
      e.kind = Kind::kFile;
      e.offset = in.spool->written();
      for (;;) {
        auto n = archive_read_data(a.get(), buf.data(), buf.size());
        if (n < 0) {
          return make_error("bad_archive", file.string() + ": " + archive_error_string(a.get()));
        }
        if (n == 0) break;
        COFFER_TRY_STATUS(budget.add_bytes(static_cast<std::uint64_t>(n)));
        COFFER_TRY_STATUS(in.spool->write(ByteView(buf.data(), static_cast<std::size_t>(n))));
      }
      e.size = in.spool->written() - e.offset;
    } else if (type == AE_IFDIR) {
      e.kind = Kind::kDir;
    } else if (type == AE_IFLNK) {
      e.kind = Kind::kSymlink;
      const char* target = archive_entry_symlink(ae);
      e.link = target != nullptr ? target : "";
      COFFER_TRY_STATUS(check_link_target(e.path, e.link));
    } else {
      const char* what = type == AE_IFIFO                       ? "a FIFO"
                         : type == AE_IFSOCK                    ? "a socket"
                         : type == AE_IFCHR || type == AE_IFBLK ? "a device node"
                                                                : "of an unknown type";
      return make_error("unsupported_file_type",
                        "tar entry " + printable_excerpt(e.path, 200) + " is " + what +
                            "; an image holds only files, directories and links");
    }
    if (e.path.empty()) {
      if (e.kind == Kind::kDir) continue;  // "./": the root is not an entry of the layer
      return make_error("unsafe_path", "a tar entry that is not a directory names the root");
    }
    if (!index.emplace(e.path, in.entries.size()).second) {
      return make_error("duplicate_entry", "the tar names " + printable_excerpt(e.path, 200) +
                                               " twice; give each path once");
    }
    in.entries.push_back(std::move(e));
  }
  // every parent of an entry must be a directory of the input: a path through a symlink (or a
  // file) would be written somewhere else than it names when unpacked
  for (const auto& e : in.entries) {
    for (auto slash = e.path.find('/'); slash != std::string::npos;
         slash = e.path.find('/', slash + 1)) {
      auto it = index.find(e.path.substr(0, slash));
      if (it != index.end() && in.entries[it->second].kind != Kind::kDir) {
        return make_error("unsafe_path", "tar entry " + printable_excerpt(e.path, 200) +
                                             " goes through " +
                                             printable_excerpt(e.path.substr(0, slash), 200) +
                                             ", which is not a directory; the input is refused");
      }
    }
  }
  return in;
}

// ---- the layer ----------------------------------------------------------------------------

// Sorted by path; of each hard-link group the first path keeps the content, the others link to
// it, so the layer does not depend on which name the input listed first.
void normalise_links(std::vector<Entry>& entries) {
  std::ranges::sort(entries, {}, &Entry::path);
  std::unordered_map<std::size_t, std::string> first;
  for (auto& e : entries) {
    if (e.kind != Kind::kFile) continue;
    auto [it, fresh] = first.try_emplace(e.group, e.path);
    if (!fresh) {
      e.kind = Kind::kHardlink;
      e.link = it->second;
      e.size = 0;
    }
  }
}

// The uncompressed tar goes through here: hashed (diff_id), gzip-compressed with zlib's fixed
// header (mtime 0, no name), spooled and hashed again (the layer digest).
class LayerWriter {
 public:
  explicit LayerWriter(TempFile& out) : out_(out), out_buf_(kStreamBufferSize) {
    z_.zalloc = nullptr;
    z_.zfree = nullptr;
    z_.opaque = nullptr;
    ok_ = deflateInit2(&z_, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) ==
          Z_OK;
  }
  ~LayerWriter() {
    if (ok_) deflateEnd(&z_);
  }
  LayerWriter(const LayerWriter&) = delete;
  LayerWriter& operator=(const LayerWriter&) = delete;

  Status write(ByteView data) {
    if (!ok_) return make_error("io_error", "zlib could not be initialised");
    diff_.update(data);
    return deflate_some(data, Z_NO_FLUSH);
  }
  Status finish() { return deflate_some({}, Z_FINISH); }
  std::string diff_id() { return diff_.finish(); }
  std::string digest() { return layer_.finish(); }
  [[nodiscard]] std::uint64_t size() const { return layer_.bytes(); }
  std::optional<Error> error;  // the first failure seen in the libarchive callback

 private:
  Status deflate_some(ByteView data, int flush) {
    z_.next_in = const_cast<Bytef*>(data.data());  // zlib does not write through next_in
    z_.avail_in = static_cast<uInt>(data.size());
    int rc = Z_OK;
    do {
      z_.next_out = out_buf_.data();
      z_.avail_out = static_cast<uInt>(out_buf_.size());
      rc = deflate(&z_, flush);
      if (rc == Z_STREAM_ERROR) return make_error("io_error", "gzip compression failed");
      ByteView chunk(out_buf_.data(), out_buf_.size() - z_.avail_out);
      layer_.update(chunk);
      COFFER_TRY_STATUS(out_.write(chunk));
    } while (z_.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
    return ok();
  }

  TempFile& out_;
  std::vector<std::uint8_t> out_buf_;
  z_stream z_{};
  bool ok_ = false;
  Sha256Digester diff_;
  Sha256Digester layer_;
};

la_ssize_t archive_write_cb(struct archive* /*a*/, void* ctx, const void* buf, size_t n) {
  auto* w = static_cast<LayerWriter*>(ctx);
  if (auto s = w->write(ByteView(static_cast<const std::uint8_t*>(buf), n)); !s) {
    if (!w->error) w->error = s.error();
    return -1;
  }
  return static_cast<la_ssize_t>(n);
}

// Copies `size` bytes of a file's content into the archive: from the tar spool or from the
// input directory (which must not change meanwhile).
Status write_content(struct archive* a, const Entry& e, int spool_fd,
                     std::vector<std::uint8_t>& buf) {
  int fd = spool_fd;
  std::optional<Fd> own;
  if (spool_fd < 0) {
    own.emplace(::open(e.source.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    fd = own->get();
    if (fd < 0) return sys_error("reading " + e.source.string());
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        static_cast<std::uint64_t>(st.st_size) != e.size) {
      return make_error("input_changed",
                        e.source.string() + " changed while the image was built; build again");
    }
  }
  std::uint64_t done = 0;
  while (done < e.size) {
    auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), e.size - done));
    auto n = ::pread(fd, buf.data(), want, static_cast<off_t>(e.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error("reading " + (spool_fd < 0 ? e.source.string() : e.path));
    if (n == 0) {
      return make_error("input_changed", e.path + " became shorter while the image was built");
    }
    if (archive_write_data(a, buf.data(), static_cast<std::size_t>(n)) != n) {
      return make_error("io_error", std::string("tar: ") + archive_error_string(a));
    }
    done += static_cast<std::uint64_t>(n);
  }
  return ok();
}

Status write_tar(const std::vector<Entry>& entries, std::int64_t mtime, int spool_fd,
                 LayerWriter& writer) {
  ArchivePtr a(archive_write_new(), archive_write_free);
  // pax extended headers only where ustar cannot hold a value (long names, big files)
  archive_write_set_format_pax_restricted(a.get());
  archive_write_add_filter_none(a.get());
  if (archive_write_open2(a.get(), &writer, nullptr, archive_write_cb, nullptr, nullptr) !=
      ARCHIVE_OK) {
    return make_error("io_error", std::string("tar: ") + archive_error_string(a.get()));
  }
  auto failed = [&](const std::string& what) -> std::unexpected<Error> {
    if (writer.error) return std::unexpected(*writer.error);
    return make_error("io_error", "tar: " + what + ": " + archive_error_string(a.get()));
  };
  std::vector<std::uint8_t> buf(kStreamBufferSize);
  EntryPtr ae(archive_entry_new(), archive_entry_free);
  for (const auto& e : entries) {
    archive_entry_clear(ae.get());
    // directories end in '/', as the tars of docker and buildkit do
    archive_entry_copy_pathname(ae.get(), (e.kind == Kind::kDir ? e.path + "/" : e.path).c_str());
    archive_entry_set_uid(ae.get(), 0);
    archive_entry_set_gid(ae.get(), 0);
    archive_entry_set_mtime(ae.get(), mtime, 0);
    switch (e.kind) {
      case Kind::kFile:
        archive_entry_set_filetype(ae.get(), AE_IFREG);
        archive_entry_set_size(ae.get(), static_cast<la_int64_t>(e.size));
        break;
      case Kind::kDir:
        archive_entry_set_filetype(ae.get(), AE_IFDIR);
        break;
      case Kind::kSymlink:
        archive_entry_set_filetype(ae.get(), AE_IFLNK);
        archive_entry_copy_symlink(ae.get(), e.link.c_str());
        break;
      case Kind::kHardlink:
        archive_entry_set_filetype(ae.get(), AE_IFREG);
        archive_entry_copy_hardlink(ae.get(), e.link.c_str());
        archive_entry_set_size(ae.get(), 0);
        break;
    }
    // a symlink's mode means nothing on Linux and tools disagree on it (0777, 0644): fixed
    archive_entry_set_perm(ae.get(), e.kind == Kind::kSymlink ? 0777 : e.mode);
    if (archive_write_header(a.get(), ae.get()) < ARCHIVE_WARN) return failed(e.path);
    if (e.kind == Kind::kFile && e.size > 0) {
      if (auto s = write_content(a.get(), e, spool_fd, buf); !s) {
        if (writer.error) return std::unexpected(*writer.error);
        return s;
      }
    }
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) return failed("closing");
  return writer.finish();
}

Bytes image_config(const BuildOptions& o, const std::string& diff_id) {
  std::string created = format_rfc3339(from_unix_seconds(o.timestamp));
  Json run = Json::object();
  const BuildConfig& c = o.config;
  if (c.entrypoint) run["Entrypoint"] = *c.entrypoint;
  if (c.cmd) run["Cmd"] = *c.cmd;
  if (!c.env.empty()) run["Env"] = c.env;
  if (!c.working_dir.empty()) run["WorkingDir"] = c.working_dir;
  if (!c.user.empty()) run["User"] = c.user;
  if (!c.labels.empty()) run["Labels"] = c.labels;
  Json j{{"created", created},
         {"architecture", o.platform.architecture},
         {"os", o.platform.os},
         {"config", run},
         {"rootfs", {{"type", "layers"}, {"diff_ids", Json::array({diff_id})}}},
         {"history", Json::array({{{"created", created}, {"created_by", "coffer image build"}}})}};
  if (!o.platform.variant.empty()) j["variant"] = o.platform.variant;
  return to_bytes(j.dump());  // nlohmann::json objects keep their keys sorted
}

Status put_bytes(ImageDestination& dst, const Descriptor& d, const Bytes& data) {
  if (COFFER_TRY(dst.has_blob(d))) return ok();
  MemoryReader r(data);
  return dst.put_blob(d, r);
}

}  // namespace

Result<BuildResult> build_image(const BuildOptions& o, ImageDestination& destination) {
  if (o.from_dir.empty() == o.from_tar.empty()) {
    return make_error("bad_argument", "give exactly one input: a directory or a tar archive");
  }
  // up to the year 9999: the config's "created" stays RFC 3339
  if (o.timestamp < 0 || o.timestamp > 253402300799) {
    return make_error("bad_argument",
                      "the timestamp " + std::to_string(o.timestamp) +
                          " is out of range (0 to 253402300799 seconds since the epoch)");
  }
  if (o.platform.os.empty() || o.platform.architecture.empty()) {
    return make_error("bad_platform", "the image needs an os and an architecture");
  }
  fs::path spool_dir = o.spool_dir;
  if (spool_dir.empty()) spool_dir = destination.spool_dir();
  if (spool_dir.empty()) spool_dir = default_spool_dir();

  Budget budget(o);
  std::vector<Entry> entries;
  std::optional<TempFile> tar_spool;
  if (!o.from_dir.empty()) {
    entries = COFFER_TRY(read_dir(o.from_dir, budget));
  } else {
    auto in = COFFER_TRY(read_tar(o.from_tar, spool_dir, budget));
    entries = std::move(in.entries);
    tar_spool = std::move(in.spool);
  }
  normalise_links(entries);

  std::optional<Fd> spool_fd;
  if (tar_spool) {
    spool_fd.emplace(::open(tar_spool->path().c_str(), O_RDONLY | O_CLOEXEC));
    if (spool_fd->get() < 0) return sys_error("reading back " + tar_spool->path().string());
  }
  auto layer_file = COFFER_TRY(TempFile::create(spool_dir));
  LayerWriter writer(layer_file);
  COFFER_TRY_STATUS(write_tar(entries, o.timestamp, spool_fd ? spool_fd->get() : -1, writer));

  BuildResult r;
  r.diff_id = writer.diff_id();
  r.layer.media_type = std::string(media_type::kOciLayerGzip);
  r.layer.size = static_cast<std::int64_t>(writer.size());
  r.layer.digest = writer.digest();
  auto config = image_config(o, r.diff_id);
  r.config.media_type = std::string(media_type::kOciConfig);
  r.config.digest = sha256_digest(config);
  r.config.size = static_cast<std::int64_t>(config.size());
  Manifest m;
  m.media_type = std::string(media_type::kOciManifest);
  m.config = r.config;
  m.layers.push_back(r.layer);
  r.manifest = m.serialize();
  r.manifest_digest = sha256_digest(r.manifest);

  if (!COFFER_TRY(destination.has_blob(r.layer))) {
    COFFER_TRY_STATUS(destination.put_blob_file(r.layer, layer_file));
  }
  if (o.progress) {
    o.progress(LayerProgress{.index = 0,
                             .count = 1,
                             .digest = r.layer.digest,
                             .bytes = writer.size(),
                             .total = r.layer.size,
                             .done = true,
                             .action = "build"});
  }
  COFFER_TRY_STATUS(put_bytes(destination, r.config, config));
  COFFER_TRY_STATUS(
      destination.put_manifest(r.manifest, media_type::kOciManifest, destination.tag()));
  return r;
}

}  // namespace coffer::oci
