#include "oci/reference.h"

#include <gtest/gtest.h>

#include "oci/manifest.h"
#include "oci/transport.h"

namespace coffer::oci {
namespace {

TEST(Reference, DockerHubNormalisation) {
  auto r = parse_reference("busybox").value();
  EXPECT_EQ(r.str(), "docker.io/library/busybox:latest");
  EXPECT_EQ(r.api_host(), "registry-1.docker.io");
  EXPECT_EQ(parse_reference("user/app:1.0")->str(), "docker.io/user/app:1.0");
  EXPECT_EQ(parse_reference("index.docker.io/library/alpine")->str(),
            "docker.io/library/alpine:latest");
}

TEST(Reference, RegistryWithPortTagAndDigest) {
  std::string d = "sha256:" + std::string(64, 'a');
  auto r = parse_reference("localhost:5000/a/b:v1@" + d).value();
  EXPECT_EQ(r.registry, "localhost:5000");
  EXPECT_EQ(r.repository, "a/b");
  EXPECT_EQ(r.tag, "v1");
  EXPECT_EQ(r.digest, d);
  EXPECT_EQ(r.tag_or_digest(), d);
  auto r2 = parse_reference("quay.io/x/y@" + d).value();
  EXPECT_TRUE(r2.tag.empty());
  EXPECT_EQ(parse_reference("localhost/app")->registry, "localhost");
  EXPECT_EQ(parse_reference("[::1]:5000/app")->registry, "[::1]:5000");
}

TEST(Reference, RejectsInvalid) {
  for (const char* bad : {"", "UPPER/case", "a//b", "a:", "a@sha256:abc", "-a", "a/b:t@g", "a:-tag",
                          "host:port:x/y"}) {
    auto r = parse_reference(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_EQ(r.error().code, "bad_reference") << bad;
    }
  }
  EXPECT_FALSE(parse_reference(std::string(300, 'a')));
}

TEST(Transport, ParsesDockerAndOci) {
  auto d = parse_image_name("docker://busybox").value();
  EXPECT_EQ(d.transport, Transport::kDocker);
  EXPECT_EQ(d.str(), "docker://docker.io/library/busybox:latest");
  auto o = parse_image_name("oci:/tmp/x:v1").value();
  EXPECT_EQ(o.dir, "/tmp/x");
  EXPECT_EQ(o.tag, "v1");
  EXPECT_TRUE(parse_image_name("oci:/tmp/x")->tag.empty());
  EXPECT_EQ(parse_image_name("busybox").error().code, "bad_image_name");
}

TEST(Manifest, PlatformSelection) {
  Index idx;
  auto add = [&](std::string os, std::string arch, std::string variant) {
    idx.manifests.push_back(Descriptor{.media_type = std::string(media_type::kOciManifest),
                                       .digest = "sha256:" + std::string(64, 'b'),
                                       .size = 1,
                                       .platform = Platform{os, arch, variant, ""}});
  };
  add("linux", "amd64", "");
  add("linux", "arm64", "");
  add("linux", "arm", "v7");
  EXPECT_TRUE(select_platform(idx, Platform{"linux", "arm64", "v8", ""}));
  EXPECT_TRUE(select_platform(idx, Platform{"linux", "arm", "v7", ""}));
  auto none = select_platform(idx, Platform{"linux", "s390x", "", ""});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, "no_matching_platform");
  EXPECT_NE(none.error().message.find("linux/arm/v7"), std::string::npos);
}

TEST(Manifest, KindsAndLimits) {
  EXPECT_EQ(manifest_kind(as_bytes(R"({"schemaVersion":1})"), "").error().code,
            "unsupported_media_type");
  EXPECT_EQ(*manifest_kind(as_bytes(R"({"schemaVersion":2,"manifests":[]})"), ""),
            ManifestKind::kIndex);
  std::string huge(kMaxManifestBytes + 1, ' ');
  EXPECT_EQ(parse_manifest(as_bytes(huge)).error().code, "manifest_too_large");
  EXPECT_EQ(
      parse_manifest(
          as_bytes(R"({"schemaVersion":2,"config":{"digest":"sha256:x","size":1},"layers":[]})"))
          .error()
          .code,
      "bad_manifest");
  auto t = classify_layer("application/vnd.oci.image.layer.v1.tar+zstd+encrypted").value();
  EXPECT_TRUE(t.encrypted);
  EXPECT_EQ(t.compression, Compression::kZstd);
}

}  // namespace
}  // namespace coffer::oci
