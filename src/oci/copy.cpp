#include "oci/copy.h"

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

void report(const CopyOptions& o, LayerProgress p) {
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
  COFFER_TRY_STATUS(copy_blob(src, dst, m.config, o, LayerProgress{.action = "config"}));
  bool changed = false;
  for (std::size_t i = 0; i < m.layers.size(); ++i) {
    const Descriptor layer = m.layers[i];
    LayerProgress p{
        .index = i, .count = m.layers.size(), .digest = layer.digest, .total = layer.size};
    if (o.transform && (!o.wants_transform || o.wants_transform(layer))) {
      p.action = o.action_name;
      auto reader = COFFER_TRY(src.blob(layer));
      ProgressReader pr(*reader, p, o.progress);
      auto t = COFFER_TRY(o.transform(layer, i, pr));
      if (t) {
        COFFER_TRY_STATUS(dst.put_blob_file(t->descriptor, t->content));
        m.layers[i] = t->descriptor;
        changed = true;
        p.done = true;
        p.bytes = static_cast<std::uint64_t>(layer.size);
        report(o, p);
        continue;
      }
    }
    COFFER_TRY_STATUS(copy_blob(src, dst, layer, o, p));
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

}  // namespace

Result<CopyResult> copy_image(ImageSource& source, ImageDestination& destination,
                              const CopyOptions& options) {
  auto top = COFFER_TRY(source.manifest());
  auto kind = COFFER_TRY(manifest_kind(top.data, top.media_type));
  const std::string tag = destination.tag();
  if (kind == ManifestKind::kManifest) return copy_manifest(source, destination, top, options, tag);
  auto index = COFFER_TRY(parse_index(top.data));
  if (options.all_platforms && !options.transform) {
    for (const auto& d : index.manifests) {
      auto child = COFFER_TRY(source.manifest_by_digest(d.digest));
      COFFER_TRY(copy_manifest(source, destination, child, options, ""));
    }
    COFFER_TRY_STATUS(destination.put_manifest(top.data, top.media_type, tag));
    return CopyResult{top.digest, top.media_type, top.data};
  }
  auto chosen = COFFER_TRY(select_platform(index, options.platform));
  auto child = COFFER_TRY(source.manifest_by_digest(chosen.digest));
  return copy_manifest(source, destination, child, options, tag);
}

}  // namespace coffer::oci
