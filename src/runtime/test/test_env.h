// Shared by the process enclave tests: an enclave image built once from the tree's coffer-agent,
// a simulation PKI, temp directories.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "core/test/temp_dir.h"
#include "evidence/sim/sim_pki.h"
#include "runtime/process/enclave_image.h"

namespace coffer::runtime::process::test {

inline std::filesystem::path agent_executable() {
  return std::filesystem::path(COFFER_BINARY_DIR) / "apps" / "coffer-agent";
}
inline std::filesystem::path coffer_executable() {
  return std::filesystem::path(COFFER_BINARY_DIR) / "apps" / "coffer";
}

// The one test temporary directory (src/core/test/temp_dir.h).
using TempDir = coffer::testing::TempDir;

// One image and one PKI for the whole test binary (building them takes a fraction of a second
// and a couple of seconds respectively).
struct Shared {
  TempDir dir;
  std::filesystem::path image = dir.path() / "image";
  std::filesystem::path sim = dir.path() / "sim";
  std::string error;

  Shared() {
    EnclaveImageOptions o;
    o.agent = agent_executable();
    auto m = build_enclave_image(o, image);
    if (!m) {
      error = m.error().to_string();
      return;
    }
    evidence::sim::SimPkiOptions po;
    po.rsa_bits = 2048;
    auto pki = evidence::sim::generate_sim_pki(po);
    if (!pki) {
      error = pki.error().to_string();
      return;
    }
    if (auto w = evidence::sim::write_sim_pki(*pki, sim); !w) error = w.error().to_string();
  }
  static Shared& get() {
    static Shared s;
    return s;
  }
};

// A copy of the shared image the test may change.
inline std::filesystem::path copy_image(const std::filesystem::path& to) {
  std::filesystem::copy(Shared::get().image, to, std::filesystem::copy_options::recursive);
  return to;
}

}  // namespace coffer::runtime::process::test
