#include "core/file.h"

#include <sys/stat.h>
#include <filesystem>

#include <gtest/gtest.h>

namespace coffer {
namespace {

class FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/coffer-file-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(FileTest, AtomicWriteReplacesAndSetsMode) {
  auto p = dir_ / "key";
  ASSERT_TRUE(write_file_atomic(p, as_bytes("old"), 0600));
  ASSERT_TRUE(write_file_atomic(p, as_bytes("new"), 0600));
  EXPECT_EQ(*read_text_file(p), "new");
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // No temporary files left behind.
  int n = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir_)) ++n;
  EXPECT_EQ(n, 1);
}

TEST_F(FileTest, ReadErrors) {
  EXPECT_EQ(read_file(dir_ / "missing").error().code, "not_found");
  ASSERT_TRUE(write_file_atomic(dir_ / "big", Bytes(100, 1)));
  EXPECT_EQ(read_file(dir_ / "big", 10).error().code, "too_large");
}

TEST_F(FileTest, WriteIntoMissingDirectoryFails) {
  auto r = write_file_atomic(dir_ / "nope" / "f", as_bytes("x"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "not_found");
}

}  // namespace
}  // namespace coffer
