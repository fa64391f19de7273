#include "runtime/appenclave/exporter.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "core/file.h"
#include "crypto/kdf.h"
#include "crypto/random.h"
#include "runtime/efs/filesystem.h"

namespace coffer::runtime::appenclave {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kConfigPath = "/config.json";
constexpr std::string_view kRootfsPath = "/rootfs";

// Removes a half-made bundle directory unless released.
class Cleanup {
 public:
  explicit Cleanup(fs::path dir) : dir_(std::move(dir)) {}
  ~Cleanup() {
    if (dir_.empty()) return;
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  Cleanup(const Cleanup&) = delete;
  Cleanup& operator=(const Cleanup&) = delete;
  void release() { dir_.clear(); }

 private:
  fs::path dir_;
};

}  // namespace

EfsBundleExporter::EfsBundleExporter(fs::path storage_dir, fs::path quote_socket)
    : storage_(std::move(storage_dir)), quote_(std::move(quote_socket)) {}

EfsBundleExporter::~EfsBundleExporter() {
  for (auto& [id, key] : pending_) crypto::cleanse(key.key);
}

fs::path EfsBundleExporter::efs_dir(const fs::path& storage, std::string_view bundle_id) {
  return storage / bundle_id / "efs";
}

fs::path EfsBundleExporter::sealed_key_file(const fs::path& storage, std::string_view bundle_id) {
  return storage / bundle_id / "sealed-key.json";
}

Result<agent::BundleExported> EfsBundleExporter::export_bundle(const agent::BundleExport& request) {
  if (request.key_handover != "seal" && request.key_handover != "local") {
    return make_error("bad_request", "key_handover must be \"seal\" or \"local\"");
  }
  const fs::path dir = storage_ / request.bundle_id;
  if (::mkdir(dir.c_str(), 0700) != 0) {
    if (errno == EEXIST) {
      return make_error("bundle_exists", "the storage already holds bundle " + request.bundle_id);
    }
    return make_error("io_error",
                      "creating " + dir.string() + ": " + std::string(std::strerror(errno)));
  }
  Cleanup cleanup(dir);

  BundleKey key;
  key.key = crypto::random_bytes(kBundleKeySize);
  struct Wipe {
    Bytes& k;
    ~Wipe() { crypto::cleanse(k); }
  } wipe{key.key};

  const fs::path efs = efs_dir(storage_, request.bundle_id);
  COFFER_TRY_STATUS(efs::create(efs, key.key));
  auto fs = COFFER_TRY(efs::Filesystem::open(efs, key.key));
  auto stats = COFFER_TRY(efs::import_into(*fs, request.rootfs, kRootfsPath));
  const std::string config = request.config.dump(2) + "\n";
  COFFER_TRY_STATUS(fs->create_file(kConfigPath, 0444, 0, 0));
  COFFER_TRY_STATUS(fs->write(kConfigPath, 0, as_bytes(config)));
  COFFER_TRY_STATUS(fs->commit(true));
  key.generation = fs->generation();

  if (request.key_handover == "seal") {
    auto text = COFFER_TRY(seal_bundle_key(quote_, request.bundle_id, key));
    COFFER_TRY_STATUS(
        write_file_atomic(sealed_key_file(storage_, request.bundle_id), as_bytes(text), 0600));
  } else {
    std::lock_guard lock(mu_);
    BundleKey kept{key.key, key.generation};
    pending_.insert_or_assign(request.bundle_id, std::move(kept));
  }
  cleanup.release();
  return agent::BundleExported{key.generation, stats.files + 1, stats.bytes + config.size()};
}

Result<agent::KeyHandedOver> EfsBundleExporter::hand_over_key(const agent::KeyHandOver& request) {
  std::lock_guard lock(mu_);
  auto it = pending_.find(request.bundle_id);
  if (it == pending_.end()) {
    return make_error("bundle_not_found", "no key waits for bundle " +
                                              printable_excerpt(request.bundle_id, 64) +
                                              " (unknown, sealed, or already handed over)");
  }
  // A request that does not verify leaves the key for the enclave it belongs to.
  auto answer = COFFER_TRY(answer_key_request(
      quote_, request.bundle_id, KeyRequest{request.report, request.public_key}, it->second));
  crypto::cleanse(it->second.key);
  pending_.erase(it);
  return agent::KeyHandedOver{std::move(answer.report), std::move(answer.public_key),
                              std::move(answer.ciphertext)};
}

}  // namespace coffer::runtime::appenclave
