// Shared fixtures for simulated-TEE tests: one PKI per test binary (RSA generation is slow),
// temporary directories.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include "evidence/sim/sim_pki.h"

namespace coffer::evidence::sim::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "coffer-sim-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline const SimPki& shared_pki() {
  static const SimPki pki = [] {
    SimPkiOptions o;
    o.rsa_bits = 2048;
    auto p = generate_sim_pki(o);
    if (!p) std::abort();
    return std::move(*p);
  }();
  return pki;
}

}  // namespace coffer::evidence::sim::testing
