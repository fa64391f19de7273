// Unpack: trees identical to umoci's, whiteouts, bundles, encrypted layers, and hostile layers
// refused with nothing written outside the target and nothing partial left.
#include "oci/unpack/unpack.h"

#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zstd.h>

#include <fstream>
#include <map>

#include <gtest/gtest.h>

#include "core/file.h"
#include "crypto/random.h"
#include "oci/layout.h"
#include "oci/test/test_util.h"
#include "oci/transport.h"

namespace coffer::oci::unpack {
namespace {

namespace fs = std::filesystem;
using oci::testing::make_tar;
using oci::testing::TarEntry;
using oci::testing::TempDir;

// path -> "type mode size/target content-digest mtime" for every node under root.
std::map<std::string, std::string> snapshot(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::end(it); ++it) {
    struct stat st {};
    ::lstat(it->path().c_str(), &st);
    std::string rel = fs::relative(it->path(), root).string();
    std::string desc = std::to_string(st.st_mode) + " uid=" + std::to_string(st.st_uid);
    if (S_ISREG(st.st_mode)) {
      desc += " " + sha256_digest(read_file(it->path()).value()) +
              " mtime=" + std::to_string(st.st_mtime) + " links=" + std::to_string(st.st_nlink);
    } else if (S_ISLNK(st.st_mode)) {
      desc += " -> " + fs::read_symlink(it->path()).string();
    }
    out[rel] = desc;
  }
  return out;
}

std::vector<Bytes> sample_layers() {
  Bytes l1 = make_tar({
      {.name = "etc/", .type = '5', .mode = 0755},
      {.name = "etc/passwd", .content = "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n"},
      {.name = "bin/", .type = '5', .mode = 0755},
      {.name = "bin/tool", .content = "#!/bin/sh\necho hi\n", .mode = 0755},
      {.name = "bin/alias", .type = '2', .link = "tool", .mode = 0777},
      {.name = "bin/hard", .type = '1', .link = "bin/tool"},
      {.name = "data/", .type = '5', .mode = 0750},
      {.name = "data/old1", .content = "one"},
      {.name = "data/old2", .content = "two"},
      {.name = "gone", .content = "to be deleted"},
      {.name = "ro/", .type = '5', .mode = 0555},
      {.name = "ro/file", .content = "ro", .mode = 0444},
  });
  Bytes l2 = make_tar({
      {.name = ".wh.gone", .content = ""},
      {.name = "data/", .type = '5', .mode = 0750},
      {.name = "data/.wh..wh..opq", .content = ""},
      {.name = "data/new", .content = "new content", .mtime = 1600000000},
      {.name = "etc/passwd", .content = "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n"},
      {.name = "big", .content = std::string(3 << 20, 'x')},
  });
  return {l1, l2};
}

UnpackOptions options() {
  UnpackOptions o;
  o.tree.apply_xattrs = false;
  return o;
}

Status unpack_layout(const fs::path& layout, const std::string& tag, const fs::path& target,
                     const UnpackOptions& o) {
  auto src = make_layout_source(OciLayout::open(layout).value(), tag);
  return unpack_image(*src, target, o);
}

bool no_leftovers(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().starts_with(".coffer-unpack-")) return false;
  }
  return true;
}

TEST(Unpack, SameTreeAsUmociWithWhiteouts) {
  TempDir tmp;
  oci::testing::write_image(tmp.path() / "img", "v1", sample_layers());
  auto st = unpack_layout(tmp.path() / "img", "v1", tmp.path() / "ours", options());
  ASSERT_TRUE(st) << st.error().to_string();
  auto r =
      oci::testing::run({oci::testing::require_program("umoci"), "unpack", "--rootless", "--image",
                         (tmp.path() / "img").string() + ":v1", (tmp.path() / "umoci").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto ours = snapshot(tmp.path() / "ours");
  auto theirs = snapshot(tmp.path() / "umoci" / "rootfs");
  EXPECT_EQ(ours, theirs);
  EXPECT_FALSE(ours.contains("gone"));
  EXPECT_FALSE(ours.contains("data/old1"));
  EXPECT_TRUE(ours.contains("data/new"));
  EXPECT_TRUE(no_leftovers(tmp.path()));
}

TEST(Unpack, BundleWithRuntimeConfigAndZstdLayer) {
  TempDir tmp;
  auto layout = OciLayout::open_or_create(tmp.path() / "img").value();
  Bytes tar = make_tar({{.name = "hello", .content = "zstd!"}});
  Bytes z(ZSTD_compressBound(tar.size()));
  z.resize(ZSTD_compress(z.data(), z.size(), tar.data(), tar.size(), 3));
  Manifest m{.media_type = std::string(media_type::kOciManifest)};
  m.layers.push_back(Descriptor{.media_type = std::string(media_type::kOciLayerZstd),
                                .digest = layout.put_bytes(z).value(),
                                .size = static_cast<std::int64_t>(z.size())});
  Json cfg{{"architecture", host_platform().architecture},
           {"os", "linux"},
           {"config",
            {{"Entrypoint", {"/hello"}},
             {"Cmd", {"--x"}},
             {"User", "7:8"},
             {"Env", {"A=1"}},
             {"WorkingDir", "/w"}}},
           {"rootfs", {{"type", "layers"}, {"diff_ids", {sha256_digest(tar)}}}}};
  m.config = oci::testing::put_config(layout, cfg);
  oci::testing::put_manifest(layout, m, "z");
  auto o = options();
  o.bundle = true;
  auto st = unpack_layout(tmp.path() / "img", "z", tmp.path() / "bundle", o);
  ASSERT_TRUE(st) << st.error().to_string();
  EXPECT_EQ(read_text_file(tmp.path() / "bundle/rootfs/hello").value(), "zstd!");
  auto spec = parse_json(read_text_file(tmp.path() / "bundle/config.json").value()).value();
  EXPECT_EQ(spec["process"]["args"], Json({"/hello", "--x"}));
  EXPECT_EQ(spec["process"]["user"]["uid"], 7);
  EXPECT_EQ(spec["process"]["user"]["gid"], 8);
  EXPECT_EQ(spec["process"]["cwd"], "/w");
  EXPECT_EQ(spec["root"]["path"], "rootfs");
}

TEST(Unpack, EncryptedLayersThroughKeyProvider) {
  TempDir tmp;
  oci::testing::write_image(tmp.path() / "img", "v1", sample_layers());
  Bytes key = crypto::random_bytes(32);
  auto co = crypt::encrypt_copy_options(
      crypt::EncryptConfig{.kbs_recipients = {{"kbs:///default/image/k1", key}}}, tmp.path());
  auto src = make_layout_source(OciLayout::open(tmp.path() / "img").value(), "v1");
  auto dst =
      open_destination(parse_image_name("oci:" + (tmp.path() / "enc").string() + ":v1").value(), {})
          .value();
  ASSERT_TRUE(copy_image(*src, *dst, co));
  auto o = options();
  auto none = unpack_layout(tmp.path() / "enc", "v1", tmp.path() / "fail", o);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, "missing_decryption_key");
  o.decrypt.key_provider = [&](const std::string& kid) -> Result<Bytes> {
    if (kid != "kbs:///default/image/k1") return make_error("not_found", kid);
    return key;
  };
  auto st = unpack_layout(tmp.path() / "enc", "v1", tmp.path() / "dec", o);
  ASSERT_TRUE(st) << st.error().to_string();
  ASSERT_TRUE(unpack_layout(tmp.path() / "img", "v1", tmp.path() / "plain", options()));
  EXPECT_EQ(snapshot(tmp.path() / "dec"), snapshot(tmp.path() / "plain"));
  EXPECT_FALSE(fs::exists(tmp.path() / "fail"));
}

// Ciphertext altered and the manifest rewritten to match it: blob digests pass, the HMAC does
// not, and the partly unpacked tree is discarded.
TEST(Unpack, HmacMismatchLeavesNothing) {
  TempDir tmp;
  oci::testing::write_image(tmp.path() / "img", "v1", sample_layers(), /*compress=*/false);
  auto key = crypto::Key::generate(crypto::KeyType::kEcP256).value();
  auto src = make_layout_source(OciLayout::open(tmp.path() / "img").value(), "v1");
  auto dst =
      open_destination(parse_image_name("oci:" + (tmp.path() / "enc").string() + ":v1").value(), {})
          .value();
  ASSERT_TRUE(copy_image(
      *src, *dst,
      crypt::encrypt_copy_options(crypt::EncryptConfig{.jwe_recipients = {key}}, tmp.path())));
  auto layout = OciLayout::open(tmp.path() / "enc").value();
  auto m = oci::testing::read_manifest(layout, "v1");
  auto& layer = m.layers[1];
  auto blob = read_file(layout.blob_path(layer.digest)).value();
  blob[blob.size() / 2] ^= 0x01;  // CTR: flips one bit inside the 3 MiB file of the tar
  layer.digest = layout.put_bytes(blob).value();
  oci::testing::put_manifest(layout, m, "v1");
  auto o = options();
  o.decrypt.jwe_keys = {key};
  auto st = unpack_layout(tmp.path() / "enc", "v1", tmp.path() / "out", o);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, "hmac_mismatch") << st.error().to_string();
  EXPECT_FALSE(fs::exists(tmp.path() / "out"));
  EXPECT_TRUE(no_leftovers(tmp.path()));
}

struct Hostile {
  std::string name;
  std::vector<TarEntry> entries;
  std::string code;  // empty: accepted, but nothing outside
};

TEST(Unpack, HostileLayersAreRefusedWithoutTrace) {
  TempDir tmp;
  fs::path outside = tmp.path() / "outside";
  fs::create_directories(outside);
  std::vector<Hostile> cases = {
      {"dotdot", {{.name = "../x", .content = "evil"}}, "unsafe_path"},
      {"deep-dotdot", {{.name = "a/../../x", .content = "evil"}}, "unsafe_path"},
      // Absolute names are taken relative to the root.
      {"absolute", {{.name = outside.string() + "/abs", .content = "evil"}}, ""},
      // Symlinks resolve inside the root: to a missing directory there, so refused.
      {"symlink-then-file",
       {{.name = "link", .type = '2', .link = outside.string()},
        {.name = "link/escaped", .content = "evil"}},
       "unsafe_path"},
      {"symlink-dotdot",
       {{.name = "up", .type = '2', .link = "../../../../../../../../" + outside.string()},
        {.name = "up/escaped2", .content = "evil"}},
       "unsafe_path"},
      // ... and when that directory exists in the root, the file lands there.
      {"symlink-in-root",
       {{.name = "tmp/", .type = '5', .mode = 0755},
        {.name = "l", .type = '2', .link = "../../../tmp"},
        {.name = "l/inside", .content = "fine"}},
       ""},
      {"hardlink-outside",
       {{.name = "h", .type = '1', .link = "../../../../etc/passwd"}},
       "hardlink_escape"},
      {"hardlink-absolute", {{.name = "h", .type = '1', .link = "/etc/passwd"}}, "hardlink_escape"},
      {"device", {{.name = "null", .type = '3', .mode = 0666}}, "device_refused"},
      {"long-name", {{.name = std::string(300, 'n'), .content = "x"}}, "path_too_long"},
  };
  for (const auto& c : cases) {
    auto dir = tmp.path() / ("img-" + c.name);
    oci::testing::write_image(dir, "v1", {make_tar(c.entries)});
    auto target = tmp.path() / ("out-" + c.name);
    auto st = unpack_layout(dir, "v1", target, options());
    if (c.code.empty()) {
      EXPECT_TRUE(st) << c.name << ": " << st.error().to_string();
    } else {
      ASSERT_FALSE(st) << c.name;
      EXPECT_EQ(st.error().code, c.code) << c.name << ": " << st.error().to_string();
      EXPECT_FALSE(fs::exists(target)) << c.name;
    }
    EXPECT_TRUE(fs::is_empty(outside)) << c.name;
    EXPECT_TRUE(no_leftovers(tmp.path())) << c.name;
  }
  EXPECT_TRUE(fs::exists(tmp.path() / "out-symlink-in-root/tmp/inside"));
  EXPECT_TRUE(fs::exists(tmp.path() / "out-absolute" / outside.relative_path() / "abs"));
}

TEST(Unpack, CorruptLayersAreRefused) {
  TempDir tmp;
  Bytes tar = make_tar({{.name = "f", .content = std::string(100000, 'q')}});
  // Truncated gzip: a layout whose blob and digests describe the truncated stream.
  {
    auto layout = OciLayout::open_or_create(tmp.path() / "trunc").value();
    Bytes gz = oci::testing::gzip(tar);
    gz.resize(gz.size() / 2);
    Manifest m{.media_type = std::string(media_type::kOciManifest)};
    m.layers.push_back(Descriptor{.media_type = std::string(media_type::kOciLayerGzip),
                                  .digest = layout.put_bytes(gz).value(),
                                  .size = static_cast<std::int64_t>(gz.size())});
    Json cfg{{"rootfs", {{"type", "layers"}, {"diff_ids", {sha256_digest(tar)}}}},
             {"os", "linux"},
             {"architecture", host_platform().architecture}};
    m.config = oci::testing::put_config(layout, cfg);
    oci::testing::put_manifest(layout, m, "v1");
    auto st = unpack_layout(tmp.path() / "trunc", "v1", tmp.path() / "out1", options());
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, "truncated_layer") << st.error().to_string();
    EXPECT_FALSE(fs::exists(tmp.path() / "out1"));
  }
  // diff_id mismatch: config lists another digest.
  {
    oci::testing::write_image(tmp.path() / "diff", "v1", {tar});
    auto layout = OciLayout::open(tmp.path() / "diff").value();
    auto m = oci::testing::read_manifest(layout, "v1");
    auto cfg = parse_json(to_string(read_file(layout.blob_path(m.config.digest)).value())).value();
    cfg["rootfs"]["diff_ids"][0] = sha256_digest(as_bytes("other"));
    m.config = oci::testing::put_config(layout, cfg);
    oci::testing::put_manifest(layout, m, "v1");
    auto st = unpack_layout(tmp.path() / "diff", "v1", tmp.path() / "out2", options());
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, "diff_id_mismatch") << st.error().to_string();
    EXPECT_FALSE(fs::exists(tmp.path() / "out2"));
  }
  // A blob changed on disk after the manifest was written.
  {
    oci::testing::write_image(tmp.path() / "blob", "v1", {tar});
    auto layout = OciLayout::open(tmp.path() / "blob").value();
    auto m = oci::testing::read_manifest(layout, "v1");
    auto blob = read_file(layout.blob_path(m.layers[0].digest)).value();
    blob[blob.size() - 9] ^= 0x55;
    ASSERT_TRUE(write_file_atomic(layout.blob_path(m.layers[0].digest), blob));
    auto st = unpack_layout(tmp.path() / "blob", "v1", tmp.path() / "out3", options());
    ASSERT_FALSE(st);
    EXPECT_FALSE(fs::exists(tmp.path() / "out3"));
  }
  EXPECT_TRUE(no_leftovers(tmp.path()));
}

// Pax extended header records ("LEN key=value\n"), values may hold any byte.
std::string pax_records(const std::vector<std::pair<std::string, std::string>>& kv) {
  std::string out;
  for (const auto& [k, v] : kv) {
    std::string record = " " + k + "=" + v + "\n";
    std::size_t len = record.size() + 1;
    while (std::to_string(len).size() + record.size() != len) ++len;
    out += std::to_string(len) + record;
  }
  return out;
}

// A GNU pax 1.0 sparse file as GNU tar writes it: the map (count, then offset/length pairs) in
// the data area padded to a block, then the regions' bytes; `realsize` is the apparent size.
std::vector<TarEntry> sparse_entries(
    const std::string& name, std::uint64_t realsize,
    const std::vector<std::pair<std::uint64_t, std::string>>& regions) {
  std::string map = std::to_string(regions.size()) + "\n";
  std::string data;
  for (const auto& [off, bytes] : regions) {
    map += std::to_string(off) + "\n" + std::to_string(bytes.size()) + "\n";
    data += bytes;
  }
  map.resize((map.size() + 511) / 512 * 512, '\0');
  return {{.name = "PaxHeader",
           .type = 'x',
           .content = pax_records({{"GNU.sparse.major", "1"},
                                   {"GNU.sparse.minor", "0"},
                                   {"GNU.sparse.name", name},
                                   {"GNU.sparse.realsize", std::to_string(realsize)}})},
          {.name = "GNUSparseFile.0/" + name, .content = map + data}};
}

// The same in GNU pax 0.1 form: the map in a pax record, the regions' bytes as the data.
std::vector<TarEntry> sparse_entries_01(
    const std::string& name, std::uint64_t realsize,
    const std::vector<std::pair<std::uint64_t, std::string>>& regions) {
  std::string map, data;
  for (const auto& [off, bytes] : regions) {
    map += (map.empty() ? "" : ",") + std::to_string(off) + "," + std::to_string(bytes.size());
    data += bytes;
  }
  return {{.name = "PaxHeader",
           .type = 'x',
           .content = pax_records({{"GNU.sparse.size", std::to_string(realsize)},
                                   {"GNU.sparse.numblocks", std::to_string(regions.size())},
                                   {"GNU.sparse.map", map},
                                   {"GNU.sparse.name", name}})},
          {.name = "GNUSparseFile.1/" + name, .content = data}};
}

std::vector<TarEntry> concat(std::vector<std::vector<TarEntry>> parts) {
  std::vector<TarEntry> out;
  for (auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// path -> mode and content of every node under `dir` (to prove nothing there changed).
std::map<std::string, std::string> listing(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::end(it); ++it) {
    struct stat st {};
    ::lstat(it->path().c_str(), &st);
    std::string desc = std::to_string(st.st_mode);
    if (S_ISREG(st.st_mode)) desc += " " + read_text_file(it->path()).value();
    out[fs::relative(it->path(), dir).string()] = desc;
  }
  struct stat st {};
  ::lstat(dir.c_str(), &st);
  out["."] = std::to_string(st.st_mode);
  return out;
}

struct WhiteoutCase {
  std::string name;
  std::vector<std::vector<TarEntry>> layers;
  std::string code;               // empty: accepted
  std::vector<std::string> gone;  // accepted: removed from the result
  std::vector<std::string> kept;  // accepted: still in the result
};

// A whiteout names an entry like any other: never '', '.' or '..', and it removes only inside
// the root, whichever symlinks its parent passes through. A sentinel next to the root (the
// unpack's temporary directory sits in tmp/) must not change.
TEST(Unpack, WhiteoutsStayInsideTheRoot) {
  TempDir tmp;
  fs::path sentinel = tmp.path() / "sentinel";
  fs::create_directories(sentinel / "sub");
  ASSERT_TRUE(write_file_atomic(sentinel / "file", as_bytes("keep me")));
  ASSERT_TRUE(write_file_atomic(sentinel / "sub" / "deep", as_bytes("keep me too")));
  fs::permissions(sentinel, fs::perms(0755));
  const std::vector<TarEntry> base = {{.name = "a/", .type = '5', .mode = 0755},
                                      {.name = "a/f", .content = "f"},
                                      {.name = "sentinel/", .type = '5', .mode = 0755},
                                      {.name = "sentinel/file", .content = "in root"},
                                      {.name = "keep", .content = "k"}};
  std::string deep = "deep/";
  for (int i = 0; i < 300; ++i) deep += "d/";
  std::vector<WhiteoutCase> cases = {
      // removal depth is bounded (a stack frame and a descriptor per level)
      {"whiteout-of-a-tree-too-deep",
       {{{.name = deep, .type = '5', .mode = 0755}}, {{.name = ".wh.deep"}}},
       "tree_too_deep"},
      {"dotdot", {base, {{.name = ".wh...", .content = ""}}}, "unsafe_path"},
      {"dot-slash-dotdot", {base, {{.name = "./.wh...", .content = ""}}}, "unsafe_path"},
      {"sub-dotdot", {base, {{.name = "a/.wh...", .content = ""}}}, "unsafe_path"},
      {"dot", {base, {{.name = ".wh..", .content = ""}}}, "unsafe_path"},
      {"empty", {base, {{.name = "a/.wh.", .content = ""}}}, "unsafe_path"},
      {"same-layer-dotdot",
       {{{.name = "x", .content = ""}, {.name = ".wh...", .content = ""}}},
       "unsafe_path"},
      // Symlinked parents resolve inside the root: ".." is the root itself.
      {"symlink-up",
       {base, {{.name = "up", .type = '2', .link = "../.."}}, {{.name = "up/.wh.sentinel"}}},
       "",
       {"sentinel"},
       {"a/f", "keep"}},
      {"symlink-absolute",
       {base,
        {{.name = "abs", .type = '2', .link = tmp.path().string()}},
        {{.name = "abs/.wh.sentinel"}}},
       "",
       {},
       {"sentinel/file", "a/f"}},
      {"opaque-through-symlink-up",
       {base, {{.name = "up", .type = '2', .link = "../../.."}}, {{.name = "up/.wh..wh..opq"}}},
       "",
       {"a", "keep", "sentinel", "up"},
       {}},
      {"opaque-through-symlink-absolute",
       {base,
        {{.name = "abs", .type = '2', .link = tmp.path().string()}},
        {{.name = "abs/.wh..wh..opq"}}},
       "",
       {},
       {"a/f", "keep", "sentinel/file"}},
      {"opaque-root",
       {base, {{.name = ".wh..wh..opq"}, {.name = "new", .content = "n"}}},
       "",
       {"a", "keep", "sentinel"},
       {"new"}},
      {"whiteout-of-symlink-to-outside",
       {base, {{.name = "s", .type = '2', .link = sentinel.string()}}, {{.name = ".wh.s"}}},
       "",
       {"s"},
       {"a/f"}},
      {"dir-replaced-through-symlink",
       {base,
        {{.name = "s", .type = '2', .link = sentinel.string()}},
        {{.name = "s/file", .content = "x"}}},
       "unsafe_path"},
  };
  auto before = listing(sentinel);
  auto mode_of = [](const fs::path& p) {
    struct stat st {};
    ::lstat(p.c_str(), &st);
    return st.st_mode;
  };
  fs::permissions(tmp.path(), fs::perms(0755));
  const auto parent_mode = mode_of(tmp.path());  // the unpack root's parent
  for (const auto& c : cases) {
    std::vector<Bytes> tars;
    for (const auto& l : c.layers) tars.push_back(make_tar(l));
    auto dir = tmp.path() / ("img-" + c.name);
    oci::testing::write_image(dir, "v1", tars);
    auto target = tmp.path() / ("out-" + c.name);
    auto st = unpack_layout(dir, "v1", target, options());
    if (c.code.empty()) {
      EXPECT_TRUE(st) << c.name << ": " << st.error().to_string();
      for (const auto& g : c.gone) {
        EXPECT_FALSE(fs::exists(fs::symlink_status(target / g))) << c.name << ": " << g;
      }
      for (const auto& k : c.kept) EXPECT_TRUE(fs::exists(target / k)) << c.name << ": " << k;
    } else {
      ASSERT_FALSE(st) << c.name;
      EXPECT_EQ(st.error().code, c.code) << c.name << ": " << st.error().to_string();
      EXPECT_FALSE(fs::exists(target)) << c.name;
    }
    ASSERT_TRUE(fs::exists(sentinel)) << c.name;
    EXPECT_EQ(listing(sentinel), before) << c.name;
    EXPECT_EQ(mode_of(tmp.path()), parent_mode) << c.name;
    EXPECT_TRUE(fs::exists(dir / "index.json")) << c.name;
    EXPECT_TRUE(no_leftovers(tmp.path())) << c.name;
  }
}

std::string get_xattr(const fs::path& p, const std::string& name) {
  std::string v(256, '\0');
  ssize_t n = ::lgetxattr(p.c_str(), name.c_str(), v.data(), v.size());
  if (n < 0) return "<absent>";
  v.resize(static_cast<std::size_t>(n));
  return v;
}

// vfs_cap_data revision 2, effective: every capability permitted.
std::string all_capabilities() {
  std::string v(20, '\0');
  const unsigned char magic[4] = {0x01, 0x00, 0x00, 0x02};  // VFS_CAP_REVISION_2 | EFFECTIVE
  std::memcpy(v.data(), magic, 4);
  std::memset(v.data() + 4, 0xff, 4);   // permitted, low word
  std::memset(v.data() + 12, 0xff, 1);  // permitted, high word: caps 32..39
  return v;
}

// setuid/setgid bits and file capabilities come only with keep_privileges; trusted.* and other
// security.* attributes never; user.* always.
TEST(Unpack, PrivilegeMetadataFollowsOneRule) {
  TempDir tmp;
  std::string caps = all_capabilities();
  auto xattrs = pax_records({{"SCHILY.xattr.user.note", "hello"},
                             {"SCHILY.xattr.security.capability", caps},
                             {"SCHILY.xattr.trusted.overlay.opaque", "y"},
                             {"SCHILY.xattr.security.evm", "x"}});
  oci::testing::write_image(tmp.path() / "img", "v1",
                            {make_tar({{.name = "PaxHeader", .type = 'x', .content = xattrs},
                                       {.name = "suid", .content = "#!/bin/sh\n", .mode = 06755},
                                       {.name = "d/", .type = '5', .mode = 02775}})});
  auto o = options();
  o.tree.apply_xattrs = true;
  ASSERT_TRUE(unpack_layout(tmp.path() / "img", "v1", tmp.path() / "plain", o));
  fs::path f = tmp.path() / "plain/suid";
  struct stat st {};
  ASSERT_EQ(::stat(f.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  ASSERT_EQ(::stat((tmp.path() / "plain/d").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0775u);
  EXPECT_EQ(get_xattr(f, "user.note"), "hello");
  EXPECT_EQ(get_xattr(f, "security.capability"), "<absent>");
  EXPECT_EQ(get_xattr(f, "trusted.overlay.opaque"), "<absent>");
  EXPECT_EQ(get_xattr(f, "security.evm"), "<absent>");

  o.tree.keep_privileges = true;
  ASSERT_TRUE(unpack_layout(tmp.path() / "img", "v1", tmp.path() / "priv", o));
  f = tmp.path() / "priv/suid";
  ASSERT_EQ(::stat(f.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 06755u);
  EXPECT_EQ(get_xattr(f, "user.note"), "hello");
  // Setting file capabilities needs CAP_SETFCAP: only then can it be observed.
  if (::geteuid() == 0) {
    EXPECT_EQ(get_xattr(f, "security.capability"), caps);
  }
  EXPECT_EQ(get_xattr(f, "trusted.overlay.opaque"), "<absent>");
  EXPECT_EQ(get_xattr(f, "security.evm"), "<absent>");
}

// Sparse files keep their apparent size (also when they end in a hole) and their holes.
TEST(Unpack, SparseFilesExactSizeAndHoles) {
  TempDir tmp;
  constexpr std::uint64_t kGiB = std::uint64_t{1} << 30;
  std::string head(4096, 'h'), mid(4096, 'm');
  oci::testing::write_image(
      tmp.path() / "img", "v1",
      {make_tar(
          concat({sparse_entries("all-hole", 3 * kGiB, {{3 * kGiB, ""}}),
                  sparse_entries("trailing-hole", 3 * kGiB, {{0, head}, {3 * kGiB, ""}}),
                  sparse_entries("middle-hole", (64 << 20) + 4096, {{0, head}, {64 << 20, mid}}),
                  sparse_entries("no-end-marker", 100000, {{8192, mid}}),
                  sparse_entries_01("pax01", 2 * kGiB, {{4096, mid}, {2 * kGiB, ""}})}))});
  auto st = unpack_layout(tmp.path() / "img", "v1", tmp.path() / "out", options());
  ASSERT_TRUE(st) << st.error().to_string();
  auto check = [&](const std::string& name, std::uint64_t size,
                   const std::vector<std::pair<std::uint64_t, std::string>>& data) {
    fs::path p = tmp.path() / "out" / name;
    struct stat s {};
    ASSERT_EQ(::stat(p.c_str(), &s), 0) << name;
    EXPECT_EQ(static_cast<std::uint64_t>(s.st_size), size) << name;
    EXPECT_LT(s.st_blocks * 512, 1 << 20) << name << ": holes were allocated";
    std::ifstream in(p, std::ios::binary);
    for (const auto& [off, bytes] : data) {
      std::string got(bytes.size(), '\0');
      in.clear();
      in.seekg(static_cast<std::streamoff>(off));
      in.read(got.data(), static_cast<std::streamsize>(got.size()));
      EXPECT_EQ(got, bytes) << name << " at " << off;
    }
  };
  std::string zeros(16, '\0');
  check("all-hole", 3 * kGiB, {{0, zeros}, {3 * kGiB - 16, zeros}});
  check("trailing-hole", 3 * kGiB, {{0, head}, {4096, zeros}, {3 * kGiB - 16, zeros}});
  check("middle-hole", (64 << 20) + 4096,
        {{0, head}, {64 << 20, mid}, {4096, std::string(16, '\0')}});
  check("no-end-marker", 100000, {{8192, mid}, {0, std::string(16, '\0')}});
  // A map whose data lies beyond the apparent size, or out of order, is refused.
  for (const auto& [name, entries] : std::vector<std::pair<std::string, std::vector<TarEntry>>>{
           {"beyond", sparse_entries("b", 1000, {{512, std::string(4096, 'b')}})},
           {"beyond01", sparse_entries_01("b", 1000, {{512, std::string(4096, 'b')}})},
           {"unordered", sparse_entries("u", 100000, {{8192, mid}, {0, head}})}}) {
    oci::testing::write_image(tmp.path() / ("img-" + name), "v1", {make_tar(entries)});
    auto bad = unpack_layout(tmp.path() / ("img-" + name), "v1", tmp.path() / name, options());
    ASSERT_FALSE(bad) << name;
    EXPECT_EQ(bad.error().code, "corrupt_layer") << name << ": " << bad.error().to_string();
    EXPECT_FALSE(fs::exists(tmp.path() / name));
  }
  check("pax01", 2 * kGiB, {{0, zeros}, {4096, mid}, {2 * kGiB - 16, zeros}});
}

// Writes a one-layer image whose layer blob is `blob` (compressed `tar` by `media_type`).
void write_compressed_image(const fs::path& dir, const Bytes& tar, const Bytes& blob,
                            std::string_view media_type) {
  auto layout = OciLayout::open_or_create(dir).value();
  Manifest m{.media_type = std::string(media_type::kOciManifest)};
  m.layers.push_back(Descriptor{.media_type = std::string(media_type),
                                .digest = layout.put_bytes(blob).value(),
                                .size = static_cast<std::int64_t>(blob.size())});
  Json cfg{{"rootfs", {{"type", "layers"}, {"diff_ids", {sha256_digest(tar)}}}},
           {"os", "linux"},
           {"architecture", host_platform().architecture}};
  m.config = oci::testing::put_config(layout, cfg);
  oci::testing::put_manifest(layout, m, "v1");
}

Bytes zstd(const Bytes& data) {
  Bytes z(ZSTD_compressBound(data.size()));
  z.resize(ZSTD_compress(z.data(), z.size(), data.data(), data.size(), 19));
  return z;
}

// Decompression bombs stop at the first byte past the configured limit, with the limit named
// and nothing left behind.
TEST(Unpack, BombsStopAtTheLimit) {
  TempDir tmp;
  Bytes tar = make_tar({{.name = "zeros", .content = std::string(32 << 20, '\0')}});
  Bytes gz = oci::testing::gzip(tar);
  Bytes zs = zstd(tar);
  EXPECT_GT(tar.size() / gz.size(), 500u);
  EXPECT_GT(tar.size() / zs.size(), 5000u);
  write_compressed_image(tmp.path() / "gzip", tar, gz, media_type::kOciLayerGzip);
  write_compressed_image(tmp.path() / "zstd", tar, zs, media_type::kOciLayerZstd);
  oci::testing::write_image(tmp.path() / "sparse", "v1",
                            {make_tar(sparse_entries("huge", std::uint64_t{1} << 40,
                                                     {{0, "x"}, {std::uint64_t{1} << 40, ""}}))});
  oci::testing::write_image(tmp.path() / "sparse-small", "v1",
                            {make_tar(sparse_entries("s", 8 << 20, {{0, "x"}, {8 << 20, ""}}))});
  Bytes half = make_tar({{.name = "f", .content = std::string(600 << 10, 'a')}});
  Bytes half2 = make_tar({{.name = "g", .content = std::string(600 << 10, 'b')}});
  oci::testing::write_image(tmp.path() / "two", "v1", {half, half2});

  auto o = options();
  o.max_layer_bytes = 1 << 20;
  o.max_image_bytes = 1 << 30;
  auto expect_refused = [&](const std::string& img, const UnpackOptions& opts,
                            const std::string& code, const std::string& flag) {
    auto target = tmp.path() / ("out-" + img);
    auto st = unpack_layout(tmp.path() / img, "v1", target, opts);
    ASSERT_FALSE(st) << img;
    EXPECT_EQ(st.error().code, code) << img << ": " << st.error().to_string();
    EXPECT_NE(st.error().message.find(flag), std::string::npos) << st.error().message;
    EXPECT_FALSE(fs::exists(target)) << img;
    EXPECT_TRUE(no_leftovers(tmp.path())) << img;
  };
  expect_refused("gzip", o, "layer_too_large", "--max-layer-size");
  expect_refused("zstd", o, "layer_too_large", "--max-layer-size");
  expect_refused("sparse-small", o, "layer_too_large", "--max-layer-size");
  // The defaults refuse a 1 TiB sparse file too.
  expect_refused("sparse", options(), "layer_too_large", "--max-layer-size");
  // Each layer fits, both together do not.
  auto oi = options();
  oi.max_image_bytes = 1 << 20;
  expect_refused("two", oi, "image_too_large", "--max-image-size");
  // Exactly at the limit is fine: the layer is `tar.size()` bytes.
  auto exact = options();
  exact.max_layer_bytes = tar.size();
  EXPECT_TRUE(unpack_layout(tmp.path() / "zstd", "v1", tmp.path() / "exact", exact));
  exact.max_layer_bytes = tar.size() - 1;
  EXPECT_FALSE(unpack_layout(tmp.path() / "zstd", "v1", tmp.path() / "exact-1", exact));
  EXPECT_TRUE(unpack_layout(tmp.path() / "two", "v1", tmp.path() / "two-ok", options()));
}

// `coffer image unpack --max-layer-size/--max-image-size` take sizes with units; the refusal
// names the flag that raises the limit.
TEST(Unpack, CliSizeLimits) {
  TempDir tmp;
  auto p = [&](const std::string& n) { return (tmp.path() / n).string(); };
  oci::testing::write_image(tmp.path() / "img", "v1",
                            {make_tar({{.name = "f", .content = std::string(4096, 'z')}})});
  auto unpack = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {std::string(COFFER_BINARY_DIR) + "/apps/coffer", "image", "unpack",
                               "oci:" + p("img") + ":v1", "--insecure-policy"});
    return oci::testing::run(args);
  };
  auto layer = unpack({"--rootfs", p("r1"), "--max-layer-size", "4KiB"});
  EXPECT_EQ(layer.exit_code, 1) << layer.output;
  EXPECT_NE(layer.output.find("layer_too_large"), std::string::npos) << layer.output;
  EXPECT_NE(layer.output.find("--max-layer-size"), std::string::npos) << layer.output;
  EXPECT_FALSE(fs::exists(tmp.path() / "r1"));
  auto image = unpack({"--rootfs", p("r2"), "--max-image-size", "2k"});
  EXPECT_EQ(image.exit_code, 1) << image.output;
  EXPECT_NE(image.output.find("image_too_large"), std::string::npos) << image.output;
  EXPECT_FALSE(fs::exists(tmp.path() / "r2"));
  auto fits = unpack({"--rootfs", p("r3"), "--max-layer-size", "1MiB", "--max-image-size", "1m"});
  EXPECT_EQ(fits.exit_code, 0) << fits.output;
  EXPECT_TRUE(fs::exists(tmp.path() / "r3/f"));
}

}  // namespace
}  // namespace coffer::oci::unpack
