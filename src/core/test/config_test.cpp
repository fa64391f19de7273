#include "core/config.h"

#include <gtest/gtest.h>

namespace coffer::config {
namespace {

TEST(Config, TypedAccessWithDefaults) {
  auto t = parse(
      "[http_server]\nsockets = [\"127.0.0.1:8080\"]\ninsecure_http = true\n"
      "payload_request_size = 2\n");
  ASSERT_TRUE(t) << t.error().to_string();
  Section root(&*t, "");
  auto http = root.section("http_server");
  EXPECT_EQ(http.string_array("sockets")->at(0), "127.0.0.1:8080");
  EXPECT_TRUE(*http.boolean("insecure_http", false));
  EXPECT_EQ(*http.integer("payload_request_size", 0), 2);
  EXPECT_EQ(*http.string("private_key", "none"), "none");
  EXPECT_FALSE(root.section("absent").present());
  EXPECT_EQ(*root.section("absent").integer("x", 7), 7);
}

TEST(Config, ReportsTypeErrorsAndUnknownKeys) {
  auto t = parse("[a]\nflag = \"yes\"\ntypo = 1\n");
  Section a = Section(&*t, "").section("a");
  EXPECT_EQ(a.boolean("flag", false).error().code, "bad_config");
  auto unknown = a.reject_unknown({"flag"});
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("a.typo"), std::string::npos);
}

TEST(Config, ParseErrorHasLocation) {
  auto t = parse("[a\nx=1\n", "f.toml");
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, "bad_config");
  EXPECT_NE(t.error().message.find("f.toml:1:"), std::string::npos) << t.error().message;
}

}  // namespace
}  // namespace coffer::config
