#include "net/http.h"

#include <gtest/gtest.h>

namespace coffer::net {
namespace {

TEST(Headers, CaseInsensitiveAndRepeated) {
  Headers h;
  h.add("Set-Cookie", "a=1");
  h.add("content-type", "text/plain");
  h.add("set-cookie", "b=2");
  EXPECT_EQ(h.get("Content-Type"), "text/plain");
  EXPECT_EQ(h.get("SET-COOKIE"), "a=1");
  EXPECT_EQ(h.all("Set-Cookie"), (std::vector<std::string>{"a=1", "b=2"}));
  EXPECT_FALSE(h.get("Missing").has_value());
  h.set("SET-cookie", "c=3");
  EXPECT_EQ(h.all("set-cookie"), (std::vector<std::string>{"c=3"}));
  EXPECT_EQ(h.remove("Content-Type"), 1u);
  EXPECT_FALSE(h.contains("content-type"));
}

TEST(Request, PathAndQueryAreNotDecoded) {
  Request r;
  r.target = "/kbs/v0/resource/a%2Fb/c/d?x=1&y=%20";
  EXPECT_EQ(r.path(), "/kbs/v0/resource/a%2Fb/c/d");
  EXPECT_EQ(r.query(), "x=1&y=%20");
  r.target = "/plain";
  EXPECT_EQ(r.path(), "/plain");
  EXPECT_EQ(r.query(), "");
}

TEST(Response, Helpers) {
  const auto j = Response::json(201, Json{{"a", 1}});
  EXPECT_EQ(j.status, 201);
  EXPECT_EQ(j.headers.get("content-type"), "application/json");
  EXPECT_EQ(j.body, R"({"a":1})");
  const auto t = Response::text(404, "nope");
  EXPECT_EQ(t.headers.get("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(reason_phrase(404), "Not Found");
  EXPECT_EQ(reason_phrase(799), "");
}

TEST(Cookie, ParsesCookieHeader) {
  Request r;
  r.headers.add("Cookie", "theme=dark;  kbs-session-id=abc123 ; other=\"q\"");
  EXPECT_EQ(cookie(r, "kbs-session-id"), "abc123");
  EXPECT_EQ(cookie(r, "other"), "q");
  EXPECT_EQ(cookie(r, "theme"), "dark");
  EXPECT_FALSE(cookie(r, "session").has_value());
  Request second;
  second.headers.add("Cookie", "x=1");
  second.headers.add("Cookie", "y=2");
  EXPECT_EQ(cookie(second, "y"), "2");
}

TEST(Cookie, SetCookie) {
  EXPECT_EQ(set_cookie("kbs-session-id", "abc"), "kbs-session-id=abc; Path=/; HttpOnly");
  CookieAttributes attrs;
  attrs.max_age_seconds = 300;
  attrs.secure = true;
  attrs.same_site = "Strict";
  attrs.http_only = false;
  EXPECT_EQ(set_cookie("s", "v", attrs), "s=v; Path=/; Max-Age=300; Secure; SameSite=Strict");
}

}  // namespace
}  // namespace coffer::net
