// Building a one-layer OCI image from a directory or a tar archive, reproducibly: the same
// content gives the same layer, config and manifest digests byte for byte, whether it comes from
// a directory or from a tar of it, on every run.
//
// What makes it reproducible: entries sorted by path (bytewise), every mtime set to `timestamp`,
// owners 0:0 without names, no atime/ctime/xattrs, pax headers only where ustar cannot hold a
// value, gzip with a fixed header (no name, mtime 0), hard links always pointing at the first
// path of their group in sorted order, the root entry ("./") left out, JSON with sorted keys.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "oci/copy.h"
#include "oci/image.h"

namespace coffer::oci {

// The runtime part of the image config ("config" in image-spec config.md).
struct BuildConfig {
  std::optional<std::vector<std::string>> entrypoint;  // nullopt: absent
  std::optional<std::vector<std::string>> cmd;
  std::vector<std::string> env;  // "K=V", in the order given
  std::string working_dir;
  std::string user;
  std::map<std::string, std::string> labels;
};

inline constexpr std::uint64_t kDefaultMaxBuildBytes = 32ULL << 30;  // file content, all entries
inline constexpr std::size_t kDefaultMaxBuildEntries = 1'000'000;

struct BuildOptions {
  // Exactly one of them.
  std::filesystem::path from_dir;
  std::filesystem::path from_tar;  // plain or gzip-compressed
  BuildConfig config;
  Platform platform = host_platform();
  // Seconds since the epoch for every mtime and the config's "created" (SOURCE_DATE_EPOCH).
  std::int64_t timestamp = 0;
  std::uint64_t max_bytes = kDefaultMaxBuildBytes;
  std::size_t max_entries = kDefaultMaxBuildEntries;
  // Where the layer is spooled; empty: the destination's preference, else default_spool_dir().
  std::filesystem::path spool_dir;
  ProgressFn progress;
};

struct BuildResult {
  std::string manifest_digest;
  Bytes manifest;
  Descriptor config;
  Descriptor layer;
  std::string diff_id;
};

// Builds the image and writes layer, config and manifest (tagged with destination.tag()) to
// `destination`; the caller commits it. Errors (each before anything reaches the destination):
//   "bad_argument"          neither or both inputs, a bad timestamp
//   "not_found"             the input directory or tar does not exist
//   "unsupported_file_type" a device node, FIFO or socket in the input
//   "unsafe_path"           a tar path that is absolute, has '..', or goes through a symlink
//                           of the input; a hard link to a path outside the input
//   "duplicate_entry"       a tar naming the same path twice
//   "bad_archive"           the tar input cannot be read
//   "input_too_large"       more than max_bytes of content or max_entries entries
//   "input_changed"         a file of the input directory changed while it was read
Result<BuildResult> build_image(const BuildOptions& options, ImageDestination& destination);

}  // namespace coffer::oci
