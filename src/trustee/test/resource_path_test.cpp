#include "trustee/kbs/resource_path.h"

#include <gtest/gtest.h>

namespace coffer::trustee::kbs {
namespace {

TEST(ResourcePath, AcceptsValid) {
  auto p = parse_resource_path("default/key/1");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->repo, "default");
  EXPECT_EQ(p->str(), "default/key/1");
  EXPECT_TRUE(parse_resource_path("my_repo/type-1/v1.2"));
  EXPECT_TRUE(parse_resource_path("-a/_b/c.."));
  auto uri = parse_resource_uri("kbs:///default/image-key/abc");
  ASSERT_TRUE(uri);
  EXPECT_EQ(uri->tag, "abc");
  EXPECT_TRUE(parse_resource_uri("kbs://host:8080/a/b/c"));
}

TEST(ResourcePath, RejectsTraversalEncodingAndShape) {
  for (const char* bad :
       {"..", "../b/c", "a/../c", "a/b/..", "%2e%2e/b/c", "a/%2F/c", "a/b", "a/b/c/d", "a//c",
        "a/b/", "/a/b", ".hidden/b/c", "a/b/c d", "a/b/c\n", "a/b/ü", ""}) {
    auto r = parse_resource_path(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, "bad_resource_path") << bad;
  }
  EXPECT_FALSE(parse_resource_path(std::string(129, 'a') + "/b/c"));
  EXPECT_TRUE(parse_resource_path(std::string(128, 'a') + "/b/c"));
  EXPECT_FALSE(parse_resource_uri("http://a/b/c/d"));
}

}  // namespace
}  // namespace coffer::trustee::kbs
