// An in-process coffer-trustee on a loopback port, with a pinned clock and an admin key, plus a
// minimal KBS protocol client built from the wire format (independent of src/guest).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "core/file.h"
#include "crypto/digest.h"
#include "crypto/pkey.h"
#include "jose/jcs.h"
#include "jose/jwe.h"
#include "jose/jwk.h"
#include "jose/jwt.h"
#include "net/http_client.h"
#include "trustee/test/test_util.h"
#include "trustee/trustee.h"

namespace coffer::trustee::testing {

inline constexpr std::int64_t kStart = 1'800'000'000;  // 2027-01-15

class KbsFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    clock_ = std::make_shared<ManualClock>(from_unix_seconds(kStart));
    admin_key_ = *crypto::Key::generate(crypto::KeyType::kEd25519);
    ASSERT_TRUE(write_file_atomic(dir_.path() / "admin.pub", as_bytes(admin_key_.public_pem())));
    start(default_config());
  }
  void TearDown() override { trustee_.reset(); }

  std::string default_config(const std::string& extra = "") const {
    return "[http_server]\nsockets = [\"127.0.0.1:0\"]\ninsecure_http = true\npayload_request_size "
           "= 1\n"
           "[admin]\nauth_public_keys = [\"admin.pub\"]\n"
           "[attestation_service.verifier.sample]\nenabled = true\n" +
           extra;
  }

  void start(const std::string& config_text) {
    trustee_.reset();
    auto config = parse_config(config_text, dir_.path());
    ASSERT_TRUE(config) << config.error().to_string();
    auto t = Trustee::create(*config, clock_);
    ASSERT_TRUE(t) << t.error().to_string();
    trustee_ = std::move(*t);
    // The default policy never affirms sample evidence; the tests of the protocol use the
    // development policy, which does (for a registered svn).
    if (development_policy_) {
      ASSERT_TRUE(trustee_->attestation_service().set_policy(
          "default_cpu", std::string(as::development_attestation_policy())));
    }
    ASSERT_TRUE(trustee_->start());
    url_ = trustee_->urls().at(0);
    port_ = static_cast<std::uint16_t>(std::stoi(url_.substr(url_.rfind(':') + 1)));
  }

  std::string admin_token(std::chrono::seconds lifetime = std::chrono::minutes(10),
                          const crypto::Key* key = nullptr) const {
    auto now = unix_seconds(clock_->now());
    Json claims = {{"iat", now}, {"exp", now + lifetime.count()}};
    return *jose::jwt_sign(claims, key ? *key : admin_key_, jose::JwsAlg::kEdDSA);
  }

  net::Response call(net::HttpClient& client, const std::string& method, const std::string& path,
                     const std::string& body = "", const std::string& bearer = "") {
    net::ClientRequest req;
    req.method = method;
    req.url = url_ + path;
    req.body = body;
    if (!body.empty()) req.headers.set("Content-Type", "application/json");
    if (!bearer.empty()) req.headers.set("Authorization", "Bearer " + bearer);
    auto r = client.request(req);
    EXPECT_TRUE(r) << r.error().to_string();
    return r ? *r : net::Response{};
  }

  net::Response admin(const std::string& method, const std::string& path,
                      const std::string& body = "") {
    net::HttpClient c;
    return call(c, method, path, body, admin_token());
  }

  void register_svn(const std::string& svn = "1") {
    std::string payload = Json{{"sample.svn", Json::array({svn})}}.dump();
    Json msg = {
        {"version", "0.1.0"}, {"type", "sample"}, {"payload", base64_encode(as_bytes(payload))}};
    ASSERT_EQ(admin("POST", "/kbs/v0/reference-value", msg.dump()).status, 200);
  }

  // RCAR as a guest does it; returns the /attest response.
  struct Handshake {
    crypto::Key tee_key;
    std::string nonce;
    net::Response attest;
  };
  Json tee_jwk(const crypto::Key& key) const { return *jose::key_to_jwk(key.public_key()); }
  static Bytes report_data(const Json& jwk, const std::string& nonce,
                           const std::string& additional = "") {
    Json binding = {{"tee-pubkey", jwk}, {"nonce", nonce}, {"additional-evidence", additional}};
    return crypto::sha384(as_bytes(*jose::jcs(binding)));
  }
  net::Response auth(net::HttpClient& client, const std::string& tee = "sample",
                     const std::string& version = "0.4.0") {
    Json body = {{"version", version}, {"tee", tee}, {"extra-params", Json::object()}};
    return call(client, "POST", "/kbs/v0/auth", body.dump());
  }
  Json attest_body(const crypto::Key& key, const std::string& nonce, ByteView rd) const {
    Json jwk = tee_jwk(key);
    return {{"runtime-data", {{"nonce", nonce}, {"tee-pubkey", jwk}}},
            {"tee-evidence",
             {{"primary_evidence", {{"svn", "1"}, {"report_data", base64_encode(rd)}}},
              {"additional_evidence", ""}}}};
  }
  Handshake handshake(net::HttpClient& client) {
    Handshake h{*crypto::Key::generate(crypto::KeyType::kEcP256), "", {}};
    auto a = auth(client);
    EXPECT_EQ(a.status, 200) << a.body;
    h.nonce = (*parse_json(a.body))["nonce"].get<std::string>();
    Bytes rd = report_data(tee_jwk(h.tee_key), h.nonce);
    h.attest = call(client, "POST", "/kbs/v0/attest", attest_body(h.tee_key, h.nonce, rd).dump());
    return h;
  }

  static std::string problem_type(const net::Response& r) {
    auto j = parse_json(r.body);
    if (!j || !j->contains("type")) return "<no problem type: " + r.body + ">";
    std::string t = (*j)["type"];
    return t.substr(t.rfind('/') + 1);
  }
  static std::string detail(const net::Response& r) {
    auto j = parse_json(r.body);
    return j && j->contains("detail") ? (*j)["detail"].get<std::string>() : std::string();
  }

  // Sends raw bytes over TCP (no client-side path normalisation) and returns the status code.
  int raw_status(const std::string& request_text) const {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port_);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      return -1;
    }
    ::send(fd, request_text.data(), request_text.size(), 0);
    std::string reply;
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) {
      reply.append(buf, static_cast<std::size_t>(n));
      if (reply.find("\r\n") != std::string::npos) break;
    }
    ::close(fd);
    if (reply.size() < 12) return -1;
    return std::stoi(reply.substr(9, 3));
  }

  TempDir dir_;
  bool development_policy_ = true;  // install the development attestation policy at start()
  std::shared_ptr<ManualClock> clock_;
  crypto::Key admin_key_ = *crypto::Key::generate(crypto::KeyType::kEd25519);
  std::unique_ptr<Trustee> trustee_;
  std::string url_;
  std::uint16_t port_ = 0;
};

}  // namespace coffer::trustee::testing
