#include "runtime/snapshotter/filter.h"

#include <map>

#include <gtest/gtest.h>

namespace coffer::runtime::snapshotter {
namespace {

// An object with fields name, parent and labels.KEY.
FieldLookup object(std::map<std::string, std::string> fields,
                   std::map<std::string, std::string> labels) {
  return [fields = std::move(fields), labels = std::move(labels)](
             const std::vector<std::string>& path) -> std::optional<std::string> {
    if (path.size() == 1 && fields.contains(path[0])) {
      return fields.at(path[0]);
    }
    if (path.size() >= 2 && path[0] == "labels") {
      std::string key = path[1];
      for (std::size_t i = 2; i < path.size(); ++i) {
        key += "." + path[i];
      }
      if (labels.contains(key)) {
        return labels.at(key);
      }
    }
    return std::nullopt;
  };
}

bool matches(const std::vector<std::string>& filters, const FieldLookup& lookup) {
  auto filter = Filter::parse(filters);
  EXPECT_TRUE(filter.has_value()) << filter.error().to_string();
  return filter && filter->match(lookup);
}

TEST(SnapshotFilter, ContainerdTargetLookup) {
  // the filter containerd's metadata layer sends after a remote snapshotter's AlreadyExists
  auto layer = object({{"name", "coffer-guest-pull/0/sha256:aa"}, {"parent", ""}},
                      {{"containerd.io/snapshot.ref", "sha256:aa"}});
  EXPECT_TRUE(matches({R"(labels."containerd.io/snapshot.ref"==sha256:aa,parent=="")"}, layer));
  EXPECT_FALSE(matches({R"(labels."containerd.io/snapshot.ref"==sha256:bb,parent=="")"}, layer));
  EXPECT_FALSE(matches({R"(labels."containerd.io/snapshot.ref"==sha256:aa,parent=="p")"}, layer));
  // an unquoted dotted label key reads as the fields joined; a '/' needs quotes
  EXPECT_TRUE(matches({"labels.containerd.io==x"}, object({}, {{"containerd.io", "x"}})));
  EXPECT_FALSE(Filter::parse({"labels.containerd.io/snapshot.ref==sha256:aa"}).has_value());
}

TEST(SnapshotFilter, OperatorsPresenceAndOr) {
  auto snap = object({{"name", "k1"}, {"kind", "active"}}, {{"a", "x y"}});
  EXPECT_TRUE(matches({}, snap));
  EXPECT_TRUE(matches({""}, snap));
  EXPECT_TRUE(matches({"labels.a"}, snap));
  EXPECT_FALSE(matches({"labels.b"}, snap));
  EXPECT_TRUE(matches({"labels.b!=z"}, snap));
  EXPECT_TRUE(matches({R"(labels.a=="x y")"}, snap));
  EXPECT_TRUE(matches({"labels.a~=^x"}, snap));
  EXPECT_TRUE(matches({"labels.a~=/y$/"}, snap));
  EXPECT_FALSE(matches({"labels.a~=^y"}, snap));
  EXPECT_TRUE(matches({"name==nope", "kind==active"}, snap));  // filters are ORed
  EXPECT_FALSE(matches({"name==k1,kind==view"}, snap));        // selectors are ANDed
  EXPECT_TRUE(matches({" name == k1 , kind==active "}, snap));
  EXPECT_TRUE(matches({R"(name=="k\"1")"}, object({{"name", "k\"1"}}, {})));
}

TEST(SnapshotFilter, RejectsMalformedAndOversized) {
  for (const char* text : {"name==", "name=k1", ",", "name==a,", "labels.", "labels.\"open",
                           "name~=(", "na-me==x", "name==\"unterminated"}) {
    auto filter = Filter::parse({text});
    ASSERT_FALSE(filter.has_value()) << text;
    EXPECT_EQ(filter.error().code, "invalid_argument") << text;
  }
  EXPECT_FALSE(Filter::parse({std::string(kMaxFilterBytes + 1, 'a')}).has_value());
  EXPECT_FALSE(Filter::parse(std::vector<std::string>(kMaxFilters + 1, "name")).has_value());
}

}  // namespace
}  // namespace coffer::runtime::snapshotter
