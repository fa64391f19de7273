// Shared helpers of the encrypted filesystem's tests: a temporary directory and a fixed key.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/bytes.h"
#include "core/test/temp_dir.h"
#include "crypto/random.h"

namespace coffer::runtime::efs::test {

// The one test temporary directory (src/core/test/temp_dir.h).
using TempDir = coffer::testing::TempDir;

inline Bytes test_key(std::uint8_t fill = 0x42) { return Bytes(32, fill); }

inline void write_text(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace coffer::runtime::efs::test
