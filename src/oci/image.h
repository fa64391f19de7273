// Where images come from and go to: OCI layout directories and registries implement these,
// and copy/encrypt/decrypt/unpack/sign work on them without knowing which.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "core/bytes.h"
#include "core/error.h"
#include "oci/digest.h"
#include "oci/io.h"
#include "oci/manifest.h"

namespace coffer::oci {

struct RawManifest {
  Bytes data;
  std::string media_type;
  std::string digest;  // verified sha256 of data
};

class ImageSource {
 public:
  virtual ~ImageSource() = default;
  // The manifest or index the reference names, its digest verified (against the requested
  // digest, or the registry's Docker-Content-Digest for a tag). Each call asks again and may get
  // another answer for a tag: callers go through pin_image() once and pass the PinnedImage on.
  virtual Result<RawManifest> manifest() = 0;
  virtual Result<RawManifest> manifest_by_digest(const std::string& digest) = 0;
  // Another tag of the same repository (cosign's sha256-<hex>.sig); nullopt if it is absent.
  virtual Result<std::optional<RawManifest>> manifest_by_tag(const std::string& tag) = 0;
  // A blob stream that checks digest and size: the read that reaches the end fails with
  // "digest_mismatch"/"size_mismatch" instead of returning 0, so consumers must not trust
  // anything before the end. A returned reader stays independent of the source: it may be read
  // while another thread calls blob() for the next layer (unpack prefetches that way).
  virtual Result<std::unique_ptr<Reader>> blob(const Descriptor& d) = 0;
  // The blob read to its end once, digest and size verified and every byte shown to `observer`,
  // before this returns; the reader then yields exactly those bytes again. For content that must
  // be authenticated as a whole before any of it is used (encrypted layers: the HMAC). The
  // default reads blob() and rewinds it; a registry observes the download into its spool file.
  virtual Result<std::unique_ptr<Reader>> blob_observed(const Descriptor& d,
                                                        StreamObserver& observer);
  // "docker://host/repo:tag" or "oci:/dir:tag", for messages and policy scopes.
  [[nodiscard]] virtual std::string describe() const = 0;
  // Whether blob() may be called from several threads at once.
  [[nodiscard]] virtual bool concurrent_blobs() const { return false; }
};

class ImageDestination {
 public:
  virtual ~ImageDestination() = default;
  virtual Result<bool> has_blob(const Descriptor& d) = 0;
  // Stores a blob whose digest and size are known; the destination verifies them.
  virtual Status put_blob(const Descriptor& d, Reader& content) = 0;
  // Stores a blob already spooled to `file` whose descriptor the caller computed while writing
  // it; a layout moves the file into place instead of copying it.
  virtual Status put_blob_file(const Descriptor& d, TempFile& file) {
    auto reader = COFFER_TRY(file.reader());
    return put_blob(d, *reader);
  }
  // Stores a manifest; `tag` empty: by digest only (children of an index, signatures use tags).
  virtual Status put_manifest(ByteView data, std::string_view media_type,
                              const std::string& tag) = 0;
  // Registries: mount a blob from another repository of the same registry without copying.
  virtual Result<bool> try_mount(const Descriptor& /*d*/, const ImageSource& /*from*/) {
    return false;
  }
  // Whether put_blob()/put_blob_file() may be called from several threads at once.
  [[nodiscard]] virtual bool concurrent_blobs() const { return false; }
  // Makes what was written visible as a whole: a new layout directory appears only here (it is
  // staged until then and removed if never committed). copy_image calls it last.
  virtual Status commit() { return ok(); }
  // Where transformed layers are best spooled (a layout's blob directory, so that they are
  // renamed into place); empty: no preference.
  [[nodiscard]] virtual std::filesystem::path spool_dir() const { return {}; }
  // The tag the reference names (empty if it names a digest or nothing).
  [[nodiscard]] virtual std::string tag() const = 0;
  [[nodiscard]] virtual std::string describe() const = 0;
};

// Wraps a stream with a DigestChecker (see ImageSource::blob).
class VerifyingReader final : public Reader {
 public:
  VerifyingReader(std::unique_ptr<Reader> inner, const Descriptor& d)
      : inner_(std::move(inner)), desc_(d), checker_(d.digest, d.size) {}
  Result<std::size_t> read(std::span<std::uint8_t> buffer) override;
  Status rewind() override;
  [[nodiscard]] std::int64_t size() const override { return inner_->size(); }

 private:
  std::unique_ptr<Reader> inner_;
  Descriptor desc_;
  DigestChecker checker_;
  bool done_ = false;
};

// Reads a small blob (config) fully and verified.
Result<Bytes> read_blob(ImageSource& source, const Descriptor& d, std::size_t max_bytes);

// A reference resolved once: the digest and exact bytes of what it named at that moment. The
// policy, the signature lookup and every later fetch take this, never the tag again: a registry
// may answer the same tag differently on each request (CONVENTIONS: resolve a name once).
struct PinnedImage {
  RawManifest top;
  [[nodiscard]] const std::string& digest() const { return top.digest; }
};
Result<PinnedImage> pin_image(ImageSource& source);

// The image manifest for `platform` (following an index), with its raw form.
struct ResolvedImage {
  RawManifest top;             // what the reference names
  std::optional<Index> index;  // when top is an index
  RawManifest manifest_raw;    // the chosen image manifest
  Manifest manifest;
};
// From a pinned top-level manifest: an index's child is fetched by its digest only.
Result<ResolvedImage> resolve_image(ImageSource& source, const PinnedImage& pinned,
                                    const Platform& platform);
// Pins `source` first (for one-shot reads such as inspect).
Result<ResolvedImage> resolve_image(ImageSource& source, const Platform& platform);

}  // namespace coffer::oci
