// HTTPS: the server with a certificate made by the openssl CLI, the client with and without
// the CA.
#include <gtest/gtest.h>

#include "net/http_client.h"
#include "net/http_server.h"
#include "net/test/test_util.h"

namespace coffer::net {
namespace {

using testing::TempDir;
using testing::TestServer;

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(testing::make_self_signed(dir_.path)) << "openssl CLI failed";
    config_.tls = TlsServerConfig{dir_.path / "cert.pem", dir_.path / "key.pem"};
  }
  std::string ca() const { return (dir_.path / "cert.pem").string(); }

  TempDir dir_;
  HttpServerConfig config_;
};

Response hello(const Request& r) { return Response::text(200, "secure " + r.path()); }

TEST_F(TlsTest, ClientWithCaSucceedsAndKeepsTheConnection) {
  TestServer s(hello, config_);
  HttpClientOptions options;
  options.ca_file = ca();
  HttpClient client(options);
  for (const char* host : {"localhost", "localhost", "localhost"}) {
    auto r = client.request({.url = s.url("/a", host, "https")});
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(r->body, "secure /a");
  }
  EXPECT_EQ(s.server->stats().accepted_connections, 1u);
  auto by_ip = client.request({.method = "POST",
                               .url = s.url("/ip", "127.0.0.1", "https"),
                               .body = std::string(100000, 'b')});
  ASSERT_TRUE(by_ip) << by_ip.error().to_string();
  EXPECT_EQ(by_ip->body, "secure /ip");
}

TEST_F(TlsTest, ClientWithoutCaFails) {
  TestServer s(hello, config_);
  HttpClientOptions options;
  options.ca_file = "/nonexistent/ca.pem";
  auto bad_file = HttpClient(options).request({.url = s.url("/", "localhost", "https")});
  ASSERT_FALSE(bad_file);
  EXPECT_EQ(bad_file.error().code, "bad_ca_file");
  EXPECT_NE(bad_file.error().message.find("'/nonexistent/ca.pem'"), std::string::npos)
      << bad_file.error().message;

  // The system store does not know our self-signed certificate.
  HttpClient client;
  auto r = client.request({.url = s.url("/", "localhost", "https")});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "tls_untrusted") << r.error().message;

  HttpClientOptions insecure;
  insecure.insecure_skip_verify = true;
  auto skipped = HttpClient(insecure).request({.url = s.url("/", "localhost", "https")});
  ASSERT_TRUE(skipped) << skipped.error().to_string();
  EXPECT_EQ(skipped->status, 200);
}

TEST_F(TlsTest, HostNameIsVerified) {
  TestServer s(hello, config_);
  HttpClientOptions options;
  options.ca_file = ca();
  // The certificate names localhost and 127.0.0.1, not 127.0.0.2.
  auto r = HttpClient(options).request({.url = s.url("/", "127.0.0.2", "https")});
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().code == "tls_untrusted" || r.error().code == "connect_failed")
      << r.error().to_string();
}

TEST_F(TlsTest, PlainHttpToTlsPortFailsAndServerSurvives) {
  TestServer s(hello, config_);
  HttpClient plain;
  auto unanswered = plain.request({.url = s.url("/", "127.0.0.1", "http")});
  ASSERT_FALSE(unanswered);
  EXPECT_EQ(unanswered.error().code, "empty_reply") << unanswered.error().to_string();
  HttpClientOptions options;
  options.ca_file = ca();
  auto r = HttpClient(options).request({.url = s.url("/", "localhost", "https")});
  ASSERT_TRUE(r) << r.error().to_string();
}

// https:// to a plain HTTP port: the client's ClientHello is answered in plain text, which
// OpenSSL reports as "wrong version number".
TEST_F(TlsTest, TlsToPlainHttpPortIsWrongVersion) {
  TestServer plain(hello);
  auto r = HttpClient().request({.url = plain.url("/", "127.0.0.1", "https")});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "tls_wrong_version") << r.error().to_string();
}

TEST_F(TlsTest, StopWithOpenTlsConnections) {
  TestServer s(hello, config_);
  HttpClientOptions options;
  options.ca_file = ca();
  HttpClient client(options);
  ASSERT_TRUE(client.request({.url = s.url("/", "localhost", "https")}));
  testing::RawConnection half_handshake(s.port);
  half_handshake.send("\x16\x03\x01");
  s.server->stop();  // must not hang on either connection
  EXPECT_FALSE(client.request({.url = s.url("/", "localhost", "https")}));
}

TEST_F(TlsTest, BadKeyOrCertificateIsAConfigError) {
  HttpServerConfig config = config_;
  config.sockets = {"127.0.0.1:0"};
  config.tls->private_key = dir_.path / "missing.pem";
  HttpServer server(config, hello);
  auto r = server.start();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "tls_config");

  TempDir other;
  ASSERT_TRUE(testing::make_self_signed(other.path));
  config.tls->private_key = other.path / "key.pem";  // a key of another certificate
  HttpServer mismatched(config, hello);
  auto m = mismatched.start();
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, "tls_config");
}

}  // namespace
}  // namespace coffer::net
