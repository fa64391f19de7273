#include "net/http_client.h"

#include <future>
#include <mutex>

#include <gtest/gtest.h>

#include "net/test/test_util.h"

namespace coffer::net {
namespace {

using testing::TestServer;

// Deterministic content so that a transfer can be checked byte for byte.
char pattern_byte(std::size_t i) { return static_cast<char>('a' + (i * 7 + i / 251) % 26); }

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = pattern_byte(i);
  return s;
}

TEST(HttpClient, CookiesFromOneResponseAreSentWithTheNext) {
  TestServer s([](const Request& r) {
    if (r.path() == "/kbs/v0/auth") {
      Response resp = Response::json(200, Json{{"nonce", "n"}});
      resp.headers.add("Set-Cookie", set_cookie("kbs-session-id", "0123abcd"));
      return resp;
    }
    return Response::text(200, cookie(r, "kbs-session-id").value_or("<none>"));
  });
  HttpClient client;
  auto before = client.request({.url = s.url("/kbs/v0/attest")});
  ASSERT_TRUE(before);
  EXPECT_EQ(before->body, "<none>");
  auto auth = client.request({.method = "POST", .url = s.url("/kbs/v0/auth"), .body = "{}"});
  ASSERT_TRUE(auth) << auth.error().to_string();
  EXPECT_EQ(auth->headers.get("set-cookie"), "kbs-session-id=0123abcd; Path=/; HttpOnly");
  auto attest = client.request({.method = "POST", .url = s.url("/kbs/v0/attest"), .body = "{}"});
  ASSERT_TRUE(attest);
  EXPECT_EQ(attest->body, "0123abcd");
  client.clear_cookies();
  EXPECT_EQ(client.request({.url = s.url("/x")})->body, "<none>");

  HttpClient other;  // jars are per client
  EXPECT_EQ(other.request({.url = s.url("/x")})->body, "<none>");
}

TEST(HttpClient, StreamingDownloadInChunks) {
  constexpr std::size_t kSize = 8 * 1024 * 1024 + 13;
  const std::string blob = pattern(kSize);
  TestServer s([&](const Request&) { return Response::bytes(200, blob); });
  HttpClientOptions options;
  options.max_response_bytes = 1024;  // applies to buffered requests only
  HttpClient client(options);
  std::size_t received = 0;
  std::size_t chunks = 0;
  bool same = true;
  auto r = client.request_streaming({.url = s.url("/blob")}, [&](ByteView chunk) -> Status {
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      same = same && chunk[i] == static_cast<std::uint8_t>(pattern_byte(received + i));
    }
    received += chunk.size();
    ++chunks;
    return ok();
  });
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->body.empty());
  EXPECT_EQ(r->headers.get("Content-Length"), std::to_string(kSize));
  EXPECT_EQ(received, kSize);
  EXPECT_GT(chunks, 1u);
  EXPECT_TRUE(same);
}

TEST(HttpClient, StreamingCallbackErrorAbortsTransfer) {
  TestServer s([](const Request&) { return Response::bytes(200, pattern(4 * 1024 * 1024)); });
  HttpClient client;
  auto r = client.request_streaming({.url = s.url("/")}, [](ByteView) -> Status {
    return make_error("digest_mismatch", "blob does not match its digest");
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "digest_mismatch");
  // The client stays usable after an aborted transfer.
  auto again = client.request_streaming({.url = s.url("/")}, [](ByteView) { return ok(); });
  EXPECT_TRUE(again);
}

class UploadTest : public ::testing::TestWithParam<bool> {};

TEST_P(UploadTest, UploadFromReader) {
  const bool known_length = GetParam();
  constexpr std::size_t kSize = 5 * 1024 * 1024 + 7;
  HttpServerConfig config;
  config.max_body_bytes = 16 * 1024 * 1024;
  std::mutex mu;
  std::string received_body;
  std::string transfer_encoding;
  TestServer s(
      [&](const Request& r) {
        std::lock_guard lock(mu);
        received_body = r.body;
        transfer_encoding = r.headers.get("Transfer-Encoding").value_or("");
        return Response::text(201, r.method);
      },
      config);
  std::size_t offset = 0;
  ClientRequest req{.method = "POST", .url = s.url("/v2/repo/blobs/uploads/x")};
  req.body_reader = [&](std::span<std::uint8_t> buf) -> Result<std::size_t> {
    const std::size_t n = std::min(buf.size(), kSize - offset);
    for (std::size_t i = 0; i < n; ++i)
      buf[i] = static_cast<std::uint8_t>(pattern_byte(offset + i));
    offset += n;
    return n;
  };
  if (known_length) req.body_length = kSize;
  HttpClient client;
  auto r = client.request(req);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body, "POST");
  std::lock_guard lock(mu);
  EXPECT_EQ(received_body.size(), kSize);
  EXPECT_TRUE(received_body == pattern(kSize));
  EXPECT_EQ(transfer_encoding, known_length ? "" : "chunked");
}

INSTANTIATE_TEST_SUITE_P(KnownAndChunked, UploadTest, ::testing::Bool());

// One handle serves every request: nothing of a request's method or body may leak into the next.
TEST(HttpClient, MixedRequestsOnOneClient) {
  TestServer s([](const Request& r) {
    return Response::text(200, r.method + " " + std::to_string(r.body.size()) + " " +
                                   r.headers.get("Content-Type").value_or("-"));
  });
  HttpClient client;
  auto send = [&](ClientRequest req) {
    req.url = s.url("/");
    auto r = client.request(req);
    return r ? r->body : r.error().to_string();
  };
  ClientRequest upload{.method = "PUT"};
  upload.body_reader = [done = false](std::span<std::uint8_t> buf) mutable -> Result<std::size_t> {
    if (done) return 0;
    done = true;
    buf[0] = 'x';
    return 1;
  };
  upload.body_length = 1;
  EXPECT_EQ(send(upload), "PUT 1 -");
  EXPECT_EQ(send({.method = "GET"}), "GET 0 -");
  EXPECT_EQ(send({.method = "POST", .body = "abc"}), "POST 3 -");
  EXPECT_EQ(send({.method = "HEAD"}), "");
  EXPECT_EQ(send({.method = "DELETE"}), "DELETE 0 -");
  ClientRequest json{.method = "PATCH", .body = "{}"};
  json.headers.add("Content-Type", "application/json");
  EXPECT_EQ(send(json), "PATCH 2 application/json");
  EXPECT_EQ(send({.method = "GET"}), "GET 0 -");
  EXPECT_EQ(s.server->stats().accepted_connections, 1u);
}

TEST(HttpClient, ReaderErrorAbortsUpload) {
  TestServer s([](const Request&) { return Response::text(200, "unexpected"); });
  HttpClient client;
  ClientRequest req{.method = "PUT", .url = s.url("/")};
  req.body_reader = [](std::span<std::uint8_t>) -> Result<std::size_t> {
    return make_error("read_failed", "disk error");
  };
  req.body_length = 100;
  auto r = client.request(req);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "read_failed");
}

TEST(HttpClient, MaxResponseBytes) {
  TestServer s([](const Request& r) {
    return Response::text(200, std::string(r.path() == "/big" ? 5000 : 1000, 'x'));
  });
  HttpClientOptions options;
  options.max_response_bytes = 1000;
  HttpClient client(options);
  auto small = client.request({.url = s.url("/small")});
  ASSERT_TRUE(small) << small.error().to_string();
  EXPECT_EQ(small->body.size(), 1000u);
  auto big = client.request({.url = s.url("/big")});
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, "too_large");
}

TEST(HttpClient, RedirectToAnotherHostDropsAuthorization) {
  std::mutex mu;
  std::vector<std::string> seen_auth;
  TestServer target([&](const Request& r) {
    std::lock_guard lock(mu);
    seen_auth.push_back(r.headers.get("Authorization").value_or("<none>"));
    return Response::text(200, "target " + r.path());
  });
  TestServer origin([&](const Request& r) {
    Response resp;
    resp.status = 302;
    if (r.path() == "/same") {
      resp.headers.add("Location", "/final");
    } else if (r.path() == "/other") {
      // Another host name and port: localhost instead of 127.0.0.1.
      resp.headers.add("Location", target.url("/final", "localhost"));
    } else {
      std::lock_guard lock(mu);
      seen_auth.push_back(r.headers.get("Authorization").value_or("<none>"));
      resp.status = 200;
      resp.body = "origin " + r.path();
    }
    return resp;
  });
  HttpClient client;
  ClientRequest req{.url = origin.url("/same")};
  req.headers.add("Authorization", "Bearer secret-token");
  auto same = client.request(req);
  ASSERT_TRUE(same) << same.error().to_string();
  EXPECT_EQ(same->body, "origin /final");

  req.url = origin.url("/other");
  auto other = client.request(req);
  ASSERT_TRUE(other) << other.error().to_string();
  EXPECT_EQ(other->status, 200);
  EXPECT_EQ(other->body, "target /final");  // the redirect's own body is not included
  EXPECT_EQ(client.effective_url(), target.url("/final", "localhost"));
  std::lock_guard lock(mu);
  EXPECT_EQ(seen_auth, (std::vector<std::string>{"Bearer secret-token", "<none>"}));
}

TEST(HttpClient, RedirectLoopIsBounded) {
  TestServer s([](const Request&) {
    Response r;
    r.status = 302;
    r.headers.add("Location", "/again");
    return r;
  });
  HttpClientOptions options;
  options.max_redirects = 3;
  HttpClient client(options);
  auto r = client.request({.url = s.url("/")});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "too_many_redirects");
  EXPECT_EQ(s.server->stats().requests, 4u);
}

TEST(HttpClient, ConnectFailedAndBadUrl) {
  std::uint16_t closed_port = 0;
  {
    TestServer s([](const Request&) { return Response{}; });
    closed_port = s.port;
  }
  HttpClient client;
  auto r = client.request({.url = "http://127.0.0.1:" + std::to_string(closed_port) + "/"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "connect_failed");
  EXPECT_EQ(client.request({.url = "ftp://127.0.0.1/"}).error().code, "bad_url");
  ClientRequest injected{.url = "http://127.0.0.1:1/"};
  injected.headers.add("X-A", "1\r\nX-B: 2");
  EXPECT_EQ(client.request(injected).error().code, "bad_request");
}

TEST(HttpClient, Timeout) {
  std::promise<void> release;
  auto released = release.get_future().share();
  TestServer s([&](const Request&) {
    released.wait();
    return Response::text(200, "late");
  });
  HttpClientOptions options;
  options.timeout = std::chrono::milliseconds(200);
  HttpClient client(options);
  auto r = client.request({.url = s.url("/")});
  release.set_value();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "timeout");
}

}  // namespace
}  // namespace coffer::net
