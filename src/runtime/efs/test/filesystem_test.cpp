// The encrypted filesystem through its library API: import round trip, mutations, persistence.
#include "runtime/efs/filesystem.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include <gtest/gtest.h>

#include "runtime/efs/test/efs_test_util.h"

namespace coffer::runtime::efs {
namespace {

using test::read_text;
using test::TempDir;
using test::test_key;
using test::write_text;

std::string str(const Result<Bytes>& b) { return b ? to_string(*b) : "<" + b.error().code + ">"; }

Bytes pattern(std::size_t n, std::uint8_t seed) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>((i * 131) + seed + (i >> 9));
  return b;
}

TEST(EfsTest, ImportRoundTripFilesDirsSymlinksModes) {
  TempDir tmp;
  auto src = tmp.path() / "src";
  std::filesystem::create_directories(src / "etc" / "deep" / "er");
  write_text(src / "etc" / "hostname", "coffer\n");
  write_text(src / "empty", "");
  Bytes big = pattern(3 * 65536 + 123, 7);
  write_text(src / "etc" / "deep" / "er" / "big.bin", to_string(big));
  ::chmod((src / "etc" / "hostname").c_str(), 04751);
  ::chmod((src / "etc" / "deep").c_str(), 0700);
  std::filesystem::create_symlink("../etc/hostname", src / "link");
  ::link((src / "etc" / "hostname").c_str(), (src / "hardlink").c_str());
  ::chmod(src.c_str(), 0711);

  auto stats = import_tree(src, tmp.path() / "efs", test_key());
  ASSERT_TRUE(stats) << stats.error().to_string();
  EXPECT_EQ(stats->files, 4U);
  EXPECT_EQ(stats->dirs, 3U);
  EXPECT_EQ(stats->symlinks, 1U);
  EXPECT_EQ(stats->hardlink_copies, 1U);

  auto fs = Filesystem::open(tmp.path() / "efs", test_key());
  ASSERT_TRUE(fs) << fs.error().to_string();
  EXPECT_EQ(str((*fs)->read_all("/etc/hostname")), "coffer\n");
  EXPECT_EQ(str((*fs)->read_all("/hardlink")), "coffer\n");
  EXPECT_EQ(str((*fs)->read_all("/empty")), "");
  EXPECT_EQ((*fs)->read_all("/etc/deep/er/big.bin").value(), big);
  EXPECT_EQ((*fs)->readlink("/link").value(), "../etc/hostname");
  EXPECT_EQ((*fs)->stat("/etc/hostname")->mode, 04751U);
  EXPECT_EQ((*fs)->stat("/etc/deep")->mode, 0700U);
  EXPECT_EQ((*fs)->stat("/etc/deep")->kind, Kind::kDir);
  EXPECT_EQ((*fs)->stat("/link")->kind, Kind::kSymlink);
  EXPECT_EQ((*fs)->stat("/")->mode, 0711U);
  EXPECT_EQ((*fs)->stat("/etc/hostname")->uid, ::getuid());
  struct stat st {};
  ::lstat((src / "etc" / "hostname").c_str(), &st);
  EXPECT_EQ((*fs)->stat("/etc/hostname")->mtime_ns,
            (static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000) + st.st_mtim.tv_nsec);
  auto names = (*fs)->list("/");
  ASSERT_TRUE(names);
  std::vector<std::string> n;
  for (auto& [name, a] : *names) n.push_back(name);
  EXPECT_EQ(n, (std::vector<std::string>{"empty", "etc", "hardlink", "link"}));
  // a read across a block boundary at an odd offset
  Bytes part(70000);
  auto got = (*fs)->read("/etc/deep/er/big.bin", 65000, part);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, 70000U);
  EXPECT_TRUE(std::equal(part.begin(), part.end(), big.begin() + 65000));
  EXPECT_TRUE((*fs)->check());
  EXPECT_EQ((*fs)->stat("/nope").error().code, kNotFound);
  EXPECT_EQ((*fs)->stat("/etc/hostname/x").error().code, kNotDir);
  EXPECT_EQ((*fs)->stat("/etc/../etc").error().code, kInvalid);
}

TEST(EfsTest, RefusesDeviceNodesAndExistingFilesystem) {
  TempDir tmp;
  ASSERT_TRUE(create(tmp.path() / "efs", test_key()));
  EXPECT_EQ(create(tmp.path() / "efs", test_key()).error().code, kExists);
  EXPECT_EQ(create(tmp.path() / "efs2", Bytes(16, 1)).error().code, kInvalid);
  std::filesystem::create_directories(tmp.path() / "src");
  ASSERT_EQ(::mkfifo((tmp.path() / "src" / "fifo").c_str(), 0600), 0);
  EXPECT_EQ(import_tree(tmp.path() / "src", tmp.path() / "efs3", test_key()).error().code,
            kUnsupported);
}

TEST(EfsTest, WritesTruncatesRenamesUnlinksPersist) {
  TempDir tmp;
  auto dir = tmp.path() / "efs";
  ASSERT_TRUE(create(dir, test_key(), {.block_size = 4096}));
  Bytes data = pattern(10000, 3);
  {
    auto fs = Filesystem::open(dir, test_key()).value();
    ASSERT_TRUE(fs->mkdir("/d", 0755, 1, 2));
    ASSERT_TRUE(fs->create_file("/d/f", 0644, 1, 2));
    EXPECT_EQ(fs->create_file("/d/f", 0644, 1, 2).error().code, kExists);
    ASSERT_TRUE(fs->write("/d/f", 0, data));
    // overwrite in the middle of a block, and a write past the end leaving a zero-filled hole
    ASSERT_TRUE(fs->write("/d/f", 5000, as_bytes("HELLO")));
    std::copy_n("HELLO", 5, data.begin() + 5000);
    ASSERT_TRUE(fs->write("/d/f", 12000, as_bytes("tail")));
    data.resize(12000, 0);
    data.insert(data.end(), {'t', 'a', 'i', 'l'});
    EXPECT_EQ(fs->read_all("/d/f").value(), data);
    ASSERT_TRUE(fs->truncate("/d/f", 9000));
    data.resize(9000);
    ASSERT_TRUE(fs->truncate("/d/f", 9500));
    data.resize(9500, 0);
    EXPECT_EQ(fs->read_all("/d/f").value(), data);
    ASSERT_TRUE(fs->symlink("f", "/d/l", 0, 0));
    ASSERT_TRUE(fs->create_file("/gone", 0600, 0, 0));
    ASSERT_TRUE(fs->write("/gone", 0, as_bytes("x")));
    ASSERT_TRUE(fs->commit());
    ASSERT_TRUE(fs->unlink("/gone"));
    ASSERT_TRUE(fs->rename("/d", "/e"));
    ASSERT_TRUE(fs->mkdir("/empty", 0700, 0, 0));
    EXPECT_EQ(fs->rmdir("/e").error().code, kNotEmpty);
    EXPECT_EQ(fs->rename("/e", "/e/sub").error().code, kInvalid);
    EXPECT_EQ(fs->rename("/e/f", "/empty").error().code, kIsDir);
    ASSERT_TRUE(fs->create_file("/e/g", 0644, 0, 0));
    ASSERT_TRUE(fs->write("/e/g", 0, as_bytes("gee")));
    EXPECT_EQ(fs->rename("/e/g", "/e/f", true).error().code, kExists);
    ASSERT_TRUE(fs->rename("/e/g", "/e/f"));  // replaces f
    ASSERT_TRUE(fs->chmod("/e/f", 0600));
    ASSERT_TRUE(fs->chown("/e/f", 7, std::nullopt));
    ASSERT_TRUE(fs->set_mtime("/e/f", 1234567890123456789));
    ASSERT_TRUE(fs->rmdir("/empty"));
    EXPECT_EQ(fs->unlink("/e").error().code, kIsDir);
    ASSERT_TRUE(fs->commit());
  }
  auto fs = Filesystem::open(dir, test_key()).value();
  EXPECT_EQ(fs->stat("/d").error().code, kNotFound);
  EXPECT_EQ(fs->stat("/gone").error().code, kNotFound);
  EXPECT_EQ(fs->stat("/empty").error().code, kNotFound);
  EXPECT_EQ(str(fs->read_all("/e/f")), "gee");
  auto a = fs->stat("/e/f").value();
  EXPECT_EQ(a.mode, 0600U);
  EXPECT_EQ(a.uid, 7U);
  EXPECT_EQ(a.gid, 0U);
  EXPECT_EQ(a.mtime_ns, 1234567890123456789);
  EXPECT_EQ(fs->readlink("/e/l").value(), "f");
  EXPECT_EQ(fs->stat("/e")->uid, 1U);
  EXPECT_TRUE(fs->check());
  // only live objects stay on the host: root, /e and /e/f
  std::size_t objects = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir / "objects")) ++objects;
  EXPECT_EQ(objects, 3U);
}

// A rootfs has more files than a process may keep open: file objects are not all held open.
TEST(EfsTest, ManyFilesWithALowDescriptorLimit) {
  TempDir tmp;
  auto dir = tmp.path() / "efs";
  ASSERT_TRUE(create(dir, test_key()));
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old), 0);
  std::size_t open_now = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++open_now;
  rlimit low = old;
  low.rlim_cur = open_now + 80;  // room for the 64 cached objects, not for 300 files
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  Status result = ok();
  {
    auto fs = Filesystem::open(dir, test_key()).value();
    for (int i = 0; i < 300 && result; ++i) {
      std::string p = "/f" + std::to_string(i);
      result = fs->create_file(p, 0644, 0, 0);
      if (result) result = fs->write(p, 0, as_bytes(p));
    }
    if (result) result = fs->commit();
    for (int i = 0; i < 300 && result; ++i) {
      std::string p = "/f" + std::to_string(i);
      auto data = fs->read_all(p);
      if (!data)
        result = std::unexpected(data.error());
      else if (to_string(*data) != p)
        result = make_error("mismatch", p);
    }
    if (result) result = fs->check();
  }
  ::setrlimit(RLIMIT_NOFILE, &old);
  EXPECT_TRUE(result) << result.error().to_string();
}

TEST(EfsTest, ReadConcurrentAfterTheFirstRead) {
  TempDir tmp;
  auto dir = tmp.path() / "efs";
  ASSERT_TRUE(create(dir, test_key(), {.block_size = 4096}));
  Bytes data = pattern(100000, 9);
  {
    auto fs = Filesystem::open(dir, test_key()).value();
    ASSERT_TRUE(fs->mkdir("/d", 0755, 0, 0));
    ASSERT_TRUE(fs->create_file("/d/f", 0644, 0, 0));
    ASSERT_TRUE(fs->write("/d/f", 0, data));
    ASSERT_TRUE(fs->commit());
  }
  auto fs = Filesystem::open(dir, test_key()).value();
  Bytes out(10000);
  EXPECT_EQ(fs->read_concurrent("/d/f", 0, out).error().code, kNotLoaded);  // /d not loaded
  ASSERT_TRUE(fs->read("/d/f", 0, out));
  // four threads read overlapping, unaligned ranges at once
  std::vector<std::thread> threads;
  std::vector<int> good(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Bytes buf(7777);
      for (std::uint64_t off = static_cast<std::uint64_t>(t) * 13; off < data.size(); off += 5000) {
        auto n = fs->read_concurrent("/d/f", off, buf);
        if (!n || !std::equal(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n),
                              data.begin() + static_cast<std::ptrdiff_t>(off)))
          return;
      }
      good[static_cast<std::size_t>(t)] = 1;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(good, std::vector<int>(4, 1));
  EXPECT_EQ(fs->read_concurrent("/d", 0, out).error().code, kIsDir);
  EXPECT_EQ(fs->read_concurrent("/d/nope", 0, out).error().code, kNotFound);
}

TEST(EfsTest, GenerationGrowsWithEachCommit) {
  TempDir tmp;
  auto dir = tmp.path() / "efs";
  ASSERT_TRUE(create(dir, test_key()));
  auto fs = Filesystem::open(dir, test_key()).value();
  EXPECT_EQ(fs->generation(), 1U);
  ASSERT_TRUE(fs->commit());  // nothing changed: no new generation
  EXPECT_EQ(fs->generation(), 1U);
  ASSERT_TRUE(fs->mkdir("/a", 0755, 0, 0));
  ASSERT_TRUE(fs->commit());
  EXPECT_EQ(fs->generation(), 2U);
  EXPECT_EQ(Filesystem::open(dir, test_key(), {.min_generation = 2}).value()->generation(), 2U);
  EXPECT_EQ(Filesystem::open(dir, test_key(), {.min_generation = 3}).error().code, kRollback);
}

TEST(EfsTest, ErrnoMapping) {
  EXPECT_EQ(errno_for(Error{std::string(kIntegrity), ""}), EIO);
  EXPECT_EQ(errno_for(Error{std::string(kNotFound), ""}), ENOENT);
  EXPECT_EQ(errno_for(Error{std::string(kNotEmpty), ""}), ENOTEMPTY);
  EXPECT_EQ(errno_for(Error{"something_else", ""}), EIO);
}

}  // namespace
}  // namespace coffer::runtime::efs
