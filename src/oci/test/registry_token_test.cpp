// The bearer-token flow against the real docker-registry 2.8: the registry is configured with
// "auth: token:" and trusts a test CA (rootcertbundle); a token server in the test answers
// basic-auth-protected GET /token?service=&scope= with registry JWTs (distribution
// docs/spec/auth/token.md and jwt.md), ES256-signed by a key whose certificate the CA issued and
// which travels in the JWT header's x5c.
#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <tuple>

#include <gtest/gtest.h>

#include "core/file.h"
#include "crypto/random.h"
#include "crypto/x509_issue.h"
#include "jose/jwt.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "oci/copy.h"
#include "oci/registry.h"
#include "oci/test/test_util.h"
#include "oci/transport.h"

namespace coffer::oci {
namespace {

using namespace std::chrono_literals;
using testing::copy_by_name;
using testing::sample_layer;
using testing::TempDir;

constexpr std::string_view kService = "coffer-test-registry";
constexpr std::string_view kIssuer = "coffer-test-token-issuer";

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      auto hex = hex_decode(s.substr(i + 1, 2));
      if (hex && hex->size() == 1) {
        out.push_back(static_cast<char>((*hex)[0]));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i] == '+' ? ' ' : s[i]);
  }
  return out;
}

// name=value pairs of a query string, decoded, in order ("scope" may repeat).
std::vector<std::pair<std::string, std::string>> query_params(std::string_view q) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!q.empty()) {
    auto amp = q.find('&');
    auto part = q.substr(0, amp);
    auto eq = part.find('=');
    out.emplace_back(percent_decode(part.substr(0, eq)),
                     eq == std::string_view::npos ? "" : percent_decode(part.substr(eq + 1)));
    q = amp == std::string_view::npos ? "" : q.substr(amp + 1);
  }
  return out;
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  for (;;) {
    auto p = s.find(sep);
    out.emplace_back(s.substr(0, p));
    if (p == std::string_view::npos) return out;
    s = s.substr(p + 1);
  }
}

crypto::Key new_key() { return crypto::Key::generate(crypto::KeyType::kEcP256).value(); }

crypto::Certificate issue(const std::string& cn, bool ca, const crypto::Key& subject,
                          const crypto::Key& issuer_key, const crypto::Certificate* issuer) {
  auto now = std::chrono::system_clock::now();
  crypto::CertificateSpec spec{
      .subject = {{"CN", cn}}, .not_before = now - 1h, .not_after = now + 24h, .ca = ca};
  return crypto::issue_certificate(spec, subject, issuer_key, issuer).value();
}

// A registry token server: users with passwords and, per repository, the actions each may be
// granted. A token carries the requested actions the user holds; others are left out, as
// Docker's token servers do, and the registry then refuses the request.
class TokenServer {
 public:
  struct User {
    std::string password;
    std::map<std::string, std::set<std::string>> actions;  // repository -> actions
  };

  TokenServer()
      : ca_key_(new_key()),
        ca_(issue("coffer test token CA", true, ca_key_, ca_key_, nullptr)),
        signing_key_(new_key()),
        signer_(issue("coffer test token signer", false, signing_key_, ca_key_, &ca_)),
        // Same name as the CA, but self-signed by another key.
        rogue_key_(new_key()),
        rogue_(issue("coffer test token CA", false, rogue_key_, rogue_key_, nullptr)) {
    server_ =
        std::make_unique<net::HttpServer>(net::HttpServerConfig{.sockets = {"127.0.0.1:0"}},
                                          [this](const net::Request& r) { return handle(r); });
    if (server_->start()) port_ = server_->bound_ports()[0];
  }

  [[nodiscard]] bool ok() const { return port_ != 0; }
  [[nodiscard]] std::string realm() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/token";
  }
  [[nodiscard]] std::string root_bundle_pem() const { return ca_.pem(); }

  void add_user(const std::string& name, User user) {
    std::lock_guard lock(mu_);
    users_[name] = std::move(user);
  }
  // Sign with a self-signed certificate the registry does not trust.
  void sign_with_untrusted_key(bool on) {
    std::lock_guard lock(mu_);
    untrusted_ = on;
  }
  [[nodiscard]] std::vector<std::string> scopes_seen() const {
    std::lock_guard lock(mu_);
    return scopes_seen_;
  }
  [[nodiscard]] int issued() const {
    std::lock_guard lock(mu_);
    return issued_;
  }
  [[nodiscard]] int refused() const {
    std::lock_guard lock(mu_);
    return refused_;
  }

 private:
  static net::Response unauthorized(const std::string& message) {
    auto resp = net::Response::json(
        401, Json{{"errors", {{{"code", "UNAUTHORIZED"}, {"message", message}}}}});
    resp.headers.set("WWW-Authenticate", "Basic realm=\"coffer test token server\"");
    return resp;
  }

  net::Response handle(const net::Request& r) {
    std::lock_guard lock(mu_);
    if (r.path() != "/token" || r.method != "GET") return net::Response::text(404, "not found");
    // Authorization: Basic base64(user:password)
    auto header = r.headers.get("Authorization").value_or("");
    std::string user, password;
    if (header.starts_with("Basic ")) {
      auto decoded = base64_decode(header.substr(6));
      if (decoded) {
        auto text = to_string(*decoded);
        auto colon = text.find(':');
        user = text.substr(0, colon);
        if (colon != std::string::npos) password = text.substr(colon + 1);
      }
    }
    auto it = users_.find(user);
    if (it == users_.end() || it->second.password != password) {
      ++refused_;
      return unauthorized("invalid username or password");
    }
    std::string service;
    Json access = Json::array();
    for (const auto& [name, value] : query_params(r.query())) {
      if (name == "service") service = value;
      if (name != "scope") continue;
      scopes_seen_.push_back(value);
      // repository:NAME:ACTION[,ACTION...]
      auto first = value.find(':');
      auto last = value.rfind(':');
      if (first == std::string::npos || first == last) continue;
      std::string type = value.substr(0, first);
      std::string repo = value.substr(first + 1, last - first - 1);
      Json granted = Json::array();
      auto held = it->second.actions.find(repo);
      for (const auto& action : split(value.substr(last + 1), ',')) {
        if (type == "repository" && held != it->second.actions.end() &&
            held->second.contains(action)) {
          granted.push_back(action);
        }
      }
      if (!granted.empty()) {
        access.push_back({{"type", type}, {"name", repo}, {"actions", granted}});
      }
    }
    if (service != kService) return net::Response::text(400, "unknown service '" + service + "'");
    auto now = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    // The registry (2.8) reads "aud" as a single string.
    Json claims{{"iss", kIssuer},
                {"sub", user},
                {"aud", kService},
                {"exp", now + 300},
                {"nbf", now - 5},
                {"iat", now},
                {"jti", crypto::random_uuid_hex()},
                {"access", access}};
    const auto& key = untrusted_ ? rogue_key_ : signing_key_;
    const auto& cert = untrusted_ ? rogue_ : signer_;
    // x5c: standard base64 DER, leaf first (RFC 7515 section 4.1.6); the registry builds the
    // chain from it to a CA in its rootcertbundle.
    auto token = jose::jwt_sign(claims, key, jose::JwsAlg::kES256,
                                Json{{"x5c", {base64_encode(cert.der())}}});
    if (!token) return net::Response::text(500, token.error().to_string());
    ++issued_;
    return net::Response::json(200, Json{{"token", *token}, {"expires_in", 300}});
  }

  crypto::Key ca_key_;
  crypto::Certificate ca_;
  crypto::Key signing_key_;
  crypto::Certificate signer_;
  crypto::Key rogue_key_;
  crypto::Certificate rogue_;
  std::unique_ptr<net::HttpServer> server_;
  std::uint16_t port_ = 0;
  mutable std::mutex mu_;
  std::map<std::string, User> users_;
  bool untrusted_ = false;
  std::vector<std::string> scopes_seen_;
  int issued_ = 0;
  int refused_ = 0;
};

// A token server with alice (pull and push on tok/app and tok/mirror) and reader (pull on
// tok/app), and a registry trusting its CA.
struct TokenRegistry {
  TempDir dir;
  TokenServer tokens;
  std::unique_ptr<testing::Registry> registry;

  TokenRegistry() {
    tokens.add_user("alice",
                    {.password = "wonderland",
                     .actions = {{"tok/app", {"pull", "push"}}, {"tok/mirror", {"pull", "push"}}}});
    tokens.add_user("reader", {.password = "books", .actions = {{"tok/app", {"pull"}}}});
    auto bundle = dir.path() / "token-ca.pem";
    (void)write_file_atomic(bundle, as_bytes(tokens.root_bundle_pem()));
    registry = std::make_unique<testing::Registry>(testing::TokenAuthConfig{
        .realm = tokens.realm(),
        .service = std::string(kService),
        .issuer = std::string(kIssuer),
        .root_cert_bundle = bundle,
    });
  }

  [[nodiscard]] bool ok() const { return tokens.ok() && registry->ok(); }
  [[nodiscard]] std::string host() const { return registry->host(); }

  [[nodiscard]] RegistryOptions options(const std::string& user,
                                        const std::string& password) const {
    auto o = testing::insecure_options(host());
    if (!user.empty()) o.credentials[host()] = Credentials{user, password};
    return o;
  }
};

TEST(RegistryTokenAuth, PushMountAndPullWithTokensFromATokenServer) {
  TokenRegistry env;
  ASSERT_TRUE(env.ok());
  TempDir tmp;
  auto src = "oci:" + (tmp.path() / "src").string() + ":v1";
  auto digest = testing::write_image(tmp.path() / "src", "v1",
                                     {sample_layer('t', 2 << 20), sample_layer('u', 100)});

  // The registry really is in token mode: it sends anonymous clients to the token server.
  net::HttpClient http;
  auto ping = http.request({.url = "http://" + env.host() + "/v2/"});
  ASSERT_TRUE(ping) << ping.error().to_string();
  EXPECT_EQ(ping->status, 401);
  EXPECT_NE(ping->headers.get("WWW-Authenticate").value_or("").find(env.tokens.realm()),
            std::string::npos);

  auto alice = env.options("alice", "wonderland");
  auto pushed = copy_by_name(src, "docker://" + env.host() + "/tok/app:v1", alice);
  ASSERT_TRUE(pushed) << pushed.error().to_string();
  EXPECT_EQ(pushed->manifest_digest, digest);

  // Registry to registry: the mount needs push on tok/mirror and pull on tok/app in one token.
  std::vector<std::string> actions;
  CopyOptions co;
  co.progress = [&](const LayerProgress& p) {
    if (p.done) actions.push_back(p.action);
  };
  auto mirrored = copy_by_name("docker://" + env.host() + "/tok/app:v1",
                               "docker://" + env.host() + "/tok/mirror:v1", alice, co);
  ASSERT_TRUE(mirrored) << mirrored.error().to_string();
  EXPECT_EQ(std::count(actions.begin(), actions.end(), "mount"), 3);

  auto pulled = copy_by_name("docker://" + env.host() + "/tok/mirror:v1",
                             "oci:" + (tmp.path() / "dst").string() + ":v1", alice);
  ASSERT_TRUE(pulled) << pulled.error().to_string();
  EXPECT_EQ(pulled->manifest_digest, digest);

  // skopeo, through the same token server, sees the same image.
  auto inspect =
      testing::run({testing::require_program("skopeo"), "inspect", "--raw", "--tls-verify=false",
                    "--creds", "reader:books", "docker://" + env.host() + "/tok/mirror:v1"});
  EXPECT_NE(inspect.exit_code, 0) << "reader holds nothing on tok/mirror";
  inspect =
      testing::run({testing::require_program("skopeo"), "inspect", "--raw", "--tls-verify=false",
                    "--creds", "alice:wonderland", "docker://" + env.host() + "/tok/mirror:v1"});
  ASSERT_EQ(inspect.exit_code, 0) << inspect.output;
  EXPECT_EQ(sha256_digest(as_bytes(inspect.output)), digest);

  // reader may pull tok/app.
  auto read =
      copy_by_name("docker://" + env.host() + "/tok/app:v1",
                   "oci:" + (tmp.path() / "dst2").string() + ":v1", env.options("reader", "books"));
  ASSERT_TRUE(read) << read.error().to_string();
  EXPECT_EQ(read->manifest_digest, digest);

  auto scopes = env.tokens.scopes_seen();
  auto seen = [&](const std::string& s) {
    return std::find(scopes.begin(), scopes.end(), s) != scopes.end();
  };
  EXPECT_TRUE(seen("repository:tok/app:pull,push"));
  EXPECT_TRUE(seen("repository:tok/app:pull"));
  EXPECT_TRUE(seen("repository:tok/mirror:pull,push"));
  EXPECT_GE(env.tokens.issued(), 4);
  EXPECT_EQ(env.tokens.refused(), 0);
}

TEST(RegistryTokenAuth, RefusesWrongCredentialsWrongScopeAndUntrustedSigner) {
  TokenRegistry env;
  ASSERT_TRUE(env.ok());
  TempDir tmp;
  auto src = "oci:" + (tmp.path() / "src").string() + ":v1";
  testing::write_image(tmp.path() / "src", "v1", {sample_layer('r', 1000)});
  ASSERT_TRUE(copy_by_name(src, "docker://" + env.host() + "/tok/app:v1",
                           env.options("alice", "wonderland")));
  auto app = "docker://" + env.host() + "/tok/app:v1";
  auto out = [&](const std::string& n) { return "oci:" + (tmp.path() / n).string() + ":v1"; };

  // Wrong password and no credentials: the token server refuses, and the error says who.
  for (auto [user, password] : {std::pair{"alice", "nope"}, std::pair{"", ""}}) {
    int refused = env.tokens.refused();
    auto bad = copy_by_name(app, out("bad"), env.options(user, password));
    ASSERT_FALSE(bad) << user;
    EXPECT_EQ(bad.error().code, "unauthorized");
    EXPECT_NE(bad.error().message.find("token server " + env.tokens.realm()), std::string::npos)
        << bad.error().message;
    EXPECT_NE(bad.error().message.find("invalid username or password"), std::string::npos)
        << bad.error().message;
    EXPECT_EQ(env.tokens.refused(), refused + 1);
  }

  // Tokens without the push action: reader on tok/app, alice on a repository she holds nothing
  // on. The registry refuses the push, and nothing lands there.
  for (auto [user, password, repo] : {std::tuple{"reader", "books", "tok/app:v2"},
                                      std::tuple{"alice", "wonderland", "tok/other:v1"}}) {
    auto denied =
        copy_by_name(src, "docker://" + env.host() + "/" + repo, env.options(user, password));
    ASSERT_FALSE(denied) << user;
    EXPECT_EQ(denied.error().code, "unauthorized") << denied.error().to_string();
    // The challenge names the scope the refused request needed.
    std::string name = std::string(repo).substr(0, std::string(repo).find(':'));
    EXPECT_NE(denied.error().message.find(
                  "insufficient_scope): the token server did not grant 'repository:" + name + ":"),
              std::string::npos)
        << denied.error().message;
  }
  auto v2 = copy_by_name("docker://" + env.host() + "/tok/app:v2", out("v2"),
                         env.options("alice", "wonderland"));
  ASSERT_FALSE(v2);
  EXPECT_EQ(v2.error().code, "manifest_unknown");

  // A token signed by a key the registry's rootcertbundle does not vouch for is refused.
  env.tokens.sign_with_untrusted_key(true);
  auto rogue = copy_by_name(app, out("rogue"), env.options("alice", "wonderland"));
  ASSERT_FALSE(rogue);
  EXPECT_EQ(rogue.error().code, "unauthorized") << rogue.error().to_string();
  EXPECT_NE(rogue.error().message.find("invalid_token"), std::string::npos)
      << rogue.error().message;
  env.tokens.sign_with_untrusted_key(false);
  EXPECT_TRUE(copy_by_name(app, out("good"), env.options("alice", "wonderland")));
}

}  // namespace
}  // namespace coffer::oci
