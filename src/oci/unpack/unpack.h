// Unpacking an image: every encrypted layer authenticated (HMAC over all of its ciphertext,
// computed as it is downloaded or spooled) and only then decrypted, decompressed, its
// uncompressed digest checked against the config's diff_ids, its tar read with libarchive and
// written by RootTree (nothing lands outside the root), whiteouts applied. The result is built
// in a temporary directory next to the target and renamed into place only when everything
// verified: on any failure nothing is left behind.
#pragma once

#include <cstdint>
#include <filesystem>

#include "oci/copy.h"
#include "oci/crypt/ocicrypt.h"
#include "oci/image.h"
#include "oci/unpack/tree.h"

namespace coffer::oci::unpack {

// Default limits on uncompressed bytes (the tar stream, sparse files at their apparent size):
// far above real images, far below what a decompression bomb would fill.
inline constexpr std::uint64_t kDefaultMaxLayerBytes = std::uint64_t{32} << 30;  // 32 GiB
inline constexpr std::uint64_t kDefaultMaxImageBytes = std::uint64_t{64} << 30;  // 64 GiB

struct UnpackOptions {
  Platform platform = host_platform();
  TreeOptions tree;
  crypt::DecryptConfig decrypt;
  // An OCI runtime bundle (rootfs/ + config.json) instead of a bare root filesystem.
  bool bundle = false;
  // Uncompressed bytes per layer and for all layers together; exceeding one fails with
  // "layer_too_large" / "image_too_large" at the first byte past it.
  std::uint64_t max_layer_bytes = kDefaultMaxLayerBytes;
  std::uint64_t max_image_bytes = kDefaultMaxImageBytes;
  // Every layer must be encrypted: a plaintext layer in an image meant to be confidential is
  // "layer_not_encrypted" before any layer is fetched (the enclave's image service sets this
  // from its configuration).
  bool require_encrypted_layers = false;
  // Per layer: "unpack" with the bytes handed to the decompressor so far, and when done.
  ProgressFn progress;
};

// `target` must not exist (or be an empty directory). Errors include "target_exists",
// "diff_id_mismatch", "layer_count_mismatch", "layer_too_large", "image_too_large",
// "layer_not_encrypted", the layer/decryption/tree errors. An encrypted layer is authenticated
// as a whole (HMAC over its ciphertext, computed while it is downloaded or spooled) before any
// of its bytes reaches the decompressor.
Status unpack_image(ImageSource& source, const PinnedImage& pinned,
                    const std::filesystem::path& target, const UnpackOptions& options);
// Pins the source's reference first.
Status unpack_image(ImageSource& source, const std::filesystem::path& target,
                    const UnpackOptions& options);

// Removes an unpacked tree, which may contain read-only directories (errors ignored: for
// cleanup paths).
void remove_all_forcibly(const std::filesystem::path& p);

// The OCI runtime spec config.json for an image config (process from Entrypoint/Cmd/Env/
// WorkingDir/User; default namespaces, mounts and masked paths). `rootfs` resolves user names.
Result<Json> runtime_config(const ImageConfig& config, const std::filesystem::path& rootfs);

}  // namespace coffer::oci::unpack
