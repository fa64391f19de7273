// Shared fixtures for simulated-TEE tests: one PKI per test binary (RSA generation is slow),
// temporary directories.
#pragma once

#include "core/test/temp_dir.h"

#include <cstdlib>
#include <filesystem>
#include <string>

#include "evidence/sim/sim_pki.h"

namespace coffer::evidence::sim::testing {

using coffer::testing::TempDir;

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
