// What the VM enclave's tests share: the guest kernel, the tree's executables, a private
// directory per test.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/test/temp_dir.h"
#include "runtime/vm/guest_image.h"

namespace coffer::runtime::vm::test {

// The guest kernel that scripts/install-deps unpacks (CI runs it): missing is a failure, not a
// skip. COFFER_GUEST_KERNEL points elsewhere.
inline std::filesystem::path kernel_package() {
  if (const char* p = std::getenv("COFFER_GUEST_KERNEL")) return p;
  return std::string(kDefaultKernelCache);
}

// An executable of this build tree (apps/).
inline std::filesystem::path binary(const char* name) {
  return std::filesystem::path(COFFER_BINARY_DIR) / "apps" / name;
}

class VmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(kernel_package() / "boot"))
        << kernel_package() << " is missing: run scripts/install-deps";
  }
  coffer::testing::TempDir tmp_;
  const std::filesystem::path dir_ = tmp_.path();
};

}  // namespace coffer::runtime::vm::test
