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
  std::string action;  // "copy", "skip", "mount", "encrypt", "decrypt"
};
using ProgressFn = std::function<void(const LayerProgress&)>;

// A layer replaced by a transform: its new descriptor and the spooled content.
struct TransformedLayer {
  Descriptor descriptor;
  TempFile content;
};
// Returns nullopt to copy the layer unchanged. `source` is the layer's verified stream.
using LayerTransform = std::function<Result<std::optional<TransformedLayer>>(
    const Descriptor& layer, std::size_t index, Reader& source)>;
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
  std::filesystem::path spool_dir;  // empty: default_spool_dir()
};

struct CopyResult {
  std::string manifest_digest;
  std::string media_type;
  Bytes manifest;
};

Result<CopyResult> copy_image(ImageSource& source, ImageDestination& destination,
                              const CopyOptions& options);

}  // namespace coffer::oci
