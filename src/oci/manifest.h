// OCI and Docker v2 schema 2 manifests, indexes and image configs; platform selection.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "core/error.h"
#include "core/json.h"

namespace coffer::oci {

namespace media_type {
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kOciLayerNonDistributable =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view kDockerLayer = "application/vnd.docker.image.rootfs.diff.tar";
inline constexpr std::string_view kDockerLayerForeign =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
inline constexpr std::string_view kEncryptedSuffix = "+encrypted";
}  // namespace media_type

// The Accept header value for manifest requests.
std::string manifest_accept_header();

enum class Compression { kNone, kGzip, kZstd };

struct LayerType {
  Compression compression = Compression::kNone;
  bool encrypted = false;
  bool docker = false;
};

// Classifies a layer media type ("unsupported_media_type" for non-layers).
Result<LayerType> classify_layer(std::string_view media_type);
// The OCI layer media type for a compression, with "+encrypted" if asked.
std::string layer_media_type(Compression c, bool encrypted);

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;
  std::string os_version;
  // "linux/amd64", "linux/arm64/v8".
  [[nodiscard]] std::string str() const;
  bool operator==(const Platform&) const = default;
};

// The host platform (linux + GOARCH-style name of the build architecture).
Platform host_platform();
// Parses "os/arch[/variant]" ("bad_platform").
Result<Platform> parse_platform(std::string_view text);

struct Descriptor {
  std::string media_type;
  std::string digest;
  std::int64_t size = 0;
  std::map<std::string, std::string> annotations;
  std::vector<std::string> urls;
  std::optional<Platform> platform;
  std::string artifact_type;

  [[nodiscard]] Json to_json() const;
  // Validates digest and size >= 0 ("bad_manifest").
  static Result<Descriptor> from_json(const Json& j);
};

struct Manifest {
  std::string media_type;  // from the document, or inferred
  Descriptor config;
  std::vector<Descriptor> layers;
  std::map<std::string, std::string> annotations;
  std::optional<Descriptor> subject;
  std::string artifact_type;

  [[nodiscard]] bool is_docker() const { return media_type == media_type::kDockerManifest; }
  [[nodiscard]] Json to_json() const;
  // Compact JSON, as pushed.
  [[nodiscard]] Bytes serialize() const;
};

struct Index {
  std::string media_type;
  std::vector<Descriptor> manifests;
  std::map<std::string, std::string> annotations;

  [[nodiscard]] Json to_json() const;
  [[nodiscard]] Bytes serialize() const;
};

inline constexpr std::size_t kMaxManifestBytes = 4 * 1024 * 1024;
inline constexpr std::size_t kMaxConfigBytes = 8 * 1024 * 1024;

enum class ManifestKind { kManifest, kIndex };

// Decides what a manifest document is from its mediaType field, the transport's content type
// and its shape. "unsupported_media_type" for schema 1 and unknown types.
Result<ManifestKind> manifest_kind(ByteView data, std::string_view content_type);
Result<Manifest> parse_manifest(ByteView data);
Result<Index> parse_index(ByteView data);

// The entry of `index` for `want` (variant optional; arm64 accepts missing or "v8").
// "no_matching_platform" listing what the index offers.
Result<Descriptor> select_platform(const Index& index, const Platform& want);

struct ImageConfig {
  Json json;
  std::vector<std::string> diff_ids;
  Platform platform;
};
Result<ImageConfig> parse_image_config(ByteView data);

}  // namespace coffer::oci
