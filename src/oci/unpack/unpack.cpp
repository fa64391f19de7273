#include "oci/unpack/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <algorithm>
#include <future>
#include <system_error>

#include "core/file.h"
#include "crypto/random.h"
#include "oci/unpack/decompress.h"

namespace coffer::oci::unpack {

void remove_all_forcibly(const std::filesystem::path& p) {
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(p, ec);
       !ec && it != std::filesystem::end(it); it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) {
      std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all,
                                   std::filesystem::perm_options::add, ec);
    }
  }
  std::filesystem::remove_all(p, ec);
}

namespace {

namespace fs = std::filesystem;

// Hashes what passes through and fails the final read on a diff_id mismatch.
class DiffIdReader final : public Reader {
 public:
  DiffIdReader(Reader& in, std::string expected) : in_(in), checker_(std::move(expected), -1) {}
  Result<std::size_t> read(std::span<std::uint8_t> b) override {
    std::size_t n = COFFER_TRY(in_.read(b));
    if (n == 0) {
      if (!done_) {
        auto st = checker_.finish();
        if (!st) return make_error("diff_id_mismatch", "uncompressed layer: " + st.error().message);
        done_ = true;
      }
      return std::size_t{0};
    }
    checker_.update(ByteView(b.data(), n));
    return n;
  }

 private:
  Reader& in_;
  DigestChecker checker_;
  bool done_ = false;
};

struct ArchiveSource {
  Reader* reader;
  std::vector<std::uint8_t> buffer = std::vector<std::uint8_t>(kStreamBufferSize);
  std::optional<Error> error;
};

la_ssize_t archive_read_cb(struct archive* a, void* data, const void** out) {
  auto* src = static_cast<ArchiveSource*>(data);
  auto n = src->reader->read(src->buffer);
  if (!n) {
    src->error = n.error();
    archive_set_error(a, EIO, "%s", n.error().message.c_str());
    return -1;
  }
  *out = src->buffer.data();
  return static_cast<la_ssize_t>(*n);
}

// The current entry's data blocks out of libarchive, at their offsets (sparse files: holes
// between them).
class EntryData final : public FileData {
 public:
  EntryData(struct archive* a, const ArchiveSource& src) : a_(a), src_(src) {}
  Result<std::optional<Block>> next() override {
    const void* buf = nullptr;
    std::size_t size = 0;
    la_int64_t offset = 0;
    int rc = archive_read_data_block(a_, &buf, &size, &offset);
    if (rc == ARCHIVE_EOF) return std::optional<Block>();
    if (rc < ARCHIVE_WARN || offset < 0) {
      if (src_.error) return std::unexpected(*src_.error);
      return make_error("corrupt_layer", std::string("tar: ") + archive_error_string(a_));
    }
    return Block{.offset = static_cast<std::uint64_t>(offset),
                 .bytes = ByteView(static_cast<const std::uint8_t*>(buf), size)};
  }

 private:
  struct archive* a_;
  const ArchiveSource& src_;
};

// Uncompressed bytes counted against the per-layer and per-image limits.
class SizeBudget {
 public:
  explicit SizeBudget(const UnpackOptions& o)
      : max_layer_(o.max_layer_bytes), max_image_(o.max_image_bytes) {}
  void begin_layer() { layer_ = 0; }
  // Bytes that may still come before the first limit is passed.
  [[nodiscard]] std::uint64_t room() const {
    return std::min(max_layer_ - std::min(layer_, max_layer_),
                    max_image_ - std::min(image_, max_image_));
  }
  Status charge(std::uint64_t n) {
    layer_ = saturating_add(layer_, n);
    image_ = saturating_add(image_, n);
    if (layer_ > max_layer_) {
      return make_error("layer_too_large",
                        "the layer expands to more than " + human(max_layer_) +
                            " uncompressed (the per-layer limit; sparse files count at their "
                            "apparent size); if you trust this image, raise the limit with "
                            "--max-layer-size");
    }
    if (image_ > max_image_) {
      return make_error("image_too_large",
                        "the layers expand to more than " + human(max_image_) +
                            " uncompressed together (the per-image limit; sparse files count at "
                            "their apparent size); if you trust this image, raise the limit with "
                            "--max-image-size");
    }
    return ok();
  }

 private:
  static std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
  }
  static std::string human(std::uint64_t n) {
    std::string s = std::to_string(n) + " bytes";
    if (n >= (1u << 20) && n % (1u << 20) == 0) {
      s += n % (std::uint64_t{1} << 30) == 0 ? " (" + std::to_string(n >> 30) + " GiB)"
                                             : " (" + std::to_string(n >> 20) + " MiB)";
    }
    return s;
  }
  std::uint64_t max_layer_, max_image_;
  std::uint64_t layer_ = 0, image_ = 0;
};

// Counts the decompressed stream against the budget and fails at the first byte past it
// (never asking the decompressor for more than one byte beyond the room left).
class LimitedReader final : public Reader {
 public:
  LimitedReader(Reader& in, SizeBudget& budget) : in_(in), budget_(budget) {}
  Result<std::size_t> read(std::span<std::uint8_t> b) override {
    std::uint64_t room = budget_.room();
    if (b.size() > room) b = b.first(static_cast<std::size_t>(room) + 1);
    std::size_t n = COFFER_TRY(in_.read(b));
    COFFER_TRY_STATUS(budget_.charge(n));
    return n;
  }

 private:
  Reader& in_;
  SizeBudget& budget_;
};

// A sparse file's holes: its apparent size beyond the data its map stores.
std::uint64_t hole_bytes(struct archive_entry* e) {
  if (archive_entry_sparse_reset(e) == 0) return 0;
  auto size = static_cast<std::uint64_t>(std::max<la_int64_t>(archive_entry_size(e), 0));
  std::uint64_t stored = 0;
  la_int64_t offset = 0, length = 0;
  while (stored < size && archive_entry_sparse_next(e, &offset, &length) == ARCHIVE_OK) {
    if (length > 0) stored += std::min(static_cast<std::uint64_t>(length), size - stored);
  }
  return size - stored;
}

Result<TreeEntry> to_tree_entry(struct archive_entry* e) {
  TreeEntry t;
  const char* path = archive_entry_pathname(e);
  if (path == nullptr) return make_error("corrupt_layer", "tar entry without a name");
  t.path = path;
  if (const char* hl = archive_entry_hardlink(e)) {
    t.type = EntryType::kHardlink;
    t.link = hl;
  } else {
    switch (archive_entry_filetype(e)) {
      case AE_IFREG:
        t.type = EntryType::kFile;
        break;
      case AE_IFDIR:
        t.type = EntryType::kDir;
        break;
      case AE_IFLNK:
        t.type = EntryType::kSymlink;
        t.link = archive_entry_symlink(e) ? archive_entry_symlink(e) : "";
        break;
      case AE_IFCHR:
        t.type = EntryType::kCharDev;
        break;
      case AE_IFBLK:
        t.type = EntryType::kBlockDev;
        break;
      case AE_IFIFO:
        t.type = EntryType::kFifo;
        break;
      default:
        return make_error("unsupported_entry", "tar entry " + t.path + " has an unsupported type");
    }
  }
  t.mode = archive_entry_perm(e) | (archive_entry_mode(e) & 07000);
  t.uid = archive_entry_uid(e);
  t.gid = archive_entry_gid(e);
  t.mtime = archive_entry_mtime(e);
  t.mtime_nsec = static_cast<std::uint32_t>(archive_entry_mtime_nsec(e));
  t.rdev = archive_entry_rdev(e);
  if (archive_entry_size(e) < 0) {
    return make_error("corrupt_layer", "tar entry " + t.path + " has a negative size");
  }
  t.size = static_cast<std::uint64_t>(archive_entry_size(e));
  archive_entry_xattr_reset(e);
  const char* name = nullptr;
  const void* value = nullptr;
  std::size_t size = 0;
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    const auto* p = static_cast<const std::uint8_t*>(value);
    t.xattrs.emplace_back(name, Bytes(p, p + size));
  }
  return t;
}

Status apply_tar(Reader& tar, RootTree& tree, SizeBudget& budget) {
  std::unique_ptr<struct archive, int (*)(struct archive*)> a(archive_read_new(),
                                                              archive_read_free);
  archive_read_support_format_tar(a.get());
  ArchiveSource src{&tar};
  if (archive_read_open(a.get(), &src, nullptr, archive_read_cb, nullptr) != ARCHIVE_OK) {
    if (src.error) return std::unexpected(*src.error);
    return make_error("corrupt_layer", archive_error_string(a.get()));
  }
  struct archive_entry* e = nullptr;
  for (;;) {
    int rc = archive_read_next_header(a.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN) {
      if (src.error) return std::unexpected(*src.error);
      return make_error("corrupt_layer", std::string("tar: ") + archive_error_string(a.get()));
    }
    auto entry = COFFER_TRY(to_tree_entry(e));
    // Holes cost nothing to store but fill a disk that copies the tree: charged before writing.
    if (entry.type == EntryType::kFile) COFFER_TRY_STATUS(budget.charge(hole_bytes(e)));
    EntryData data(a.get(), src);
    COFFER_TRY_STATUS(tree.apply(entry, entry.type == EntryType::kFile ? &data : nullptr));
    if (src.error) return std::unexpected(*src.error);
  }
  // Drain what follows the end-of-archive marker so that digests cover the whole stream.
  std::vector<std::uint8_t> sink(64 * 1024);
  while (COFFER_TRY(tar.read(sink)) > 0) {
  }
  return ok();
}

class ScopedDir {
 public:
  explicit ScopedDir(fs::path p) : path_(std::move(p)) {}
  ~ScopedDir() {
    if (!path_.empty()) remove_all_forcibly(path_);
  }
  ScopedDir(const ScopedDir&) = delete;
  ScopedDir& operator=(const ScopedDir&) = delete;
  void release() { path_.clear(); }

 private:
  fs::path path_;
};

// Counts (and reports) the bytes handed on to the decompressor.
class CountingReader final : public Reader {
 public:
  CountingReader(Reader& in, LayerProgress& p, const ProgressFn& fn) : in_(in), p_(p), fn_(fn) {}
  Result<std::size_t> read(std::span<std::uint8_t> b) override {
    std::size_t n = COFFER_TRY(in_.read(b));
    p_.bytes += n;
    if (fn_ && n > 0) fn_(p_);
    return n;
  }

 private:
  Reader& in_;
  LayerProgress& p_;
  const ProgressFn& fn_;
};

// The layer's blob as the decompressor takes it. An encrypted layer is read to its end (while
// it is downloaded or spooled), its HMAC verified and only then decrypted (MAC first).
Result<std::unique_ptr<Reader>> open_layer(ImageSource& source, const Descriptor& layer,
                                           const UnpackOptions& o) {
  auto type = COFFER_TRY(classify_layer(layer.media_type));
  if (type.encrypted) return crypt::open_decrypted_layer(source, layer, o.decrypt);
  return source.blob(layer);
}

Status unpack_layer(Reader& blob, const Descriptor& layer, const std::string& diff_id,
                    RootTree& tree, SizeBudget& budget, const UnpackOptions& o, LayerProgress p) {
  auto type = COFFER_TRY(classify_layer(layer.media_type));
  CountingReader counted(blob, p, o.progress);
  auto plain = decompress_reader(type.compression, counted);
  budget.begin_layer();
  LimitedReader limited(*plain, budget);
  DiffIdReader checked(limited, diff_id);
  tree.begin_layer();
  COFFER_TRY_STATUS(apply_tar(checked, tree, budget));
  if (o.progress) {
    p.done = true;
    p.bytes = static_cast<std::uint64_t>(layer.size);
    o.progress(p);
  }
  return ok();
}

}  // namespace

Status unpack_image(ImageSource& source, const fs::path& target, const UnpackOptions& o) {
  auto pinned = COFFER_TRY(pin_image(source));
  return unpack_image(source, pinned, target, o);
}

Status unpack_image(ImageSource& source, const PinnedImage& pinned, const fs::path& target,
                    const UnpackOptions& o) {
  std::error_code ec;
  if (fs::exists(target, ec) && !(fs::is_directory(target, ec) && fs::is_empty(target, ec))) {
    return make_error("target_exists", target.string() + " already exists; choose a new directory");
  }
  auto image = COFFER_TRY(resolve_image(source, pinned, o.platform));
  if (o.require_encrypted_layers) COFFER_TRY_STATUS(require_encrypted_layers(image.manifest));
  auto config_bytes = COFFER_TRY(read_blob(source, image.manifest.config, kMaxConfigBytes));
  auto config = COFFER_TRY(parse_image_config(config_bytes));
  if (config.diff_ids.size() != image.manifest.layers.size()) {
    return make_error("layer_count_mismatch",
                      "the image has " + std::to_string(image.manifest.layers.size()) +
                          " layers but its config lists " + std::to_string(config.diff_ids.size()) +
                          " diff_ids");
  }
  fs::path parent = fs::absolute(target).parent_path();
  fs::create_directories(parent, ec);
  fs::path tmp = parent / (".coffer-unpack-" + crypto::random_uuid_hex());
  fs::path rootfs = o.bundle ? tmp / "rootfs" : tmp;
  if (!fs::create_directories(rootfs, ec)) {
    return make_error("io_error", "creating " + rootfs.string() + ": " + ec.message());
  }
  ScopedDir guard(tmp);
  {
    auto tree = COFFER_TRY(RootTree::open(rootfs, o.tree));
    SizeBudget budget(o);
    const auto& layers = image.manifest.layers;
    // The next layer's blob is fetched (for a registry: downloaded into a verified spool file;
    // if encrypted, its HMAC computed on the way and checked) while this one is decrypted and
    // unpacked. Only that thread uses `source` and `o.decrypt` meanwhile; a pending fetch is
    // waited for on every return path (the future's destructor).
    auto fetch = [&source, &layers, &o](std::size_t i) {
      return std::async(std::launch::async,
                        [&source, &layer = layers[i], &o] { return open_layer(source, layer, o); });
    };
    std::future<Result<std::unique_ptr<Reader>>> next;
    if (!layers.empty()) next = fetch(0);
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const auto& layer = layers[i];
      auto blob = next.get();
      if (i + 1 < layers.size()) next = fetch(i + 1);
      LayerProgress p{.index = i,
                      .count = layers.size(),
                      .digest = layer.digest,
                      .total = layer.size,
                      .action = "unpack"};
      auto st = blob ? unpack_layer(**blob, layer, config.diff_ids[i], tree, budget, o, p)
                     : Status(std::unexpected(blob.error()));
      if (!st)
        return wrap_error(st.error(), "layer " + std::to_string(i) + " (" + layer.digest + ")");
    }
    COFFER_TRY_STATUS(tree.finish());
  }
  if (o.bundle) {
    auto spec = COFFER_TRY(runtime_config(config, rootfs));
    COFFER_TRY_STATUS(write_file_atomic(tmp / "config.json", as_bytes(spec.dump(2))));
  }
  if (fs::exists(target, ec)) fs::remove(target, ec);  // the empty directory
  fs::rename(tmp, target, ec);
  if (ec)
    return make_error("io_error",
                      "moving the unpacked image into " + target.string() + ": " + ec.message());
  guard.release();
  return ok();
}

}  // namespace coffer::oci::unpack
