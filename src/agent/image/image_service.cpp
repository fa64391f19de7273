#include "agent/image/image_service.h"

#include <unistd.h>

#include <condition_variable>
#include <map>
#include <system_error>
#include <utility>

#include "core/file.h"
#include "core/json.h"
#include "crypto/random.h"
#include "oci/digest.h"
#include "oci/sign/policy.h"
#include "oci/transport.h"
#include "oci/unpack/unpack.h"

namespace coffer::agent {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kEntryPrefix = "sha256-";
constexpr std::string_view kStagingPrefix = ".staging-";
constexpr std::string_view kTrashPrefix = ".trash-";
constexpr std::size_t kMaxImageJson = 64 * 1024;

std::chrono::microseconds since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                               t0);
}

std::unexpected<Error> cancelled() {
  return make_error("cancelled", "the image pull was cancelled");
}

// A reader that fails with "cancelled" once the pull is cancelled (checked before each read).
class StopReader final : public oci::Reader {
 public:
  StopReader(std::unique_ptr<oci::Reader> inner, std::stop_token stop)
      : inner_(std::move(inner)), stop_(std::move(stop)) {}
  Result<std::size_t> read(std::span<std::uint8_t> buffer) override {
    if (stop_.stop_requested()) return cancelled();
    return inner_->read(buffer);
  }
  Status rewind() override { return inner_->rewind(); }
  [[nodiscard]] std::int64_t size() const override { return inner_->size(); }

 private:
  std::unique_ptr<oci::Reader> inner_;
  std::stop_token stop_;
};

// The registry source with cancellation: every request and every read first checks `stop`. (A
// download already under way finishes its current request: the registry client spools a blob in
// one request; the read after it fails.)
class StopSource final : public oci::ImageSource {
 public:
  StopSource(std::unique_ptr<oci::ImageSource> inner, std::stop_token stop)
      : inner_(std::move(inner)), stop_(std::move(stop)) {}
  Result<oci::RawManifest> manifest() override {
    if (stop_.stop_requested()) return cancelled();
    return inner_->manifest();
  }
  Result<oci::RawManifest> manifest_by_digest(const std::string& digest) override {
    if (stop_.stop_requested()) return cancelled();
    return inner_->manifest_by_digest(digest);
  }
  Result<std::optional<oci::RawManifest>> manifest_by_tag(const std::string& tag) override {
    if (stop_.stop_requested()) return cancelled();
    return inner_->manifest_by_tag(tag);
  }
  Result<std::unique_ptr<oci::Reader>> blob(const oci::Descriptor& d) override {
    if (stop_.stop_requested()) return cancelled();
    auto r = COFFER_TRY(inner_->blob(d));
    return std::unique_ptr<oci::Reader>(std::make_unique<StopReader>(std::move(r), stop_));
  }
  Result<std::unique_ptr<oci::Reader>> blob_observed(const oci::Descriptor& d,
                                                     oci::StreamObserver& observer) override {
    if (stop_.stop_requested()) return cancelled();
    auto r = COFFER_TRY(inner_->blob_observed(d, observer));
    return std::unique_ptr<oci::Reader>(std::make_unique<StopReader>(std::move(r), stop_));
  }
  [[nodiscard]] std::string describe() const override { return inner_->describe(); }
  [[nodiscard]] bool concurrent_blobs() const override { return inner_->concurrent_blobs(); }

 private:
  std::unique_ptr<oci::ImageSource> inner_;
  std::stop_token stop_;
};

// "docker://host/repo:tag" or the bare reference. Only the docker transport: an "oci:DIR" name
// would make the agent read a directory chosen by the host.
Result<oci::ImageName> image_name(const std::string& reference) {
  std::string text = reference.starts_with("docker://") ? reference : "docker://" + reference;
  auto name = oci::parse_image_name(text);
  if (!name || name->transport != oci::Transport::kDocker) {
    return make_error("bad_image_name",
                      "'" + printable_excerpt(reference, 200) +
                          "' is not a registry image reference (docker://host/repo:tag)");
  }
  return name;
}

// "sha256:<64 hex>" -> "sha256-<hex>"; anything else is refused before it can name a path.
Result<std::string> entry_name(const std::string& digest) {
  constexpr std::string_view kAlgo = "sha256:";
  bool valid = digest.size() == kAlgo.size() + 64 && digest.starts_with(kAlgo);
  for (std::size_t i = kAlgo.size(); valid && i < digest.size(); ++i) {
    char c = digest[i];
    valid = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  }
  if (!valid) {
    return make_error("bad_digest", "'" + printable_excerpt(digest, 80) +
                                        "' is not a sha256:<64 hex> manifest digest");
  }
  return std::string(kEntryPrefix) + digest.substr(kAlgo.size());
}

Status make_private_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!ec) fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (ec) return make_error("io_error", "cannot create " + dir.string() + ": " + ec.message());
  return ok();
}

// A cache entry: image.json (what was pulled) and config.json (the image config blob, checked
// against the digest recorded with it and, when given, the one the manifest names now).
Result<PulledImage> load_entry(const fs::path& dir, const std::string& expected_config = "") {
  auto meta_text = COFFER_TRY(read_text_file(dir / "image.json", kMaxImageJson));
  auto meta = parse_json(meta_text);
  if (!meta || !meta->is_object() || !meta->contains("manifestDigest") ||
      !(*meta)["manifestDigest"].is_string() || !meta->contains("configDigest") ||
      !(*meta)["configDigest"].is_string()) {
    return make_error("image_cache_corrupt", dir.string() + "/image.json is not valid");
  }
  auto config_bytes = COFFER_TRY(read_file(dir / "config.json", oci::kMaxConfigBytes));
  // The config is what the container's process comes from: check it is still the verified one.
  const auto& recorded = (*meta)["configDigest"].get_ref<const std::string&>();
  if (oci::sha256_digest(config_bytes) != recorded ||
      (!expected_config.empty() && recorded != expected_config)) {
    return make_error("image_cache_corrupt",
                      dir.string() + "/config.json does not match its recorded digest");
  }
  PulledImage image;
  image.reference = meta->value("reference", "");
  image.manifest_digest = (*meta)["manifestDigest"].get<std::string>();
  image.rootfs = dir / "rootfs";
  image.config = COFFER_TRY(oci::parse_image_config(config_bytes));
  image.from_cache = true;
  return image;
}

}  // namespace

class ImageService::Impl {
 public:
  explicit Impl(ImageServiceOptions options) : options_(std::move(options)) {
    images_ = options_.storage_dir / "images";
    spool_ = options_.storage_dir / "spool";
    init_ = make_private_dir(options_.storage_dir);
    if (init_) init_ = make_private_dir(images_);
    if (init_) init_ = make_private_dir(spool_);
    if (init_) remove_leftovers();
    if (options_.security_policy_json) {
      policy_ = oci::sign::Policy::parse(*options_.security_policy_json);
    }
  }

  Result<PulledImage> pull(const std::string& reference, const std::stop_token& stop) {
    const auto started = std::chrono::steady_clock::now();
    auto r = pull_checked(reference, stop);
    if (r) r->timings.total = since(started);
    if (!r) {
      std::lock_guard lock(mu_);
      ++stats_.refused;
    }
    return r;
  }

  std::vector<PulledImage> list() const {
    std::vector<PulledImage> out;
    std::lock_guard lock(mu_);
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(images_, ec)) {
      if (!e.path().filename().string().starts_with(kEntryPrefix)) continue;
      if (auto image = load_entry(e.path())) out.push_back(std::move(*image));
    }
    return out;
  }

  Status remove(const std::string& manifest_digest) {
    auto name = COFFER_TRY(entry_name(manifest_digest));
    fs::path trash = images_ / (std::string(kTrashPrefix) + crypto::random_uuid_hex());
    {
      // Renamed away under the lock: a concurrent pull sees the image either whole or absent.
      std::lock_guard lock(mu_);
      std::error_code ec;
      if (!fs::exists(images_ / name / "image.json", ec)) {
        return make_error("image_not_found", "no cached image " + manifest_digest);
      }
      fs::rename(images_ / name, trash, ec);
      if (ec)
        return make_error("io_error", "cannot remove " + manifest_digest + ": " + ec.message());
    }
    oci::unpack::remove_all_forcibly(trash);
    return ok();
  }

  ImageServiceStats stats() const {
    std::lock_guard lock(mu_);
    return stats_;
  }

  std::vector<PullProgress> progress() const {
    std::lock_guard lock(mu_);
    std::vector<PullProgress> out;
    for (const auto& [entry, f] : in_flight_) {
      PullProgress p = f.progress;
      p.elapsed = since(f.started);
      out.push_back(std::move(p));
    }
    return out;
  }

 private:
  // One download of one image, shared by every pull that asks for it meanwhile.
  struct Flight {
    bool done = false;
    Result<PulledImage> result = cancelled();
  };

  Result<PulledImage> pull_checked(const std::string& reference, const std::stop_token& stop) {
    if (stop.stop_requested()) return cancelled();
    COFFER_TRY_STATUS(init_);
    if (!policy_) {
      return make_error("no_image_policy",
                        "no image security policy is configured: every pull is refused");
    }
    if (!*policy_) return std::unexpected(policy_->error());
    auto name = COFFER_TRY(image_name(reference));

    oci::RegistryOptions ro;
    ro.insecure_registries.insert(options_.insecure_registries.begin(),
                                  options_.insecure_registries.end());
    // Credentials only from the configuration: never a file of the host's environment.
    ro.auth_json = options_.registry_auth_json.value_or(R"({"auths":{}})");
    ro.spool_dir = spool_;
    StopSource source(COFFER_TRY(oci::open_source(name, ro)), stop);

    // Resolved once; the policy, the cache lookup and the unpack all use this digest.
    const auto verify_started = std::chrono::steady_clock::now();
    auto pinned = COFFER_TRY(oci::pin_image(source));
    // The policy on every pull, the image cached or not.
    COFFER_TRY_STATUS(
        (*policy_)->evaluate(name, source, pinned,
                             oci::sign::PolicyContext{.key_resolver = options_.resource_resolver}));
    auto resolved = COFFER_TRY(oci::resolve_image(source, pinned, oci::host_platform()));
    // Before the cache too: a cache filled under another configuration does not bypass it.
    if (options_.require_encrypted_layers) {
      COFFER_TRY_STATUS(oci::require_encrypted_layers(resolved.manifest));
    }
    auto entry = COFFER_TRY(entry_name(pinned.digest()));
    const auto verify_time = since(verify_started);

    for (;;) {
      std::unique_lock lock(mu_);
      std::error_code ec;
      if (fs::exists(images_ / entry / "image.json", ec)) {
        ++stats_.cache_hits;
        lock.unlock();
        auto image = COFFER_TRY(load_entry(images_ / entry, resolved.manifest.config.digest));
        image.reference = reference;
        image.timings.verify = verify_time;
        return image;
      }
      if (auto it = flights_.find(entry); it != flights_.end()) {
        std::shared_ptr<Flight> flight = it->second;
        ++stats_.joined;
        cv_.wait(lock, stop, [&] { return flight->done; });
        if (!flight->done) return cancelled();
        if (!flight->result && flight->result.error().code == "cancelled") {
          continue;  // the pull we waited for was cancelled, not this one: try again
        }
        if (!flight->result) return std::unexpected(flight->result.error());
        PulledImage image = *flight->result;
        image.reference = reference;
        return image;
      }
      auto flight = std::make_shared<Flight>();
      flights_[entry] = flight;
      lock.unlock();

      auto result = fetch(reference, source, pinned, resolved, entry, stop);
      if (result) result->timings.verify = verify_time;
      lock.lock();
      if (result) ++stats_.fetched;
      flight->result = result;
      flight->done = true;
      flights_.erase(entry);
      cv_.notify_all();
      return result;
    }
  }

  // Downloads, verifies, decrypts and unpacks into a staging directory renamed into the cache
  // only when everything verified; on any failure the staging directory is removed.
  Result<PulledImage> fetch(const std::string& reference, oci::ImageSource& source,
                            const oci::PinnedImage& pinned, const oci::ResolvedImage& resolved,
                            const std::string& entry, const std::stop_token& stop) {
    fs::path staging = images_ / (std::string(kStagingPrefix) + crypto::random_uuid_hex());
    COFFER_TRY_STATUS(make_private_dir(staging));
    struct Cleanup {
      fs::path path;
      ~Cleanup() {
        if (!path.empty()) oci::unpack::remove_all_forcibly(path);
      }
    } cleanup{staging};

    auto config_bytes =
        COFFER_TRY(oci::read_blob(source, resolved.manifest.config, oci::kMaxConfigBytes));
    auto config = COFFER_TRY(oci::parse_image_config(config_bytes));

    const auto layers_started = std::chrono::steady_clock::now();
    std::chrono::microseconds key_fetch{0};
    {
      std::lock_guard lock(mu_);
      // before the first layer's blob arrives (downloaded and its MAC checked before it is read)
      const auto& layers = resolved.manifest.layers;
      in_flight_[entry] =
          InFlight{.progress = {.reference = reference,
                                .layer_count = layers.size(),
                                .layer_total = layers.empty() ? -1 : layers.front().size},
                   .started = layers_started};
    }
    struct Landed {
      Impl& self;
      const std::string& entry;
      ~Landed() {
        std::lock_guard lock(self.mu_);
        self.in_flight_.erase(entry);
      }
    } landed{*this, entry};
    oci::unpack::UnpackOptions uo;
    if (options_.key_provider) {
      // timed apart: the KBS round trips are not the layers' cost
      uo.decrypt.key_provider = [&](const std::string& kid) {
        const auto t0 = std::chrono::steady_clock::now();
        auto key = options_.key_provider(kid);
        key_fetch += since(t0);
        return key;
      };
    }
    uo.require_encrypted_layers = options_.require_encrypted_layers;
    uo.max_layer_bytes = options_.max_layer_bytes;
    uo.max_image_bytes = options_.max_image_bytes;
    uo.progress = [this, &entry](const oci::LayerProgress& lp) {
      if (!lp.is_config) {
        std::lock_guard lock(mu_);
        if (auto it = in_flight_.find(entry); it != in_flight_.end()) {
          auto& p = it->second.progress;
          if (lp.index != p.layer_index) it->second.before += p.layer_bytes;
          p.layer_index = lp.index;
          p.layer_count = lp.count;
          p.layer_bytes = lp.bytes;
          p.layer_total = lp.total;
          p.bytes_done = it->second.before + lp.bytes;
        }
      }
      if (options_.progress) options_.progress(lp);
    };
    uo.tree.preserve_owner = ::geteuid() == 0;
    COFFER_TRY_STATUS(oci::unpack::unpack_image(source, pinned, staging / "rootfs", uo));
    if (stop.stop_requested()) return cancelled();

    Json meta{{"reference", reference},
              {"manifestDigest", pinned.digest()},
              {"imageManifestDigest", resolved.manifest_raw.digest},
              {"configDigest", resolved.manifest.config.digest}};
    COFFER_TRY_STATUS(write_file_atomic(staging / "config.json", config_bytes, 0600));
    COFFER_TRY_STATUS(write_file_atomic(staging / "image.json", as_bytes(meta.dump(2)), 0600));

    fs::path final_dir = images_ / entry;
    std::error_code ec;
    fs::rename(staging, final_dir, ec);
    if (ec) {
      return make_error("io_error", "cannot store " + pinned.digest() + ": " + ec.message());
    }
    cleanup.path.clear();
    return PulledImage{
        .reference = reference,
        .manifest_digest = pinned.digest(),
        .rootfs = final_dir / "rootfs",
        .config = std::move(config),
        .from_cache = false,
        .timings = {.key_fetch = key_fetch, .layers = since(layers_started) - key_fetch}};
  }

  // Staging and trash directories of a previous run that stopped mid-pull or mid-remove.
  void remove_leftovers() {
    std::error_code ec;
    std::vector<fs::path> old;
    for (const auto& e : fs::directory_iterator(images_, ec)) {
      auto n = e.path().filename().string();
      if (n.starts_with(kStagingPrefix) || n.starts_with(kTrashPrefix)) old.push_back(e.path());
    }
    for (const auto& p : old) oci::unpack::remove_all_forcibly(p);
  }

  ImageServiceOptions options_;
  fs::path images_, spool_;
  Status init_;
  std::optional<Result<oci::sign::Policy>> policy_;

  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  std::map<std::string, std::shared_ptr<Flight>> flights_;
  struct InFlight {
    PullProgress progress;
    std::chrono::steady_clock::time_point started;
    std::uint64_t before = 0;  // blob bytes of the layers already unpacked
  };
  std::map<std::string, InFlight> in_flight_;  // by cache entry
  ImageServiceStats stats_;
};

ImageService::ImageService(ImageServiceOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
ImageService::~ImageService() = default;

Result<PulledImage> ImageService::pull(const std::string& reference, const std::stop_token& stop) {
  return impl_->pull(reference, stop);
}

std::vector<PulledImage> ImageService::list() const { return impl_->list(); }

Status ImageService::remove(const std::string& manifest_digest) {
  return impl_->remove(manifest_digest);
}

std::vector<PullProgress> ImageService::progress() const { return impl_->progress(); }

ImageServiceStats ImageService::stats() const { return impl_->stats(); }

}  // namespace coffer::agent
