// Copying an image between transports, optionally transforming layers (encrypt, decrypt).
#pragma once

#include <functional>
#include <optional>

#include "oci/image.h"

namespace coffer::oci {

struct LayerProgress {
  std::size_t index = 0;
  std::size_t count = 0;
  std::string digest;
  std::uint64_t bytes = 0;
  std::int64_t total = -1;
  bool done = false;
  std::string action;      // "copy", "skip", "mount", "encrypt", "decrypt"
  bool is_config = false;  // the image config blob (index/count are not a layer's)
};
using ProgressFn = std::function<void(const LayerProgress&)>;

// A layer replaced by a transform: its new descriptor and the spooled content.
struct TransformedLayer {
  Descriptor descriptor;
  TempFile content;
};
// How a transform reads its layer.
struct LayerInput {
  // The layer's verified stream, read once (its digest is known only at the end).
  std::function<Result<std::unique_ptr<Reader>>()> open;
  // The layer read to its end, verified and shown to `observer`, before the stream is returned
  // (ImageSource::blob_observed): for content authenticated as a whole before use.
  std::function<Result<std::unique_ptr<Reader>>(StreamObserver& observer)> open_observed;
  // Where the transform spools its output.
  std::filesystem::path spool_dir;
};
// Returns nullopt to copy the layer unchanged.
using LayerTransform = std::function<Result<std::optional<TransformedLayer>>(
    const Descriptor& layer, std::size_t index, LayerInput& input)>;
// Tells whether a layer needs the transform at all (so unchanged layers can be mounted/skipped).
using LayerFilter = std::function<bool(const Descriptor& layer)>;

struct CopyOptions {
  Platform platform = host_platform();
  // Copy the whole index when the source is one (only without a transform).
  bool all_platforms = false;
  LayerTransform transform;
  LayerFilter wants_transform;
  std::string action_name = "copy";
  ProgressFn progress;
  // empty: the destination's preference (a layout's blob directory), else default_spool_dir()
  std::filesystem::path spool_dir;
  // Every layer of the source image must be encrypted ("layer_not_encrypted" before anything
  // is written otherwise): for images meant to be confidential.
  bool require_encrypted_layers = false;
};

struct CopyResult {
  std::string manifest_digest;
  std::string media_type;
  Bytes manifest;
};

// Copies the image `pinned` names (see pin_image); the destination is committed last.
Result<CopyResult> copy_image(ImageSource& source, ImageDestination& destination,
                              const PinnedImage& pinned, const CopyOptions& options);
// Pins the source's reference first.
Result<CopyResult> copy_image(ImageSource& source, ImageDestination& destination,
                              const CopyOptions& options);

// "layer_not_encrypted" naming the first plaintext layer of `m`.
Status require_encrypted_layers(const Manifest& m);

}  // namespace coffer::oci
