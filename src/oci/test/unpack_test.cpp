// Unpack: trees identical to umoci's, whiteouts, bundles, encrypted layers, and hostile layers
// refused with nothing written outside the target and nothing partial left.
#include "oci/unpack/unpack.h"

#include <sys/stat.h>
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

}  // namespace
}  // namespace coffer::oci::unpack
