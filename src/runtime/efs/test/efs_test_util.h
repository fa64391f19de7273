// Shared helpers of the encrypted filesystem's tests: a temporary directory and a fixed key.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/bytes.h"
#include "crypto/random.h"

namespace coffer::runtime::efs::test {

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() / ("efs-test-" + crypto::random_uuid_hex());
    std::filesystem::create_directories(path_);
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

inline Bytes test_key(std::uint8_t fill = 0x42) { return Bytes(32, fill); }

inline void write_text(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace coffer::runtime::efs::test
