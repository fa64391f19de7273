// The agent enclave's side of the two-enclave flow (docs/two-enclave.md): ExportBundle writes the
// container's bundle (config.json and the image's rootfs) into a new encrypted filesystem on the
// agent's storage under a fresh random key, then seals that key for the app enclave (MRSIGNER
// policy) or keeps it in memory for one HandOverKey after local attestation.
#pragma once

#include <filesystem>
#include <map>
#include <mutex>
#include <string>

#include "agent/service.h"
#include "evidence/sim/quote_client.h"
#include "runtime/appenclave/key_handover.h"

namespace coffer::runtime::appenclave {

// Errors: "bundle_exists" (the bundle's directory is there already), "bundle_not_found" (no key
// waiting for HandOverKey: unknown, sealed, or already handed over), the efs codes
// (runtime/efs/filesystem.h), the key handover codes (key_handover.h). A failed export leaves
// nothing in the storage.
class EfsBundleExporter final : public agent::BundleExporter {
 public:
  // `storage_dir`: the host storage as the agent sees it; `quote_socket`: the enclave's quote
  // service (sim-sgx).
  EfsBundleExporter(std::filesystem::path storage_dir, std::filesystem::path quote_socket);
  ~EfsBundleExporter() override;
  EfsBundleExporter(const EfsBundleExporter&) = delete;
  EfsBundleExporter& operator=(const EfsBundleExporter&) = delete;

  Result<agent::BundleExported> export_bundle(const agent::BundleExport& request) override;
  Result<agent::KeyHandedOver> hand_over_key(const agent::KeyHandOver& request) override;

  // Where a bundle's files go.
  static std::filesystem::path efs_dir(const std::filesystem::path& storage,
                                       std::string_view bundle_id);
  static std::filesystem::path sealed_key_file(const std::filesystem::path& storage,
                                               std::string_view bundle_id);

 private:
  std::filesystem::path storage_;
  evidence::sim::QuoteServiceClient quote_;
  std::mutex mu_;
  std::map<std::string, BundleKey, std::less<>> pending_;  // local handover, until claimed
};

}  // namespace coffer::runtime::appenclave
