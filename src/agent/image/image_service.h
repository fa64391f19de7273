// The image service of coffer-agent: pulls images inside the enclave, with the image security
// policy (containers-policy.json) and the keys named by the attested configuration, decrypts the
// layers through the confidential data hub's key provider and unpacks them with the hardened
// unpack into the enclave's storage.
//
// CONTRACT (written by the lead before the implementation; the implementer may add members and
// refine comments, but keeps these names and meanings so the agent service can call them).
//
// - Images are cached by manifest digest: storage_dir/images/sha256-<hex>/{rootfs/,config.json,
//   image.json}. A pull of a cached image still resolves the reference (tag -> digest) at the
//   registry and still evaluates the signature policy for this reference: the policy is checked
//   on every use, cached or not.
// - Two pulls of one image at once download it once (the second waits for the first and shares
//   its result or its error).
// - A refused or failed pull leaves nothing of the image in the storage (staging directory
//   removed; the hardened unpack already builds in a temporary directory).
// - With require_encrypted_layers, a plaintext layer is "layer_not_encrypted" before any layer is
//   fetched.
//
// Errors: the oci codes ("policy_rejected", "no_valid_signature", "hmac_mismatch",
// "diff_id_mismatch", "missing_decryption_key", "layer_not_encrypted", registry errors...),
// the key provider's (KBS) codes, "cancelled".
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/error.h"
#include "oci/copy.h"
#include "oci/crypt/ocicrypt.h"
#include "oci/manifest.h"

namespace coffer::agent {

struct ImageServiceOptions {
  std::filesystem::path storage_dir;  // created 0700; blobs are spooled in storage_dir/spool
  // containers-policy.json text; unset: refuse every pull ("no_image_policy") — the agent passes
  // the policy from init-data/KBS, or its built-in default.
  std::optional<std::string> security_policy_json;
  // Resolves kbs:///repo/type/tag (signature keys named in the policy, credentials) to bytes.
  std::function<Result<Bytes>(const std::string& uri)> resource_resolver;
  // ocicrypt provider.attestation-agent keys (kbs:///...), through the CDH.
  oci::crypt::KeyProvider key_provider;
  // docker config.json-style auths ({"auths":{"host":{"auth":"base64(user:pass)"}}}), unset:
  // anonymous.
  std::optional<std::string> registry_auth_json;
  // Registries reached over plain HTTP (tests: the loopback registry), "host:port".
  std::vector<std::string> insecure_registries;
  bool require_encrypted_layers = false;
  std::uint64_t max_layer_bytes = std::uint64_t{32} << 30;
  std::uint64_t max_image_bytes = std::uint64_t{64} << 30;
  oci::ProgressFn progress;
};

// What the service did, for health/metrics and for tests of the single flight.
struct ImageServiceStats {
  std::uint64_t fetched = 0;     // pulls that downloaded and unpacked an image
  std::uint64_t joined = 0;      // pulls that waited for another pull of the same image
  std::uint64_t cache_hits = 0;  // pulls answered from the cache (after the policy passed)
  std::uint64_t refused = 0;     // pulls that failed (policy, verification, registry, cancelled)
};

// Where a pull's time went (the agent reports it in PullImageResponse).
struct PullTimings {
  std::chrono::microseconds verify{0};     // pin, image security policy, platform resolution
  std::chrono::microseconds key_fetch{0};  // key provider calls (the KBS)
  std::chrono::microseconds layers{0};     // fetch + decrypt + unpack, key fetch excluded
  std::chrono::microseconds total{0};
};

// A pull in flight (ImageService::progress): the layer being unpacked and the bytes so far.
struct PullProgress {
  std::string reference;
  std::size_t layer_index = 0;
  std::size_t layer_count = 0;
  std::uint64_t layer_bytes = 0;
  std::int64_t layer_total = -1;
  std::uint64_t bytes_done = 0;  // the layers before plus this one's bytes so far
  std::chrono::microseconds elapsed{0};
};

struct PulledImage {
  std::string reference;         // as requested
  std::string manifest_digest;   // sha256:...
  std::filesystem::path rootfs;  // read-only by convention: containers never write it
  oci::ImageConfig config;
  bool from_cache = false;
  PullTimings timings;
};

class ImageService {
 public:
  explicit ImageService(ImageServiceOptions options);
  ~ImageService();
  ImageService(const ImageService&) = delete;
  ImageService& operator=(const ImageService&) = delete;

  // docker://... or a bare reference (docker transport); other transports ("oci:DIR", which
  // would read a directory the host names) are "bad_image_name". `stop` cancels ("cancelled")
  // between requests and between reads of a layer; a pull waiting for another pull of the same
  // image stops waiting, and if the pull it waited for is cancelled it pulls by itself.
  Result<PulledImage> pull(const std::string& reference, const std::stop_token& stop = {});
  std::vector<PulledImage> list() const;
  // Removes a cached image ("image_not_found"); the caller makes sure no container uses it.
  Status remove(const std::string& manifest_digest);
  [[nodiscard]] ImageServiceStats stats() const;
  // The downloads in flight (a pull waiting on another's download is that download).
  [[nodiscard]] std::vector<PullProgress> progress() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace coffer::agent
