// OCI image layout directories (image-spec "image-layout.md"): `oci-layout`, `index.json`,
// `blobs/<alg>/<hex>`. Images are named by the `org.opencontainers.image.ref.name` annotation.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "oci/image.h"

namespace coffer::oci {

inline constexpr std::string_view kRefNameAnnotation = "org.opencontainers.image.ref.name";

class OciLayout {
 public:
  // Opens an existing layout ("not_found", "bad_layout").
  static Result<OciLayout> open(const std::filesystem::path& dir);
  // Opens, or creates an empty one (directory, oci-layout, index.json).
  static Result<OciLayout> open_or_create(const std::filesystem::path& dir);

  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }
  [[nodiscard]] std::filesystem::path blob_path(const std::string& digest) const;
  Result<Index> read_index() const;
  Status write_index(const Index& index) const;
  // The index.json entry with ref.name == tag; an empty tag picks the only entry.
  Result<Descriptor> resolve(const std::string& tag) const;
  // Stores a blob, verifying it; no-op if present.
  Status put_blob(const Descriptor& d, Reader& content) const;
  // Stores a blob spooled to `file` whose digest the caller computed while writing it: renamed
  // into place when on the layout's filesystem and of d's size, else copied with verification.
  Status put_blob_file(const Descriptor& d, TempFile& file) const;
  // Stores bytes as a blob and returns its digest.
  Result<std::string> put_bytes(ByteView data) const;
  // Adds or replaces the index.json entry for `tag` (or adds an untagged entry).
  Status tag_manifest(const Descriptor& manifest, const std::string& tag) const;

 private:
  explicit OciLayout(std::filesystem::path dir) : dir_(std::move(dir)) {}
  std::filesystem::path dir_;
};

std::unique_ptr<ImageSource> make_layout_source(OciLayout layout, std::string tag);
std::unique_ptr<ImageDestination> make_layout_destination(OciLayout layout, std::string tag);
// The destination for `dir`: an existing layout is written in place (its index.json gains the
// tag only with the final manifest); a new one (absent or empty directory) is staged in a
// sibling directory that commit() renames to `dir`, so a failed copy leaves nothing there.
Result<std::unique_ptr<ImageDestination>> open_layout_destination(const std::filesystem::path& dir,
                                                                  std::string tag);

}  // namespace coffer::oci
