#include "net/http_server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

#include "net/http_client.h"
#include "net/test/test_util.h"

namespace coffer::net {
namespace {

using testing::RawConnection;
using testing::TestServer;

Response echo(const Request& r) {
  Json j{{"method", r.method},         {"path", r.path()},
         {"query", r.query()},         {"body", r.body},
         {"remote", r.remote_address}, {"x_test", r.headers.get("X-Test").value_or("")}};
  return Response::json(200, j);
}

TEST(HttpServer, RoundTrip) {
  TestServer s(echo);
  HttpClient client;
  ClientRequest req{.method = "POST", .url = s.url("/kbs/v0/auth?x=1")};
  req.headers.add("x-test", "hello");
  req.headers.add("Content-Type", "application/json");
  req.body = R"({"version":"0.4.0"})";
  auto r = client.request(req);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers.get("content-type"), "application/json");
  auto j = Json::parse(r->body);
  EXPECT_EQ(j["method"], "POST");
  EXPECT_EQ(j["path"], "/kbs/v0/auth");
  EXPECT_EQ(j["query"], "x=1");
  EXPECT_EQ(j["body"], R"({"version":"0.4.0"})");
  EXPECT_EQ(j["remote"], "127.0.0.1");
  EXPECT_EQ(j["x_test"], "hello");
}

TEST(HttpServer, MethodsWithoutBody) {
  TestServer s(echo);
  HttpClient client;
  for (const char* method : {"GET", "DELETE", "PUT"}) {
    auto r = client.request({.method = method, .url = s.url("/x")});
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(Json::parse(r->body)["method"], method);
  }
}

TEST(HttpServer, HeadSendsLengthWithoutBody) {
  TestServer s([](const Request&) { return Response::text(200, "twelve bytes"); });
  HttpClient client;
  auto head = client.request({.method = "HEAD", .url = s.url("/")});
  ASSERT_TRUE(head) << head.error().to_string();
  EXPECT_EQ(head->headers.get("Content-Length"), "12");
  EXPECT_EQ(head->body, "");
  auto get = client.request({.url = s.url("/")});  // the connection is still in sync
  ASSERT_TRUE(get) << get.error().to_string();
  EXPECT_EQ(get->body, "twelve bytes");
  EXPECT_EQ(s.server->stats().accepted_connections, 1u);
}

TEST(HttpServer, KeepAliveReusesOneConnection) {
  TestServer s(echo);
  HttpClient client;
  for (int i = 0; i < 5; ++i) {
    auto r = client.request({.url = s.url("/ping")});
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(r->status, 200);
  }
  const auto stats = s.server->stats();
  EXPECT_EQ(stats.accepted_connections, 1u);
  EXPECT_EQ(stats.requests, 5u);
}

TEST(HttpServer, ConcurrentClients) {
  std::atomic<int> in_handler{0};
  std::atomic<int> max_in_handler{0};
  TestServer s([&](const Request& r) {
    const int now = ++in_handler;
    int seen = max_in_handler.load();
    while (now > seen && !max_in_handler.compare_exchange_weak(seen, now)) {
    }
    --in_handler;
    return Response::text(200, r.path());
  });
  constexpr int kClients = 8;
  constexpr int kRequests = 50;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      HttpClient client;
      for (int i = 0; i < kRequests; ++i) {
        const std::string path = "/c" + std::to_string(c) + "/" + std::to_string(i);
        auto r = client.request({.url = s.url(path)});
        if (r && r->status == 200 && r->body == path) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, kClients * kRequests);
  EXPECT_EQ(s.server->stats().accepted_connections, static_cast<std::uint64_t>(kClients));
}

TEST(HttpServer, BodyOverLimitIs413) {
  HttpServerConfig config;
  config.max_body_bytes = 1024;
  TestServer s(echo, config);
  HttpClient client;
  auto small =
      client.request({.method = "POST", .url = s.url("/"), .body = std::string(1024, 'a')});
  ASSERT_TRUE(small) << small.error().to_string();
  EXPECT_EQ(small->status, 200);
  auto big = client.request({.method = "POST", .url = s.url("/"), .body = std::string(4096, 'a')});
  ASSERT_TRUE(big) << big.error().to_string();
  EXPECT_EQ(big->status, 413);
}

TEST(HttpServer, BodyLimitDecidedBeforeReadingTheBody) {
  HttpServerConfig config;
  config.max_body_bytes = 1024;
  TestServer s(echo, config);
  RawConnection conn(s.port);
  // Announces 10 GB and sends none of it: the answer must come from the header alone.
  conn.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n");
  const auto reply = conn.read_until_close();
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 413")) << reply;
  EXPECT_NE(reply.find("Connection: close"), std::string::npos);
}

TEST(HttpServer, ChunkedBodyOverLimitIs413) {
  HttpServerConfig config;
  config.max_body_bytes = 16;
  TestServer s(echo, config);
  RawConnection conn(s.port);
  conn.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n" +
            std::string(32, 'z') + "\r\n0\r\n\r\n");
  EXPECT_TRUE(conn.read_until_close().starts_with("HTTP/1.1 413"));
}

TEST(HttpServer, MalformedRequestIs400AndCloses) {
  TestServer s(echo);
  RawConnection conn(s.port);
  conn.send("GET / HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n");
  const auto reply = conn.read_until_close();  // returns only because the server closes
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 400")) << reply;
  RawConnection garbage(s.port);
  garbage.send("\x16\x03\x01 this is not http\r\n\r\n");
  EXPECT_TRUE(garbage.read_until_close().starts_with("HTTP/1.1 400"));
  EXPECT_EQ(s.server->stats().requests, 0u);
}

TEST(HttpServer, HeaderOverLimitIs431) {
  HttpServerConfig config;
  config.max_header_bytes = 1024;
  TestServer s(echo, config);
  HttpClient client;
  ClientRequest req{.url = s.url("/")};
  req.headers.add("X-Big", std::string(2000, 'h'));
  auto r = client.request(req);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->status, 431);
  auto fine = client.request({.url = s.url("/")});
  ASSERT_TRUE(fine);
  EXPECT_EQ(fine->status, 200);
}

TEST(HttpServer, HandlerExceptionIs500AndServerSurvives) {
  TestServer s([](const Request& r) -> Response {
    if (r.path() == "/throw") throw std::runtime_error("secret detail");
    return Response::text(200, "fine");
  });
  HttpClient client;
  auto r = client.request({.url = s.url("/throw")});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->body.find("secret"), std::string::npos);
  auto again = client.request({.url = s.url("/ok")});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->body, "fine");
  EXPECT_EQ(s.server->stats().accepted_connections, 1u);  // the 500 kept the connection
}

TEST(HttpServer, HandlerCannotBreakFraming) {
  TestServer s([](const Request&) {
    Response r = Response::text(200, "abc");
    r.headers.add("Content-Length", "999");
    r.headers.add("X-Evil", "a\r\nInjected: 1");
    return r;
  });
  HttpClient client;
  auto r = client.request({.url = s.url("/")});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->body, "abc");
  EXPECT_FALSE(r->headers.contains("Injected"));
}

TEST(HttpServer, ExpectContinueUpload) {
  TestServer s(echo);
  RawConnection conn(s.port);
  conn.send("POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_TRUE(conn.read_until("\r\n\r\n").starts_with("HTTP/1.1 100 Continue"));
  conn.send("hello");
  EXPECT_NE(conn.read_until("hello").find(R"("body":"hello")"), std::string::npos);
}

TEST(HttpServer, IdleConnectionIsClosedAfterTimeout) {
  HttpServerConfig config;
  config.idle_timeout = std::chrono::milliseconds(100);
  TestServer s(echo, config);
  RawConnection conn(s.port);
  conn.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  conn.read_until("\"x_test\"");
  const auto begin = std::chrono::steady_clock::now();
  EXPECT_EQ(conn.read_until_close(), "");  // idle after its response
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(5));
}

// A connection that never sends a complete header is closed after header_timeout, however long
// idle_timeout and request_timeout are: idle connections cannot hold slots for long.
TEST(HttpServer, ConnectionWithoutRequestIsClosedAfterHeaderTimeout) {
  HttpServerConfig config;
  config.header_timeout = std::chrono::milliseconds(200);
  config.idle_timeout = std::chrono::seconds(60);
  config.request_timeout = std::chrono::seconds(60);
  TestServer s(echo, config);
  RawConnection silent(s.port);
  RawConnection partial(s.port);
  partial.send("GET / HTTP/1.1\r\nHost: x\r\n");  // never finishes its header
  const auto begin = std::chrono::steady_clock::now();
  EXPECT_EQ(silent.read_until_close(), "");
  EXPECT_EQ(partial.read_until_close(), "");
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(10));
  // A prompt client on a new connection is served normally.
  HttpClient client;
  auto r = client.request({.url = s.url("/")});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->status, 200);
}

// One address cannot take every connection slot: with its per-address share used up by idle
// connections, a client from another address (127.0.0.2, also loopback) is still served.
TEST(HttpServer, PerAddressConnectionLimit) {
  HttpServerConfig config;
  config.max_connections = 8;
  config.max_connections_per_address = 4;
  TestServer s(echo, config);
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < 10; ++i) idle.push_back(std::make_unique<RawConnection>(s.port));
  // The server has accepted (or refused) all ten once a request on a new connection from the
  // other address gets through: accepts are handled in order.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket other(ioc);
  other.open(boost::asio::ip::tcp::v4());
  other.bind({boost::asio::ip::make_address("127.0.0.2"), 0});
  other.connect({boost::asio::ip::make_address("127.0.0.1"), s.port});
  std::string request = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  boost::asio::write(other, boost::asio::buffer(request));
  std::string reply;
  boost::system::error_code ec;
  boost::asio::read(other, boost::asio::dynamic_buffer(reply), ec);
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 200")) << reply;
  EXPECT_NE(reply.find("\"remote\":\"127.0.0.2\""), std::string::npos) << reply;
  EXPECT_EQ(s.server->stats().rejected_connections, 6u);
  // Closing one of 127.0.0.1's connections frees its share for a new one.
  idle.front().reset();
  idle.erase(idle.begin() + 4, idle.end());  // the refused ones
  // The server notices the close asynchronously: retry (bounded) until it has.
  bool served = false;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!served && std::chrono::steady_clock::now() < until) {
    HttpClient client;
    auto r = client.request({.url = s.url("/")});
    served = r && r->status == 200;
  }
  EXPECT_TRUE(served);
}

TEST(HttpServer, SlowRequestIsClosedAfterRequestTimeout) {
  HttpServerConfig config;
  config.request_timeout = std::chrono::milliseconds(100);
  TestServer s(echo, config);
  RawConnection conn(s.port);
  conn.send("GET / HTTP/1.1\r\nHost: x\r\n");  // never finishes the header
  EXPECT_EQ(conn.read_until_close(), "");
}

TEST(HttpServer, AddressInUseAndBadAddress) {
  TestServer s(echo);
  HttpServerConfig config;
  config.sockets = {"127.0.0.1:" + std::to_string(s.port)};
  HttpServer second(config, echo);
  auto r = second.start();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "address_in_use");
  for (const char* bad : {"127.0.0.1", "::1:80", "example.com:80", "1.2.3.4:99999", "[::1]80"}) {
    HttpServerConfig c;
    c.sockets = {bad};
    HttpServer server(c, echo);
    auto e = server.start();
    ASSERT_FALSE(e) << bad;
    EXPECT_EQ(e.error().code, "bad_address") << bad;
  }
}

TEST(HttpServer, SeveralSocketsIncludingIpv6) {
  HttpServerConfig config;
  config.sockets = {"127.0.0.1:0", "[::1]:0"};
  HttpServer server(config, echo);
  auto started = server.start();
  if (!started && started.error().code == "listen_failed") GTEST_SKIP() << "no IPv6 loopback";
  ASSERT_TRUE(started) << started.error().to_string();
  const auto ports = server.bound_ports();
  ASSERT_EQ(ports.size(), 2u);
  HttpClient client;
  auto r = client.request({.url = "http://[::1]:" + std::to_string(ports[1]) + "/"});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(Json::parse(r->body)["remote"], "::1");
}

// A listening socket the caller made (the guest REST API makes it inside a pod's network
// namespace) is served, and closed by stop(); a descriptor that is not a TCP socket is refused
// and stays the caller's.
TEST(HttpServer, AdoptsCallerMadeListenSockets) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  HttpServerConfig config;
  config.sockets.clear();
  config.listen_fds = {fd};
  HttpServer server(config, echo);
  ASSERT_TRUE(server.start());
  ASSERT_EQ(server.bound_ports().size(), 1u);
  HttpClient client;
  auto r = client.request(
      {.url = "http://127.0.0.1:" + std::to_string(server.bound_ports()[0]) + "/adopted"});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(Json::parse(r->body)["path"], "/adopted");
  server.stop();
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);  // closed with the server

  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  HttpServerConfig bad;
  bad.sockets = {"127.0.0.1:0"};
  bad.listen_fds = {pipe_fds[0]};
  HttpServer refused(bad, echo);
  auto e = refused.start();
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, "listen_failed");
  EXPECT_NE(::fcntl(pipe_fds[0], F_GETFD), -1);  // still the caller's
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

TEST(HttpServer, ConnectionLimit) {
  HttpServerConfig config;
  config.max_connections = 1;
  TestServer s(echo, config);
  RawConnection first(s.port);
  first.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  first.read_until("\"x_test\"");  // the first connection is live and counted
  HttpClient client;
  EXPECT_FALSE(client.request({.url = s.url("/")}));
  EXPECT_EQ(s.server->stats().rejected_connections, 1u);
}

TEST(HttpServer, StopWithIdleAndBusyConnections) {
  std::promise<void> entered;
  std::promise<void> release;
  auto released = release.get_future().share();
  TestServer s([&](const Request& r) {
    if (r.path() == "/slow") {
      entered.set_value();
      released.wait();
    }
    return Response::text(200, "done");
  });
  RawConnection idle(s.port);  // connected, never sends
  RawConnection half(s.port);
  half.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc");
  std::future<Result<Response>> busy = std::async(std::launch::async, [&] {
    HttpClient client;
    return client.request({.url = s.url("/slow")});
  });
  entered.get_future().wait();
  std::thread stopper([&] { s.server->stop(); });
  release.set_value();
  stopper.join();  // must not hang
  auto r = busy.get();
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->body, "done");
  EXPECT_EQ(idle.read_until_close(), "");
  EXPECT_EQ(half.read_until_close(), "");
  s.server->stop();  // idempotent
}

TEST(HttpServer, StartTwiceFails) {
  TestServer s(echo);
  auto again = s.server->start();
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, "already_started");
}

}  // namespace
}  // namespace coffer::net
