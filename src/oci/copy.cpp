#include "oci/copy.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

namespace coffer::oci {
namespace {

// Reports bytes as they stream past.
class ProgressReader final : public Reader {
 public:
  ProgressReader(Reader& inner, LayerProgress p, const ProgressFn& fn)
      : inner_(inner), p_(std::move(p)), fn_(fn) {}
  Result<std::size_t> read(std::span<std::uint8_t> buffer) override {
    std::size_t n = COFFER_TRY(inner_.read(buffer));
    p_.bytes += n;
    if (fn_ && n > 0) fn_(p_);
    return n;
  }
  Status rewind() override {
    p_.bytes = 0;
    return inner_.rewind();
  }
  [[nodiscard]] std::int64_t size() const override { return inner_.size(); }

 private:
  Reader& inner_;
  LayerProgress p_;
  const ProgressFn& fn_;
};

void report(const CopyOptions& o, const LayerProgress& p) {
  if (o.progress) o.progress(p);
}

Status copy_blob(ImageSource& src, ImageDestination& dst, const Descriptor& d, const CopyOptions& o,
                 LayerProgress p) {
  p.digest = d.digest;
  p.total = d.size;
  if (COFFER_TRY(dst.has_blob(d))) {
    p.action = "skip";
  } else if (COFFER_TRY(dst.try_mount(d, src))) {
    p.action = "mount";
  } else {
    p.action = "copy";
    auto reader = COFFER_TRY(src.blob(d));
    ProgressReader pr(*reader, p, o.progress);
    COFFER_TRY_STATUS(dst.put_blob(d, pr));
  }
  p.bytes = static_cast<std::uint64_t>(d.size);
  p.done = true;
  report(o, p);
  return ok();
}

Result<CopyResult> copy_manifest(ImageSource& src, ImageDestination& dst, const RawManifest& raw,
                                 const CopyOptions& o, const std::string& tag) {
  Manifest m = COFFER_TRY(parse_manifest(raw.data));
  if (o.require_encrypted_layers) COFFER_TRY_STATUS(require_encrypted_layers(m));
  COFFER_TRY_STATUS(
      copy_blob(src, dst, m.config, o, LayerProgress{.action = "config", .is_config = true}));
  std::filesystem::path spool = o.spool_dir;
  if (spool.empty()) spool = dst.spool_dir();
  if (spool.empty()) spool = default_spool_dir();
  bool changed = false;
  // Transforms one layer; false if the transform kept it unchanged.
  auto transform_layer = [&](std::size_t i, const ProgressFn& progress) -> Result<bool> {
    const Descriptor layer = m.layers[i];
    LayerProgress p{.index = i,
                    .count = m.layers.size(),
                    .digest = layer.digest,
                    .total = layer.size,
                    .action = o.action_name};
    // The stream handed out is wrapped for progress; `held` keeps the source's reader alive.
    std::unique_ptr<Reader> held;
    auto wrap = [&](Result<std::unique_ptr<Reader>> r) -> Result<std::unique_ptr<Reader>> {
      if (!r) return std::unexpected(r.error());
      held = std::move(*r);
      return std::unique_ptr<Reader>(std::make_unique<ProgressReader>(*held, p, progress));
    };
    LayerInput input{
        .open = [&] { return wrap(src.blob(layer)); },
        .open_observed =
            [&](StreamObserver& observer) { return wrap(src.blob_observed(layer, observer)); },
        .spool_dir = spool};
    auto t = COFFER_TRY(o.transform(layer, i, input));
    if (!t) return false;
    COFFER_TRY_STATUS(dst.put_blob_file(t->descriptor, t->content));
    m.layers[i] = t->descriptor;  // each worker writes its own element
    p.done = true;
    p.bytes = static_cast<std::uint64_t>(layer.size);
    if (progress) progress(p);
    return true;
  };
  std::vector<bool> transformed(m.layers.size(), false);
  std::vector<std::size_t> todo;
  for (std::size_t i = 0; i < m.layers.size(); ++i) {
    if (o.transform && (!o.wants_transform || o.wants_transform(m.layers[i]))) todo.push_back(i);
  }
  // Layers are independent: between layouts, transform several at once (one per core).
  std::size_t workers = 1;
  if (src.concurrent_blobs() && dst.concurrent_blobs()) {
    workers = std::clamp<std::size_t>(std::thread::hardware_concurrency(), 1, 4);
    workers = std::min(workers, todo.size());
  }
  std::mutex progress_mutex;
  ProgressFn progress = o.progress;
  if (workers > 1 && o.progress) {
    progress = [&](const LayerProgress& p) {
      std::lock_guard lock(progress_mutex);
      o.progress(p);
    };
  }
  std::vector<Result<bool>> results(todo.size(), false);
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t k = next++; k < todo.size(); k = next++) {
      results[k] = transform_layer(todo[k], progress);
      if (!results[k]) next = todo.size();  // stop handing out work after a failure
    }
  };
  std::vector<std::thread> threads;
  for (std::size_t w = 1; w < workers; ++w) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  for (std::size_t k = 0; k < todo.size(); ++k) {
    if (!results[k]) return std::unexpected(results[k].error());
    transformed[todo[k]] = *results[k];
    changed |= *results[k];
  }
  for (std::size_t i = 0; i < m.layers.size(); ++i) {
    if (transformed[i]) continue;
    LayerProgress p{.index = i,
                    .count = m.layers.size(),
                    .digest = m.layers[i].digest,
                    .total = m.layers[i].size};
    COFFER_TRY_STATUS(copy_blob(src, dst, m.layers[i], o, p));
  }
  CopyResult result;
  if (changed) {
    bool oci_layers = false;
    for (const auto& l : m.layers) oci_layers |= l.media_type.starts_with("application/vnd.oci.");
    if (m.is_docker() && oci_layers) {
      // Encrypted layers only have OCI media types: convert the manifest as skopeo does.
      m.media_type = media_type::kOciManifest;
      m.config.media_type = media_type::kOciConfig;
      for (auto& l : m.layers) {
        if (auto t = classify_layer(l.media_type); t && t->docker) {
          l.media_type = layer_media_type(t->compression, t->encrypted);
        }
      }
    }
    result.manifest = m.serialize();
    result.media_type = m.media_type;
  } else {
    result.manifest = raw.data;
    result.media_type = raw.media_type.empty() ? m.media_type : raw.media_type;
  }
  result.manifest_digest = sha256_digest(result.manifest);
  COFFER_TRY_STATUS(dst.put_manifest(result.manifest, result.media_type, tag));
  return result;
}

Result<CopyResult> copy_pinned(ImageSource& source, ImageDestination& destination,
                               const PinnedImage& pinned, const CopyOptions& options) {
  const RawManifest& top = pinned.top;
  auto kind = COFFER_TRY(manifest_kind(top.data, top.media_type));
  const std::string tag = destination.tag();
  if (kind == ManifestKind::kManifest) return copy_manifest(source, destination, top, options, tag);
  auto index = COFFER_TRY(parse_index(top.data));
  if (options.all_platforms && !options.transform) {
    std::vector<RawManifest> children;
    for (const auto& d : index.manifests) {
      children.push_back(COFFER_TRY(source.manifest_by_digest(d.digest)));
      if (options.require_encrypted_layers) {
        COFFER_TRY_STATUS(
            require_encrypted_layers(COFFER_TRY(parse_manifest(children.back().data))));
      }
    }
    for (const auto& child : children) {
      COFFER_TRY(copy_manifest(source, destination, child, options, ""));
    }
    COFFER_TRY_STATUS(destination.put_manifest(top.data, top.media_type, tag));
    return CopyResult{top.digest, top.media_type, top.data};
  }
  auto chosen = COFFER_TRY(select_platform(index, options.platform));
  auto child = COFFER_TRY(source.manifest_by_digest(chosen.digest));
  return copy_manifest(source, destination, child, options, tag);
}

}  // namespace

Status require_encrypted_layers(const Manifest& m) {
  for (std::size_t i = 0; i < m.layers.size(); ++i) {
    if (!m.layers[i].media_type.ends_with(media_type::kEncryptedSuffix)) {
      return make_error("layer_not_encrypted",
                        "layer " + std::to_string(i) + " (" + m.layers[i].digest +
                            ") is not encrypted, and every layer of this image must be");
    }
  }
  return ok();
}

Result<CopyResult> copy_image(ImageSource& source, ImageDestination& destination,
                              const PinnedImage& pinned, const CopyOptions& options) {
  auto result = COFFER_TRY(copy_pinned(source, destination, pinned, options));
  COFFER_TRY_STATUS(destination.commit());
  return result;
}

Result<CopyResult> copy_image(ImageSource& source, ImageDestination& destination,
                              const CopyOptions& options) {
  auto pinned = COFFER_TRY(pin_image(source));
  return copy_image(source, destination, pinned, options);
}

}  // namespace coffer::oci
