#include "oci/image.h"

namespace coffer::oci {

Result<std::size_t> VerifyingReader::read(std::span<std::uint8_t> buffer) {
  if (done_) return std::size_t{0};
  std::size_t n = COFFER_TRY(inner_->read(buffer));
  if (n == 0) {
    COFFER_TRY_STATUS(checker_.finish());
    done_ = true;
    return std::size_t{0};
  }
  checker_.update(ByteView(buffer.data(), n));
  if (checker_.over_size()) {
    return make_error("size_mismatch", "blob is larger than its descriptor says");
  }
  return n;
}

Status VerifyingReader::rewind() {
  COFFER_TRY_STATUS(inner_->rewind());
  checker_ = DigestChecker(desc_.digest, desc_.size);
  done_ = false;
  return ok();
}

Result<Bytes> read_blob(ImageSource& source, const Descriptor& d, std::size_t max_bytes) {
  if (d.size < 0 || static_cast<std::uint64_t>(d.size) > max_bytes) {
    return make_error("too_large", "blob " + d.digest + " of " + std::to_string(d.size) +
                                       " bytes exceeds the limit of " + std::to_string(max_bytes));
  }
  auto reader = COFFER_TRY(source.blob(d));
  return read_all(*reader, max_bytes);
}

Result<std::unique_ptr<Reader>> ImageSource::blob_observed(const Descriptor& d,
                                                           StreamObserver& observer) {
  auto reader = COFFER_TRY(blob(d));
  observer.reset();
  COFFER_TRY(pump(*reader, [&](ByteView chunk) -> Status {
    observer.update(chunk);
    return ok();
  }));
  // The first pass ended with the digest verified; the second verifies it again at its end.
  // Layouts and registries override this (one verified read, then the same open file again /
  // the download into a private spool file).
  COFFER_TRY_STATUS(reader->rewind());
  return reader;
}

Result<PinnedImage> pin_image(ImageSource& source) {
  return PinnedImage{COFFER_TRY(source.manifest())};
}

Result<ResolvedImage> resolve_image(ImageSource& source, const Platform& platform) {
  auto pinned = COFFER_TRY(pin_image(source));
  return resolve_image(source, pinned, platform);
}

Result<ResolvedImage> resolve_image(ImageSource& source, const PinnedImage& pinned,
                                    const Platform& platform) {
  ResolvedImage r;
  r.top = pinned.top;
  auto kind = COFFER_TRY(manifest_kind(r.top.data, r.top.media_type));
  if (kind == ManifestKind::kIndex) {
    r.index = COFFER_TRY(parse_index(r.top.data));
    auto chosen = COFFER_TRY(select_platform(*r.index, platform));
    r.manifest_raw = COFFER_TRY(source.manifest_by_digest(chosen.digest));
    if (manifest_kind(r.manifest_raw.data, r.manifest_raw.media_type) != ManifestKind::kManifest) {
      return make_error("bad_manifest", "index entry " + chosen.digest + " is not an image");
    }
  } else {
    r.manifest_raw = r.top;
  }
  r.manifest = COFFER_TRY(parse_manifest(r.manifest_raw.data));
  if (r.manifest_raw.media_type.empty()) r.manifest_raw.media_type = r.manifest.media_type;
  return r;
}

}  // namespace coffer::oci
