// Host-side tampering with the encrypted filesystem: every case fails with efs_integrity (or a
// specific error for the key and rollback cases), never with wrong plaintext.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include <gtest/gtest.h>

#include "runtime/efs/filesystem.h"
#include "runtime/efs/test/efs_test_util.h"

namespace coffer::runtime::efs {
namespace {

namespace fs = std::filesystem;
using test::read_text;
using test::TempDir;
using test::test_key;
using test::write_text;

std::set<fs::path> objects(const fs::path& dir) {
  std::set<fs::path> out;
  for (auto& e : fs::directory_iterator(dir / "objects")) out.insert(e.path());
  return out;
}

void flip(const fs::path& p, std::size_t offset) {
  std::string s = read_text(p);
  ASSERT_LT(offset, s.size());
  s[offset] = static_cast<char>(s[offset] ^ 0x01);
  write_text(p, s);
}

// A filesystem with /a and /b (same size, 2 blocks each) and /sub/c; the host paths of the
// objects are recorded as they appear.
class EfsTamperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(create(dir_, test_key(), {.block_size = 4096}));
    auto fs = Filesystem::open(dir_, test_key()).value();
    auto before = objects(dir_);
    ASSERT_EQ(before.size(), 1U);
    root_obj_ = *before.begin();
    a_ = add(*fs, "/a", std::string(6000, 'A'));
    b_ = add(*fs, "/b", std::string(6000, 'B'));
    ASSERT_TRUE(fs->mkdir("/sub", 0755, 0, 0));
    ASSERT_TRUE(fs->commit());
    sub_ = fresh(objects(dir_), {root_obj_, a_, b_});
    c_ = add(*fs, "/sub/c", "see");
    ASSERT_TRUE(fs->mkdir("/sub2", 0755, 0, 0));
    ASSERT_TRUE(fs->commit());
    sub2_ = fresh(objects(dir_), {root_obj_, a_, b_, sub_, c_});
  }

  static fs::path fresh(const std::set<fs::path>& now, const std::set<fs::path>& known) {
    for (const auto& p : now)
      if (!known.contains(p)) return p;
    return {};
  }

  fs::path add(Filesystem& fs, const std::string& path, const std::string& text) {
    auto before = objects(dir_);
    EXPECT_TRUE(fs.create_file(path, 0644, 0, 0));
    EXPECT_TRUE(fs.write(path, 0, as_bytes(text)));
    EXPECT_TRUE(fs.commit());
    return fresh(objects(dir_), before);
  }

  std::string open_error() {
    auto fs = Filesystem::open(dir_, test_key());
    return fs ? "" : fs.error().code;
  }

  // The error of reading `path` in a freshly opened filesystem ("" when it reads fine).
  std::string read_error(const std::string& path) {
    auto fs = Filesystem::open(dir_, test_key());
    if (!fs) return fs.error().code;
    auto data = (*fs)->read_all(path);
    return data ? "" : data.error().code;
  }

  std::string check_error() {
    auto fs = Filesystem::open(dir_, test_key());
    if (!fs) return fs.error().code;
    auto s = (*fs)->check();
    return s ? "" : s.error().code;
  }

  TempDir tmp_;
  fs::path dir_ = tmp_.path() / "efs";
  fs::path root_obj_, a_, b_, sub_, c_, sub2_;
};

TEST_F(EfsTamperTest, UntouchedReadsBack) {
  EXPECT_EQ(read_error("/a"), "");
  EXPECT_EQ(read_error("/sub/c"), "");
  EXPECT_EQ(check_error(), "");
}

TEST_F(EfsTamperTest, FlippedByteInDataBlock) {
  flip(a_, 4096 + 28 + 100);  // second block's ciphertext
  EXPECT_EQ(read_error("/a"), kIntegrity);
  EXPECT_EQ(check_error(), kIntegrity);
  EXPECT_EQ(read_error("/b"), "");  // the rest stays readable
}

TEST_F(EfsTamperTest, FlippedByteInBlockTagOrNonce) {
  flip(a_, 4096 + 12);  // first block's tag: the block table no longer matches the file hash
  EXPECT_EQ(read_error("/a"), kIntegrity);
  flip(a_, 4096 + 12);
  flip(a_, 3);  // first block's nonce
  EXPECT_EQ(read_error("/a"), kIntegrity);
}

// A file whose block table spans several chunks of the tag scan (load_tags reads the object
// about 1 MiB at a time): it reads back, and a tag flipped in a later chunk, or in the last
// (partial) block, is caught.
TEST_F(EfsTamperTest, FlippedTagInALaterChunkOfTheBlockTable) {
  std::string text(600 * 4096 + 1234, '\0');
  for (std::size_t i = 0; i < text.size(); ++i) text[i] = static_cast<char>('a' + (i * 7) % 26);
  fs::path big;
  {
    auto fs = Filesystem::open(dir_, test_key()).value();
    big = add(*fs, "/big", text);
  }
  {
    auto fs = Filesystem::open(dir_, test_key()).value();
    auto back = fs->read_all("/big");
    ASSERT_TRUE(back) << back.error().to_string();
    EXPECT_EQ(std::string(back->begin(), back->end()), text);
  }
  const std::size_t slot = 4096 + 28;
  for (std::size_t block : {std::size_t{400}, std::size_t{600}}) {
    const std::size_t len = block == 600 ? 1234 : 4096;
    const std::size_t tag = (block * slot) + 12 + len;
    flip(big, tag + 5);
    EXPECT_EQ(read_error("/big"), kIntegrity) << block;
    flip(big, tag + 5);
    EXPECT_EQ(read_error("/big"), "") << block;
  }
}

TEST_F(EfsTamperTest, FlippedByteWhileOpen) {
  auto fs = Filesystem::open(dir_, test_key()).value();
  ASSERT_TRUE(fs->read_all("/a"));
  flip(a_, 50);
  EXPECT_EQ(fs->read_all("/a").error().code, kIntegrity);
}

TEST_F(EfsTamperTest, FlippedByteWhileOpenConcurrentRead) {
  auto fs = Filesystem::open(dir_, test_key()).value();
  ASSERT_TRUE(fs->read_all("/a"));
  flip(a_, 4096 + 28 + 10);
  Bytes out(6000, 0xAA);
  EXPECT_EQ(fs->read_concurrent("/a", 0, out).error().code, kIntegrity);
  // nothing unauthenticated is left in the buffer: the first block is the real one, the second
  // (the tampered one) is zeroed
  EXPECT_EQ(std::count(out.begin(), out.begin() + 4096, 'A'), 4096);
  EXPECT_EQ(std::count(out.begin() + 4096, out.end(), 0), 6000 - 4096);
}

TEST_F(EfsTamperTest, FlippedByteInDirectoryObject) {
  flip(sub_, 20);
  EXPECT_EQ(open_error(), "");
  EXPECT_EQ(read_error("/sub/c"), kIntegrity);
  EXPECT_EQ(read_error("/a"), "");
  flip(sub_, 20);
  flip(root_obj_, 20);
  EXPECT_EQ(open_error(), kIntegrity);
}

TEST_F(EfsTamperTest, FlippedByteInSuperblock) {
  for (std::size_t off : {8U, 60U, 70U, 90U, 110U, 150U}) {
    flip(dir_ / "superblock", off);
    EXPECT_EQ(open_error(), kIntegrity) << "offset " << off;
    flip(dir_ / "superblock", off);
  }
  EXPECT_EQ(open_error(), "");
}

TEST_F(EfsTamperTest, SwappedFiles) {
  std::string a = read_text(a_);
  std::string b = read_text(b_);
  ASSERT_EQ(a.size(), b.size());
  write_text(a_, b);
  write_text(b_, a);
  EXPECT_EQ(read_error("/a"), kIntegrity);
  EXPECT_EQ(read_error("/b"), kIntegrity);
}

TEST_F(EfsTamperTest, SwappedDirectories) {
  std::string s1 = read_text(sub_);
  std::string s2 = read_text(sub2_);
  write_text(sub_, s2);
  write_text(sub2_, s1);
  EXPECT_EQ(read_error("/sub/c"), kIntegrity);
  EXPECT_EQ(check_error(), kIntegrity);
}

TEST_F(EfsTamperTest, RenamedBlob) {
  fs::rename(a_, a_.parent_path() / "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(read_error("/a"), kIntegrity);
  fs::rename(a_.parent_path() / "0123456789abcdef0123456789abcdef", a_);
  fs::rename(a_, b_);  // a's blob under b's name, a missing
  EXPECT_EQ(read_error("/a"), kIntegrity);
  EXPECT_EQ(read_error("/b"), kIntegrity);
}

TEST_F(EfsTamperTest, FileRolledBackToOlderVersion) {
  std::string old = read_text(a_);
  {
    auto fs = Filesystem::open(dir_, test_key()).value();
    ASSERT_TRUE(fs->write("/a", 0, as_bytes(std::string(6000, 'Z'))));
    ASSERT_TRUE(fs->commit());
  }
  ASSERT_EQ(read_error("/a"), "");
  write_text(a_, old);  // same size, validly encrypted under the same key, but stale
  EXPECT_EQ(read_error("/a"), kIntegrity);
}

TEST_F(EfsTamperTest, DirectoryRolledBackToOlderVersion) {
  std::string old = read_text(sub_);
  {
    auto fs = Filesystem::open(dir_, test_key()).value();
    ASSERT_TRUE(fs->unlink("/sub/c"));
    ASSERT_TRUE(fs->commit());
  }
  write_text(sub_, old);  // bring the deleted entry back
  EXPECT_EQ(read_error("/sub/c"), kIntegrity);
}

TEST_F(EfsTamperTest, WholeFilesystemRollbackNeedsMinGeneration) {
  TempDir copy;
  fs::copy(dir_, copy.path() / "old", fs::copy_options::recursive);
  std::uint64_t gen = 0;
  {
    auto fs = Filesystem::open(dir_, test_key()).value();
    ASSERT_TRUE(fs->unlink("/a"));
    ASSERT_TRUE(fs->commit());
    gen = fs->generation();
  }
  fs::remove_all(dir_);
  fs::copy(copy.path() / "old", dir_, fs::copy_options::recursive);
  // without a trusted counter the old state is consistent and opens (documented limit)
  EXPECT_EQ(read_error("/a"), "");
  EXPECT_EQ(Filesystem::open(dir_, test_key(), {.min_generation = gen}).error().code, kRollback);
}

TEST_F(EfsTamperTest, TruncatedBlob) {
  fs::resize_file(a_, fs::file_size(a_) - 1);
  EXPECT_EQ(read_error("/a"), kIntegrity);
  fs::resize_file(a_, 4096 + 28);  // a whole block cut off
  EXPECT_EQ(read_error("/a"), kIntegrity);
  fs::resize_file(c_, 0);
  EXPECT_EQ(read_error("/sub/c"), kIntegrity);
  fs::resize_file(dir_ / "superblock", 100);
  EXPECT_EQ(open_error(), kIntegrity);
}

TEST_F(EfsTamperTest, WrongKeyIsAClearError) {
  auto fs = Filesystem::open(dir_, test_key(0x43));
  ASSERT_FALSE(fs);
  EXPECT_EQ(fs.error().code, kWrongKey);
  EXPECT_EQ(Filesystem::open(tmp_.path(), test_key()).error().code, kBadFormat);
}

TEST(EfsPlaintextTest, NoPlaintextOnTheHost) {
  TempDir tmp;
  const std::string marker = "COFFER-EFS-MARKER-5f1e";
  fs::create_directories(tmp.path() / "src" / ("dir-" + marker));
  write_text(tmp.path() / "src" / ("dir-" + marker) / ("name-" + marker), "x");
  std::string body;
  for (int i = 0; i < 3000; ++i) body += marker + "\n";
  write_text(tmp.path() / "src" / "contents", body);
  fs::create_symlink("target-" + marker, tmp.path() / "src" / "link");
  ASSERT_TRUE(import_tree(tmp.path() / "src", tmp.path() / "efs", test_key()));
  std::size_t scanned = 0;
  for (auto& e : fs::recursive_directory_iterator(tmp.path() / "efs")) {
    EXPECT_EQ(e.path().string().find(marker), std::string::npos);
    if (!e.is_regular_file()) continue;
    EXPECT_EQ(read_text(e.path()).find(marker), std::string::npos) << e.path();
    ++scanned;
  }
  EXPECT_EQ(scanned, 5U);  // superblock, two directories, two files (a symlink is an entry)
  auto fs = Filesystem::open(tmp.path() / "efs", test_key()).value();
  EXPECT_EQ(fs->read_all("/contents").value(), to_bytes(body));
}

}  // namespace
}  // namespace coffer::runtime::efs
