#include "trustee/config.h"

#include <gtest/gtest.h>

namespace coffer::trustee {
namespace {

TEST(TrusteeConfig, DefaultsAndRelativePaths) {
  auto c = parse_config("[http_server]\ninsecure_http = true\n", "/etc/coffer");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->http_server.sockets, std::vector<std::string>{"127.0.0.1:8080"});
  EXPECT_EQ(c->http_server.payload_request_size_bytes, 2u * 1024 * 1024);
  EXPECT_EQ(c->attestation_service.session_timeout, std::chrono::minutes(5));
  EXPECT_FALSE(c->attestation_service.sample_enabled);
  EXPECT_FALSE(c->admin.insecure_admin);
  EXPECT_EQ(c->storage_backend.path, "/etc/coffer/trustee.db");
}

TEST(TrusteeConfig, ResourceLimitKeys) {
  auto d = parse_config("[http_server]\ninsecure_http = true\n", "/etc/coffer");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->http_server.max_connections, 1024u);
  EXPECT_EQ(d->http_server.max_connections_per_address, 64u);
  EXPECT_EQ(d->http_server.header_timeout, std::chrono::seconds(10));
  EXPECT_EQ(d->policy.evaluation_deadline, std::chrono::seconds(1));
  EXPECT_EQ(d->policy.max_builtin_bytes, 64u << 20);
  EXPECT_FALSE(d->kbs.session_key_file);
  EXPECT_EQ(d->kbs.max_consumed_nonces, 100000u);
  auto c = parse_config(R"(
[http_server]
insecure_http = true
max_connections = 100
max_connections_per_address = 0
header_timeout_ms = 2500
[kbs]
session_key_file = "session.key"
max_consumed_nonces = 5000
[policy]
evaluation_deadline_ms = 250
max_builtin_bytes = 1048576
)",
                        "/srv");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->http_server.max_connections, 100u);
  EXPECT_EQ(c->http_server.max_connections_per_address, 0u);
  EXPECT_EQ(c->http_server.header_timeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(*c->kbs.session_key_file, "/srv/session.key");
  EXPECT_EQ(c->kbs.max_consumed_nonces, 5000u);
  EXPECT_EQ(c->policy.evaluation_deadline, std::chrono::milliseconds(250));
  EXPECT_EQ(c->policy.max_builtin_bytes, 1048576u);
  for (const char* bad :
       {"[http_server]\ninsecure_http = true\nmax_connections_per_address = -1\n",
        "[http_server]\ninsecure_http = true\nheader_timeout_ms = 0\n",
        "[http_server]\ninsecure_http = true\n[policy]\nevaluation_deadline_ms = 0\n",
        "[http_server]\ninsecure_http = true\n[kbs]\nsession_key = \"x\"\n"}) {
    auto e = parse_config(bad, "/srv");
    ASSERT_FALSE(e) << bad;
    EXPECT_EQ(e.error().code, "bad_config") << bad;
  }
}

TEST(TrusteeConfig, TrusteeKeyNames) {
  auto c = parse_config(R"(
[http_server]
sockets = ["0.0.0.0:8443"]
private_key = "tls.key"
certificate = "/abs/tls.crt"
payload_request_size = 4
[admin]
auth_public_keys = ["admin.pub"]
[attestation_token]
duration_min = 10
[attestation_service]
timeout = 3
[attestation_service.verifier.sample]
enabled = true
[storage_backend]
type = "sqlite"
path = "db/trustee.db"
)",
                        "/srv");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(*c->http_server.private_key, "/srv/tls.key");
  EXPECT_EQ(*c->http_server.certificate, "/abs/tls.crt");
  EXPECT_EQ(c->http_server.payload_request_size_bytes, 4u * 1024 * 1024);
  EXPECT_EQ(c->admin.auth_public_keys.at(0), "/srv/admin.pub");
  EXPECT_EQ(c->attestation_token.duration, std::chrono::minutes(10));
  EXPECT_EQ(c->attestation_service.session_timeout, std::chrono::minutes(3));
  EXPECT_TRUE(c->attestation_service.sample_enabled);
  EXPECT_EQ(c->storage_backend.path, "/srv/db/trustee.db");
}

TEST(TrusteeConfig, RejectsPlainHttpWithoutOptInAndTypos) {
  EXPECT_EQ(parse_config("", "/").error().code, "bad_config");
  EXPECT_EQ(parse_config("[http_server]\ninsecure_http = true\nsocket = []\n", "/").error().code,
            "bad_config");
  EXPECT_EQ(parse_config(
                "[http_server]\ninsecure_http = true\n[storage_backend]\ntype = \"redis\"\n", "/")
                .error()
                .code,
            "bad_config");
  EXPECT_EQ(
      parse_config("[http_server]\ninsecure_http = true\n[attestation_service]\ntimeout = 0\n", "/")
          .error()
          .code,
      "bad_config");
  EXPECT_EQ(parse_config("[http_server]\ninsecure_http = \"yes\"\n", "/").error().code,
            "bad_config");
}

}  // namespace
}  // namespace coffer::trustee
