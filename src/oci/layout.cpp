#include "oci/layout.h"

#include <sys/stat.h>

#include <system_error>

#include "core/file.h"
#include "crypto/random.h"

namespace coffer::oci {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kLayoutFile = R"({"imageLayoutVersion":"1.0.0"})";

// Identity and change times of an open file.
struct FileStamp {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  timespec mtime{};
  timespec ctime{};
  bool operator==(const FileStamp& o) const {
    return dev == o.dev && ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
           mtime.tv_nsec == o.mtime.tv_nsec && ctime.tv_sec == o.ctime.tv_sec &&
           ctime.tv_nsec == o.ctime.tv_nsec;
  }
};

std::optional<FileStamp> stamp_of(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return std::nullopt;
  return FileStamp{st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim};
}

// The second read of a blob file whose first read was verified: instead of hashing it again,
// its end fails if the file was written to since (mtime/ctime/size moved).
class ReverifiedFileReader final : public Reader {
 public:
  ReverifiedFileReader(std::unique_ptr<FileReader> file, FileStamp stamp, std::string digest)
      : file_(std::move(file)), stamp_(stamp), digest_(std::move(digest)) {}
  Result<std::size_t> read(std::span<std::uint8_t> buffer) override {
    std::size_t n = COFFER_TRY(file_->read(buffer));
    if (n == 0 && stamp_of(file_->fd()) != stamp_) {
      return make_error("digest_mismatch", "blob " + digest_ + " changed while it was read");
    }
    return n;
  }
  Status rewind() override { return file_->rewind(); }
  [[nodiscard]] std::int64_t size() const override { return file_->size(); }

 private:
  std::unique_ptr<FileReader> file_;
  FileStamp stamp_;
  std::string digest_;
};

class LayoutSource final : public ImageSource {
 public:
  LayoutSource(OciLayout layout, std::string tag)
      : layout_(std::move(layout)), tag_(std::move(tag)) {}

  Result<RawManifest> manifest() override {
    auto d = COFFER_TRY(layout_.resolve(tag_));
    auto raw = COFFER_TRY(manifest_by_digest(d.digest));
    if (!d.media_type.empty()) raw.media_type = d.media_type;
    return raw;
  }

  Result<RawManifest> manifest_by_digest(const std::string& digest) override {
    COFFER_TRY_STATUS(validate_digest(digest));
    auto data = COFFER_TRY(read_file(layout_.blob_path(digest), kMaxManifestBytes));
    if (sha256_digest(data) != digest) {
      return make_error("digest_mismatch", "manifest blob " + digest + " in " +
                                               layout_.dir().string() + " is corrupted");
    }
    auto j = parse_json(to_string(data));
    std::string mt = j && j->is_object() ? j->value("mediaType", "") : "";
    return RawManifest{std::move(data), mt, digest};
  }

  Result<std::optional<RawManifest>> manifest_by_tag(const std::string& tag) override {
    auto d = layout_.resolve(tag);
    if (!d) {
      if (d.error().code == "not_found") return std::optional<RawManifest>{};
      return std::unexpected(d.error());
    }
    return std::optional<RawManifest>(COFFER_TRY(manifest_by_digest(d->digest)));
  }

  Result<std::unique_ptr<Reader>> blob(const Descriptor& d) override {
    auto file = COFFER_TRY(open_blob(d));
    return std::unique_ptr<Reader>(std::make_unique<VerifyingReader>(std::move(file), d));
  }

  // Two reads of the same open file: the first verifies digest and size and feeds the
  // observer; the second (returned) is refused at its end if the file changed meanwhile. A
  // layout is local storage of the user running us; a writer racing both reads is out of scope.
  Result<std::unique_ptr<Reader>> blob_observed(const Descriptor& d,
                                                StreamObserver& observer) override {
    auto file = COFFER_TRY(open_blob(d));
    auto before = stamp_of(file->fd());
    if (!before) return make_error("io_error", "cannot stat blob " + d.digest);
    DigestChecker checker(d.digest, d.size);
    observer.reset();
    COFFER_TRY(pump(*file, [&](ByteView chunk) -> Status {
      checker.update(chunk);
      if (checker.over_size()) {
        return make_error("size_mismatch", "blob " + d.digest + " is larger than described");
      }
      observer.update(chunk);
      return ok();
    }));
    COFFER_TRY_STATUS(checker.finish());
    if (stamp_of(file->fd()) != before) {
      return make_error("digest_mismatch", "blob " + d.digest + " changed while it was read");
    }
    COFFER_TRY_STATUS(file->rewind());
    return std::unique_ptr<Reader>(
        std::make_unique<ReverifiedFileReader>(std::move(file), *before, d.digest));
  }

  [[nodiscard]] std::string describe() const override {
    return "oci:" + layout_.dir().string() + (tag_.empty() ? "" : ":" + tag_);
  }
  [[nodiscard]] bool concurrent_blobs() const override { return true; }

 private:
  Result<std::unique_ptr<FileReader>> open_blob(const Descriptor& d) const {
    COFFER_TRY_STATUS(validate_digest(d.digest));
    auto file = FileReader::open(layout_.blob_path(d.digest));
    if (!file) {
      if (file.error().code == "not_found") {
        return make_error("blob_unknown",
                          "blob " + d.digest + " is missing from " + layout_.dir().string());
      }
      return std::unexpected(file.error());
    }
    return file;
  }

  OciLayout layout_;
  std::string tag_;
};

class LayoutDestination final : public ImageDestination {
 public:
  LayoutDestination(OciLayout layout, std::string tag)
      : layout_(std::move(layout)), tag_(std::move(tag)), final_dir_(layout_.dir()) {}
  // A staged new layout: written in `layout` (a sibling directory), renamed to `final_dir` by
  // commit(), removed unless committed.
  LayoutDestination(OciLayout layout, std::string tag, fs::path final_dir)
      : layout_(std::move(layout)),
        tag_(std::move(tag)),
        final_dir_(std::move(final_dir)),
        staged_(true) {}
  ~LayoutDestination() override {
    if (staged_) {
      std::error_code ec;
      fs::remove_all(layout_.dir(), ec);
    }
  }
  LayoutDestination(const LayoutDestination&) = delete;
  LayoutDestination& operator=(const LayoutDestination&) = delete;

  Status commit() override {
    if (!staged_) return ok();
    std::error_code ec;
    // rename(2) replaces an empty directory and refuses a non-empty one.
    fs::rename(layout_.dir(), final_dir_, ec);
    if (ec) {
      return make_error("io_error",
                        "moving the new layout into " + final_dir_.string() + ": " + ec.message());
    }
    staged_ = false;
    layout_ = COFFER_TRY(OciLayout::open(final_dir_));
    return ok();
  }
  [[nodiscard]] fs::path spool_dir() const override { return layout_.dir() / "blobs" / "sha256"; }

  Result<bool> has_blob(const Descriptor& d) override {
    COFFER_TRY_STATUS(validate_digest(d.digest));
    std::error_code ec;
    return fs::exists(layout_.blob_path(d.digest), ec);
  }

  Status put_blob(const Descriptor& d, Reader& content) override {
    return layout_.put_blob(d, content);
  }
  Status put_blob_file(const Descriptor& d, TempFile& file) override {
    return layout_.put_blob_file(d, file);
  }

  Status put_manifest(ByteView data, std::string_view media_type, const std::string& tag) override {
    auto digest = COFFER_TRY(layout_.put_bytes(data));
    if (tag.empty()) return ok();
    Descriptor d{.media_type = std::string(media_type),
                 .digest = digest,
                 .size = static_cast<std::int64_t>(data.size())};
    return layout_.tag_manifest(d, tag);
  }

  [[nodiscard]] std::string tag() const override { return tag_; }
  [[nodiscard]] std::string describe() const override {
    return "oci:" + final_dir_.string() + (tag_.empty() ? "" : ":" + tag_);
  }
  [[nodiscard]] bool concurrent_blobs() const override { return true; }

 private:
  OciLayout layout_;
  std::string tag_;
  fs::path final_dir_;
  bool staged_ = false;
};

}  // namespace

Result<OciLayout> OciLayout::open(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return make_error("not_found", "OCI layout directory " + dir.string() + " does not exist");
  }
  auto text = read_text_file(dir / "oci-layout", 4096);
  if (!text) {
    return make_error("bad_layout", dir.string() + " is not an OCI layout (no oci-layout file)");
  }
  auto j = parse_json(*text);
  if (!j || !j->is_object() || j->value("imageLayoutVersion", "") != "1.0.0") {
    return make_error("bad_layout", dir.string() + "/oci-layout is not imageLayoutVersion 1.0.0");
  }
  return OciLayout(dir);
}

Result<OciLayout> OciLayout::open_or_create(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir / "oci-layout", ec)) return open(dir);
  fs::create_directories(dir / "blobs" / "sha256", ec);
  if (ec) return make_error("io_error", "creating " + dir.string() + ": " + ec.message());
  COFFER_TRY_STATUS(write_file_atomic(dir / "oci-layout", as_bytes(kLayoutFile)));
  OciLayout layout(dir);
  if (!fs::exists(dir / "index.json", ec)) {
    COFFER_TRY_STATUS(layout.write_index(Index{.media_type = std::string(media_type::kOciIndex)}));
  }
  return layout;
}

fs::path OciLayout::blob_path(const std::string& digest) const {
  auto colon = digest.find(':');
  return dir_ / "blobs" / digest.substr(0, colon) / digest.substr(colon + 1);
}

Result<Index> OciLayout::read_index() const {
  auto data = COFFER_TRY(read_file(dir_ / "index.json", kMaxManifestBytes));
  auto idx = parse_index(data);
  if (!idx) return make_error("bad_layout", dir_.string() + "/index.json: " + idx.error().message);
  return idx;
}

Status OciLayout::write_index(const Index& index) const {
  Index copy = index;
  if (copy.media_type.empty()) copy.media_type = media_type::kOciIndex;
  return write_file_atomic(dir_ / "index.json", copy.serialize());
}

Result<Descriptor> OciLayout::resolve(const std::string& tag) const {
  auto idx = COFFER_TRY(read_index());
  if (tag.empty()) {
    if (idx.manifests.size() == 1) return idx.manifests.front();
    return make_error(idx.manifests.empty() ? "not_found" : "ambiguous_reference",
                      dir_.string() + " holds " + std::to_string(idx.manifests.size()) +
                          " images; name one as oci:" + dir_.string() + ":TAG");
  }
  for (const auto& d : idx.manifests) {
    auto it = d.annotations.find(std::string(kRefNameAnnotation));
    if (it != d.annotations.end() && it->second == tag) return d;
  }
  return make_error("not_found", "no image tagged '" + tag + "' in " + dir_.string());
}

Status OciLayout::put_blob(const Descriptor& d, Reader& content) const {
  COFFER_TRY_STATUS(validate_digest(d.digest));
  auto target = blob_path(d.digest);
  std::error_code ec;
  if (fs::exists(target, ec)) return ok();
  fs::create_directories(target.parent_path(), ec);
  auto tmp = COFFER_TRY(TempFile::create(target.parent_path()));
  DigestChecker checker(d.digest, d.size);
  COFFER_TRY(pump(content, [&](ByteView chunk) -> Status {
    checker.update(chunk);
    if (checker.over_size()) return make_error("size_mismatch", "blob larger than described");
    return tmp.write(chunk);
  }));
  COFFER_TRY_STATUS(checker.finish());
  return tmp.commit(target);
}

Status OciLayout::put_blob_file(const Descriptor& d, TempFile& file) const {
  COFFER_TRY_STATUS(validate_digest(d.digest));
  auto target = blob_path(d.digest);
  std::error_code ec;
  if (fs::exists(target, ec)) return ok();
  fs::create_directories(target.parent_path(), ec);
  struct stat spooled {};
  struct stat blobs {};
  bool same_fs = ::stat(file.path().c_str(), &spooled) == 0 &&
                 ::stat(target.parent_path().c_str(), &blobs) == 0 &&
                 spooled.st_dev == blobs.st_dev;
  if (same_fs && d.size >= 0 && file.written() == static_cast<std::uint64_t>(d.size)) {
    return file.commit(target);
  }
  auto reader = COFFER_TRY(file.reader());
  return put_blob(d, *reader);
}

Result<std::string> OciLayout::put_bytes(ByteView data) const {
  auto digest = sha256_digest(data);
  MemoryReader r(Bytes(data.begin(), data.end()));
  COFFER_TRY_STATUS(
      put_blob(Descriptor{.digest = digest, .size = static_cast<std::int64_t>(data.size())}, r));
  return digest;
}

Status OciLayout::tag_manifest(const Descriptor& manifest, const std::string& tag) const {
  auto idx = COFFER_TRY(read_index());
  Descriptor entry = manifest;
  entry.annotations[std::string(kRefNameAnnotation)] = tag;
  std::erase_if(idx.manifests, [&](const Descriptor& d) {
    auto it = d.annotations.find(std::string(kRefNameAnnotation));
    return it != d.annotations.end() && it->second == tag;
  });
  idx.manifests.push_back(entry);
  return write_index(idx);
}

std::unique_ptr<ImageSource> make_layout_source(OciLayout layout, std::string tag) {
  return std::make_unique<LayoutSource>(std::move(layout), std::move(tag));
}

std::unique_ptr<ImageDestination> make_layout_destination(OciLayout layout, std::string tag) {
  return std::make_unique<LayoutDestination>(std::move(layout), std::move(tag));
}

Result<std::unique_ptr<ImageDestination>> open_layout_destination(const fs::path& dir,
                                                                  std::string tag) {
  std::error_code ec;
  bool is_new = !fs::exists(dir, ec) || (fs::is_directory(dir, ec) && fs::is_empty(dir, ec));
  if (!is_new) {
    auto layout = COFFER_TRY(OciLayout::open_or_create(dir));
    return make_layout_destination(std::move(layout), std::move(tag));
  }
  // A new layout is built next to its final place and appears only complete (commit()).
  fs::path final_dir = fs::absolute(dir).lexically_normal();
  if (!final_dir.has_filename()) final_dir = final_dir.parent_path();
  fs::create_directories(final_dir.parent_path(), ec);
  fs::path staging = final_dir.parent_path() / ("." + final_dir.filename().string() +
                                                ".coffer-staging-" + crypto::random_uuid_hex());
  auto layout = OciLayout::open_or_create(staging);
  if (!layout) {
    fs::remove_all(staging, ec);
    return std::unexpected(layout.error());
  }
  return std::unique_ptr<ImageDestination>(
      std::make_unique<LayoutDestination>(std::move(*layout), std::move(tag), final_dir));
}

}  // namespace coffer::oci
