// build_image: reproducible one-layer images from a directory or a tar, and the inputs it refuses.
#include "oci/build.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "core/file.h"
#include "oci/layout.h"
#include "oci/test/test_util.h"
#include "oci/unpack/unpack.h"

namespace coffer::oci {
namespace {

namespace fs = std::filesystem;
using testing::make_tar;
using testing::TarEntry;
using testing::TempDir;

void write(const fs::path& p, const std::string& text, mode_t mode = 0644) {
  std::ofstream(p) << text;
  ::chmod(p.c_str(), mode);
}

// A small tree with every kind of entry the build keeps.
void make_tree(const fs::path& root) {
  fs::create_directories(root / "bin");
  fs::create_directories(root / "etc/app");
  write(root / "bin/tool", "#!/bin/sh\necho tool\n", 0755);
  write(root / "bin/suid", "setuid binary", 04755);
  write(root / "etc/app/conf", "key=value\n", 0600);
  fs::create_hard_link(root / "etc/app/conf", root / "etc/app/conf.link");
  fs::create_symlink("tool", root / "bin/sh");
  fs::create_symlink("/etc/passwd", root / "etc/abs");  // kept as it is, never followed
  ::chmod((root / "etc").c_str(), 0750);
}

// The same tree as a tar, written the way another tool might: "./" prefixes, other owners and
// mtimes, the hard link named the other way round, entries in another order.
std::vector<TarEntry> tree_as_tar() {
  return {{.name = "./", .type = '5', .mode = 0755, .uid = 1000, .gid = 1000},
          {.name = "./etc/", .type = '5', .mode = 0750, .mtime = 5},
          {.name = "./etc/app/", .type = '5', .mode = 0755, .uid = 7},
          {.name = "./etc/app/conf.link", .content = "key=value\n", .mode = 0600, .gid = 3},
          {.name = "./etc/app/conf", .type = '1', .link = "./etc/app/conf.link", .mode = 0600},
          {.name = "./etc/abs", .type = '2', .link = "/etc/passwd", .mode = 0644},
          {.name = "./bin/", .type = '5', .mode = 0755, .mtime = 99},
          {.name = "./bin/sh", .type = '2', .link = "tool", .mode = 0777},
          {.name = "./bin/tool", .content = "#!/bin/sh\necho tool\n", .mode = 0755},
          {.name = "./bin/suid", .content = "setuid binary", .mode = 04755, .uid = 12}};
}

fs::path write_tar_file(const fs::path& dir, const std::vector<TarEntry>& entries,
                        bool compress = false) {
  auto tar = make_tar(entries);
  auto path = dir / (compress ? "in.tar.gz" : "in.tar");
  EXPECT_TRUE(write_file_atomic(path, compress ? testing::gzip(tar) : tar));
  return path;
}

Result<BuildResult> build_into(const fs::path& layout_dir, BuildOptions o) {
  auto dst = COFFER_TRY(open_layout_destination(layout_dir, "v1"));
  auto r = COFFER_TRY(build_image(o, *dst));
  COFFER_TRY_STATUS(dst->commit());
  return r;
}

BuildOptions from_dir(const fs::path& dir) {
  BuildOptions o;
  o.from_dir = dir;
  return o;
}

BuildOptions from_tar(const fs::path& file) {
  BuildOptions o;
  o.from_tar = file;
  return o;
}

struct LayerEntry {
  std::string path;
  unsigned type = 0;
  unsigned mode = 0;
  std::int64_t uid = -1, gid = -1, mtime = -1;
  std::string link, hardlink, uname, gname;
  bool has_atime = false, has_ctime = false;
};

// The layer's tar entries, read back with libarchive.
std::vector<LayerEntry> layer_entries(const fs::path& layout_dir, const std::string& digest) {
  auto blob = read_file(layout_dir / "blobs/sha256" / digest.substr(7), 1 << 26).value();
  std::unique_ptr<struct archive, int (*)(struct archive*)> a(archive_read_new(),
                                                              archive_read_free);
  archive_read_support_filter_gzip(a.get());
  archive_read_support_format_tar(a.get());
  EXPECT_EQ(archive_read_open_memory(a.get(), blob.data(), blob.size()), ARCHIVE_OK);
  std::vector<LayerEntry> out;
  struct archive_entry* e = nullptr;
  while (archive_read_next_header(a.get(), &e) == ARCHIVE_OK) {
    LayerEntry l;
    l.path = archive_entry_pathname(e);
    l.type = archive_entry_filetype(e);
    l.mode = archive_entry_perm(e) | (archive_entry_mode(e) & 07000);
    l.uid = archive_entry_uid(e);
    l.gid = archive_entry_gid(e);
    l.mtime = archive_entry_mtime(e);
    if (const char* s = archive_entry_symlink(e)) l.link = s;
    if (const char* s = archive_entry_hardlink(e)) l.hardlink = s;
    if (const char* s = archive_entry_uname(e)) l.uname = s;
    if (const char* s = archive_entry_gname(e)) l.gname = s;
    l.has_atime = archive_entry_atime_is_set(e) != 0;
    l.has_ctime = archive_entry_ctime_is_set(e) != 0;
    out.push_back(l);
  }
  return out;
}

Json config_of(const fs::path& layout_dir, const BuildResult& r) {
  auto blob = read_file(layout_dir / "blobs/sha256" / r.config.digest.substr(7), 1 << 20).value();
  return parse_json(to_string(blob)).value();
}

TEST(BuildImage, SameInputGivesSameDigestsTwice) {
  TempDir tmp;
  make_tree(tmp.path() / "root");
  auto a = build_into(tmp.path() / "a", from_dir(tmp.path() / "root"));
  ASSERT_TRUE(a) << a.error().to_string();
  // mtimes and atimes of the input change between the builds: nothing of them may show
  ::utimensat(AT_FDCWD, (tmp.path() / "root/bin/tool").c_str(), nullptr, 0);
  auto b = build_into(tmp.path() / "b", from_dir(tmp.path() / "root"));
  ASSERT_TRUE(b) << b.error().to_string();
  EXPECT_EQ(a->manifest_digest, b->manifest_digest);
  EXPECT_EQ(a->layer.digest, b->layer.digest);
  EXPECT_EQ(a->config.digest, b->config.digest);
  EXPECT_EQ(a->manifest, b->manifest);
  // what the layout holds is what was returned
  auto layout = OciLayout::open(tmp.path() / "a").value();
  EXPECT_EQ(layout.resolve("v1").value().digest, a->manifest_digest);
}

TEST(BuildImage, DirectoryAndTarOfTheSameContentGiveTheSameDigest) {
  TempDir tmp;
  make_tree(tmp.path() / "root");
  auto dir = build_into(tmp.path() / "d", from_dir(tmp.path() / "root"));
  ASSERT_TRUE(dir) << dir.error().to_string();
  auto tar = build_into(tmp.path() / "t", from_tar(write_tar_file(tmp.path(), tree_as_tar())));
  ASSERT_TRUE(tar) << tar.error().to_string();
  auto gz = build_into(tmp.path() / "g",
                       from_tar(write_tar_file(tmp.path(), tree_as_tar(), /*compress=*/true)));
  ASSERT_TRUE(gz) << gz.error().to_string();
  EXPECT_EQ(dir->layer.digest, tar->layer.digest);
  EXPECT_EQ(dir->manifest_digest, tar->manifest_digest);
  EXPECT_EQ(dir->manifest_digest, gz->manifest_digest);
}

TEST(BuildImage, SourceDateEpochSetsMtimesAndCreatedAndChangesTheDigest) {
  TempDir tmp;
  make_tree(tmp.path() / "root");
  auto zero = build_into(tmp.path() / "a", from_dir(tmp.path() / "root"));
  ASSERT_TRUE(zero);
  auto o = from_dir(tmp.path() / "root");
  o.timestamp = 1700000000;
  auto later = build_into(tmp.path() / "b", o);
  ASSERT_TRUE(later);
  EXPECT_NE(zero->layer.digest, later->layer.digest);
  EXPECT_NE(zero->manifest_digest, later->manifest_digest);
  EXPECT_EQ(config_of(tmp.path() / "a", *zero)["created"], "1970-01-01T00:00:00Z");
  EXPECT_EQ(config_of(tmp.path() / "b", *later)["created"], "2023-11-14T22:13:20Z");
  for (const auto& e : layer_entries(tmp.path() / "b", later->layer.digest)) {
    EXPECT_EQ(e.mtime, 1700000000) << e.path;
  }
  o.timestamp = -1;
  auto bad = build_into(tmp.path() / "c", o);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, "bad_argument");
}

TEST(BuildImage, ConfigFieldsLandInTheImageConfig) {
  TempDir tmp;
  make_tree(tmp.path() / "root");
  auto o = from_dir(tmp.path() / "root");
  o.config.entrypoint = std::vector<std::string>{"/bin/sh", "-c"};
  o.config.cmd = std::vector<std::string>{"echo hi"};
  o.config.env = {"PATH=/bin", "A=b=c"};
  o.config.working_dir = "/etc";
  o.config.user = "1000:1000";
  o.config.labels = {{"org.example.b", "2"}, {"org.example.a", "1"}};
  o.platform = Platform{.os = "linux", .architecture = "arm64", .variant = "v8"};
  auto r = build_into(tmp.path() / "a", o);
  ASSERT_TRUE(r) << r.error().to_string();
  auto c = config_of(tmp.path() / "a", *r);
  EXPECT_EQ(c["config"]["Entrypoint"], Json({"/bin/sh", "-c"}));
  EXPECT_EQ(c["config"]["Cmd"], Json({"echo hi"}));
  EXPECT_EQ(c["config"]["Env"], Json({"PATH=/bin", "A=b=c"}));
  EXPECT_EQ(c["config"]["WorkingDir"], "/etc");
  EXPECT_EQ(c["config"]["User"], "1000:1000");
  EXPECT_EQ(c["config"]["Labels"], Json({{"org.example.a", "1"}, {"org.example.b", "2"}}));
  EXPECT_EQ(c["architecture"], "arm64");
  EXPECT_EQ(c["os"], "linux");
  EXPECT_EQ(c["variant"], "v8");
  EXPECT_EQ(c["rootfs"]["diff_ids"], Json({r->diff_id}));
  // what the unpacker reads back
  auto parsed = parse_image_config(to_bytes(c.dump())).value();
  EXPECT_EQ(parsed.platform.str(), "linux/arm64/v8");
  // nothing set: no member at all (not empty arrays)
  auto plain = build_into(tmp.path() / "b", from_dir(tmp.path() / "root"));
  ASSERT_TRUE(plain);
  EXPECT_EQ(config_of(tmp.path() / "b", *plain)["config"], Json::object());
}

TEST(BuildImage, LayerIsSortedNormalisedAndKeepsLinksAndModes) {
  TempDir tmp;
  make_tree(tmp.path() / "root");
  auto r = build_into(tmp.path() / "a", from_dir(tmp.path() / "root"));
  ASSERT_TRUE(r) << r.error().to_string();
  auto entries = layer_entries(tmp.path() / "a", r->layer.digest);
  std::vector<std::string> paths;
  for (const auto& e : entries) {
    paths.push_back(e.path);
    EXPECT_EQ(e.uid, 0) << e.path;
    EXPECT_EQ(e.gid, 0) << e.path;
    EXPECT_EQ(e.mtime, 0) << e.path;
    EXPECT_EQ(e.uname, "") << e.path;
    EXPECT_EQ(e.gname, "") << e.path;
    EXPECT_FALSE(e.has_atime) << e.path;
    EXPECT_FALSE(e.has_ctime) << e.path;
  }
  EXPECT_EQ(paths,
            (std::vector<std::string>{"bin/", "bin/sh", "bin/suid", "bin/tool", "etc/", "etc/abs",
                                      "etc/app/", "etc/app/conf", "etc/app/conf.link"}));
  auto by = [&](const std::string& p) { return *std::ranges::find(entries, p, &LayerEntry::path); };
  EXPECT_EQ(by("bin/sh").type, AE_IFLNK);
  EXPECT_EQ(by("bin/sh").mode, 0777U);
  EXPECT_EQ(by("bin/sh").link, "tool");
  EXPECT_EQ(by("etc/abs").link, "/etc/passwd");
  EXPECT_EQ(by("bin/suid").mode, 04755U);
  EXPECT_EQ(by("bin/tool").mode, 0755U);
  EXPECT_EQ(by("etc/").mode, 0750U);
  EXPECT_EQ(by("etc/app/conf").mode, 0600U);
  EXPECT_EQ(by("etc/app/conf").hardlink, "");
  EXPECT_EQ(by("etc/app/conf.link").hardlink, "etc/app/conf");

  // and the unpacker makes the same tree of it
  auto src = make_layout_source(OciLayout::open(tmp.path() / "a").value(), "v1");
  unpack::UnpackOptions uo;
  uo.tree.keep_privileges = true;
  uo.tree.apply_xattrs = false;
  auto st = unpack::unpack_image(*src, tmp.path() / "out", uo);
  ASSERT_TRUE(st) << st.error().to_string();
  auto out = tmp.path() / "out";
  EXPECT_EQ(fs::read_symlink(out / "bin/sh"), "tool");
  EXPECT_EQ(fs::read_symlink(out / "etc/abs"), "/etc/passwd");
  EXPECT_TRUE(fs::equivalent(out / "etc/app/conf", out / "etc/app/conf.link"));
  EXPECT_EQ(read_text_file(out / "bin/tool", 100).value(), "#!/bin/sh\necho tool\n");
  struct stat sb {};
  ASSERT_EQ(::stat((out / "bin/suid").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 07777, 04755U);
}

TEST(BuildImage, SetuidBitsAppearOnlyWhenInTheInput) {
  TempDir tmp;
  fs::create_directories(tmp.path() / "root");
  write(tmp.path() / "root/x", "x", 0755);
  auto r = build_into(tmp.path() / "a", from_dir(tmp.path() / "root"));
  ASSERT_TRUE(r);
  EXPECT_EQ(layer_entries(tmp.path() / "a", r->layer.digest).at(0).mode, 0755U);
}

// A refused build writes nothing: the new layout directory never appears.
void expect_refused(const fs::path& layout_dir, const BuildOptions& o, const std::string& code) {
  auto r = build_into(layout_dir, o);
  ASSERT_FALSE(r) << "built " << r->manifest_digest;
  EXPECT_EQ(r.error().code, code) << r.error().to_string();
  EXPECT_FALSE(fs::exists(layout_dir)) << r.error().to_string();
}

TEST(BuildImage, RefusesFifoAndSocketInADirectory) {
  TempDir tmp;
  fs::create_directories(tmp.path() / "fifo/sub");
  ASSERT_EQ(::mkfifo((tmp.path() / "fifo/sub/pipe").c_str(), 0644), 0);
  expect_refused(tmp.path() / "a", from_dir(tmp.path() / "fifo"), "unsupported_file_type");

  fs::create_directories(tmp.path() / "sock");
  int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(s, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  auto path = (tmp.path() / "sock/s").string();
  ASSERT_LT(path.size(), sizeof addr.sun_path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(s);
  expect_refused(tmp.path() / "b", from_dir(tmp.path() / "sock"), "unsupported_file_type");
}

TEST(BuildImage, RefusesDeviceNodesAndFifosInATar) {
  TempDir tmp;
  auto dev = write_tar_file(tmp.path(), {{.name = "dev/", .type = '5', .mode = 0755},
                                         {.name = "dev/null", .type = '3', .mode = 0666}});
  expect_refused(tmp.path() / "a", from_tar(dev), "unsupported_file_type");
  auto fifo = write_tar_file(tmp.path(), {{.name = "p", .type = '6'}});
  expect_refused(tmp.path() / "b", from_tar(fifo), "unsupported_file_type");
}

TEST(BuildImage, RefusesTarPathsThatLeaveTheRoot) {
  TempDir tmp;
  expect_refused(tmp.path() / "a",
                 from_tar(write_tar_file(tmp.path(), {{.name = "../x", .content = "x"}})),
                 "unsafe_path");
  expect_refused(tmp.path() / "b",
                 from_tar(write_tar_file(tmp.path(), {{.name = "a/../../x", .content = "x"}})),
                 "unsafe_path");
  expect_refused(tmp.path() / "c",
                 from_tar(write_tar_file(tmp.path(), {{.name = "/etc/passwd", .content = "x"}})),
                 "unsafe_path");
  // a symlink out of the root, then a file through it
  expect_refused(tmp.path() / "d",
                 from_tar(write_tar_file(
                     tmp.path(), {{.name = "l", .type = '2', .link = "/etc"},
                                  {.name = "l/passwd", .content = "root::0:0::/:/bin/sh"}})),
                 "unsafe_path");
  // the same with the file first and the symlink after it
  expect_refused(tmp.path() / "e",
                 from_tar(write_tar_file(tmp.path(), {{.name = "l/x", .content = "x"},
                                                      {.name = "l", .type = '2', .link = "../"}})),
                 "unsafe_path");
  // a hard link to something the input does not hold
  expect_refused(
      tmp.path() / "f",
      from_tar(write_tar_file(tmp.path(), {{.name = "h", .type = '1', .link = "/etc/shadow"}})),
      "unsafe_path");
  expect_refused(tmp.path() / "g",
                 from_tar(write_tar_file(tmp.path(), {{.name = "h", .type = '1', .link = "y"}})),
                 "unsafe_path");
  // a hard link whose target goes through a symlink of the input
  expect_refused(
      tmp.path() / "h",
      from_tar(write_tar_file(tmp.path(), {{.name = "l", .type = '2', .link = "/etc"},
                                           {.name = "h", .type = '1', .link = "l/shadow"}})),
      "unsafe_path");
  // a file below a file
  expect_refused(tmp.path() / "i",
                 from_tar(write_tar_file(
                     tmp.path(), {{.name = "f", .content = "x"}, {.name = "f/x", .content = "y"}})),
                 "unsafe_path");
}

TEST(BuildImage, RefusesDuplicateTarEntries) {
  TempDir tmp;
  expect_refused(tmp.path() / "a",
                 from_tar(write_tar_file(
                     tmp.path(), {{.name = "x", .content = "1"}, {.name = "./x", .content = "2"}})),
                 "duplicate_entry");
}

TEST(BuildImage, RefusesMissingOrBrokenInput) {
  TempDir tmp;
  expect_refused(tmp.path() / "a", from_dir(tmp.path() / "absent"), "not_found");
  expect_refused(tmp.path() / "b", from_tar(tmp.path() / "absent.tar"), "not_found");
  ASSERT_TRUE(write_file_atomic(tmp.path() / "junk.tar", to_bytes(std::string(600, 'j'))));
  expect_refused(tmp.path() / "c", from_tar(tmp.path() / "junk.tar"), "bad_archive");
  BuildOptions neither;
  expect_refused(tmp.path() / "d", neither, "bad_argument");
}

TEST(BuildImage, BoundsTheInputSize) {
  TempDir tmp;
  fs::create_directories(tmp.path() / "root");
  write(tmp.path() / "root/big", std::string(2000, 'b'));
  auto o = from_dir(tmp.path() / "root");
  o.max_bytes = 1000;
  expect_refused(tmp.path() / "a", o, "input_too_large");
  auto t =
      from_tar(write_tar_file(tmp.path(), {{.name = "big", .content = std::string(2000, 'b')}}));
  t.max_bytes = 1000;
  expect_refused(tmp.path() / "b", t, "input_too_large");
  auto many = from_dir(tmp.path() / "root");
  many.max_entries = 0;
  expect_refused(tmp.path() / "c", many, "input_too_large");
}

}  // namespace
}  // namespace coffer::oci
