// KBS protocol 0.4.0 over real HTTP on loopback: the happy path and each failure with its exact
// status and error type.
#include "crypto/random.h"
#include "trustee/test/kbs_fixture.h"

#include <sqlite3.h>

namespace coffer::trustee::testing {
namespace {

class KbsHttp : public KbsFixture {};

TEST_F(KbsHttp, HappyPathCookieAndBearer) {
  register_svn("1");
  ASSERT_EQ(admin("POST", "/kbs/v0/resource/default/key/1", "the-secret").status, 200);

  net::HttpClient client;
  auto a = auth(client);
  ASSERT_EQ(a.status, 200) << a.body;
  auto body = *parse_json(a.body);
  EXPECT_EQ(body["extra-params"], "");
  EXPECT_EQ(base64_decode(body["nonce"].get<std::string>())->size(), 32u);
  auto cookie = a.headers.get("Set-Cookie");
  ASSERT_TRUE(cookie);
  ASSERT_TRUE(cookie->starts_with("kbs-session-id="));
  // A self-contained challenge (sealed, base64url), not a table key.
  std::string id = cookie->substr(15, cookie->find(';') - 15);
  EXPECT_TRUE(base64url_decode(id)) << id;
  EXPECT_LE(id.size(), 256u);

  std::string nonce = body["nonce"];
  auto key = *crypto::Key::generate(crypto::KeyType::kEcP256);
  auto at = call(client, "POST", "/kbs/v0/attest",
                 attest_body(key, nonce, report_data(tee_jwk(key), nonce)).dump());
  ASSERT_EQ(at.status, 200) << at.body;
  std::string token = (*parse_json(at.body))["token"];
  // The cookie now refers to the attested session.
  auto attested_cookie = at.headers.get("Set-Cookie");
  ASSERT_TRUE(attested_cookie);
  EXPECT_TRUE(attested_cookie->starts_with("kbs-session-id="));
  EXPECT_NE(attested_cookie->substr(15, attested_cookie->find(';') - 15), id);

  // The EAR token: ES256, signer JWK in the header, AR4SI vector, annotated evidence.
  auto header = *jose::jws_peek_header(token);
  EXPECT_EQ(header["alg"], "ES256");
  auto signer = jose::key_from_jwk(header["jwk"]);
  ASSERT_TRUE(signer);
  jose::JwtValidation v{.now = clock_->now()};
  constexpr jose::JwsAlg kEs256[] = {jose::JwsAlg::kES256};
  auto claims = jose::jwt_verify(token, *signer, kEs256, v);
  ASSERT_TRUE(claims) << claims.error().to_string();
  EXPECT_EQ((*claims)["eat_profile"], "tag:github.com,2023:veraison/ear");
  const auto& cpu0 = (*claims)["submods"]["cpu0"];
  EXPECT_EQ(cpu0["ear.status"], "affirming");
  EXPECT_EQ(cpu0["ear.trustworthiness-vector"]["executables"], 3);
  EXPECT_EQ(cpu0["ear.appraisal-policy-id"], "default_cpu");
  const auto& annotated = cpu0["ear.veraison.annotated-evidence"];
  EXPECT_EQ(annotated["sample"]["svn"], "1");
  EXPECT_EQ(annotated["runtime_data_claims"]["tee-pubkey"], tee_jwk(key));
  EXPECT_EQ((*claims)["exp"].get<std::int64_t>() - (*claims)["iat"].get<std::int64_t>(), 300);

  // Resource through the session cookie: a JWE only the TEE key opens.
  auto r = call(client, "GET", "/kbs/v0/resource/default/key/1");
  ASSERT_EQ(r.status, 200) << r.body;
  auto jwe = *parse_json(r.body);
  for (const char* f : {"protected", "encrypted_key", "iv", "ciphertext", "tag"})
    EXPECT_TRUE(jwe.contains(f)) << f;
  auto plain = jose::jwe_decrypt(jwe, key);
  ASSERT_TRUE(plain) << plain.error().to_string();
  EXPECT_EQ(to_string(*plain), "the-secret");
  auto other = *crypto::Key::generate(crypto::KeyType::kEcP256);
  EXPECT_EQ(jose::jwe_decrypt(jwe, other).error().code, "decrypt_failed");

  // Resource with the token as bearer, from a client without the session.
  net::HttpClient fresh;
  auto rb = call(fresh, "GET", "/kbs/v0/resource/default/key/1", "", token);
  ASSERT_EQ(rb.status, 200) << rb.body;
  EXPECT_EQ(to_string(*jose::jwe_decrypt(*parse_json(rb.body), key)), "the-secret");

  // A forged token (signed by another key) is refused.
  auto forger = *crypto::Key::generate(crypto::KeyType::kEcP256);
  auto forged = *jose::jwt_sign(*claims, forger, jose::JwsAlg::kES256);
  net::HttpClient third;
  auto rf = call(third, "GET", "/kbs/v0/resource/default/key/1", "", forged);
  EXPECT_EQ(rf.status, 401);
  EXPECT_EQ(problem_type(rf), "TokenInvalid");

  // The token expires with its lifetime.
  clock_->advance(std::chrono::minutes(6));
  auto re = call(third, "GET", "/kbs/v0/resource/default/key/1", "", token);
  EXPECT_EQ(re.status, 401);
  EXPECT_EQ(problem_type(re), "TokenInvalid");
}

TEST_F(KbsHttp, UnsupportedVersion) {
  net::HttpClient c;
  auto r = auth(c, "sample", "0.3.0");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(problem_type(r), "ProtocolVersion");
  EXPECT_NE(detail(r).find("0.4.0"), std::string::npos);
}

TEST_F(KbsHttp, UnknownTeeAndDisabledSample) {
  net::HttpClient c;
  auto r = auth(c, "nosuchtee");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(problem_type(r), "UnsupportedTee");
  start("[http_server]\nsockets = [\"127.0.0.1:0\"]\ninsecure_http = true\n");
  net::HttpClient c2;
  auto s = auth(c2, "sample");
  EXPECT_EQ(s.status, 400);
  EXPECT_EQ(problem_type(s), "UnsupportedTee");
}

TEST_F(KbsHttp, AttestWithoutAuth) {
  net::HttpClient c;
  auto key = *crypto::Key::generate(crypto::KeyType::kEcP256);
  auto r = call(c, "POST", "/kbs/v0/attest", attest_body(key, "AAAA", Bytes(48)).dump());
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(problem_type(r), "UnAuthenticatedCookie");
}

TEST_F(KbsHttp, WrongNonce) {
  net::HttpClient c;
  ASSERT_EQ(auth(c).status, 200);
  auto key = *crypto::Key::generate(crypto::KeyType::kEcP256);
  std::string wrong = base64_encode(Bytes(32, 7));
  auto r = call(c, "POST", "/kbs/v0/attest",
                attest_body(key, wrong, report_data(tee_jwk(key), wrong)).dump());
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(problem_type(r), "InvalidNonce");
}

TEST_F(KbsHttp, ReusedNonce) {
  register_svn();
  net::HttpClient c;
  auto h = handshake(c);
  ASSERT_EQ(h.attest.status, 200) << h.attest.body;
  auto again =
      call(c, "POST", "/kbs/v0/attest",
           attest_body(h.tee_key, h.nonce, report_data(tee_jwk(h.tee_key), h.nonce)).dump());
  EXPECT_EQ(again.status, 401);
  EXPECT_EQ(problem_type(again), "NonceReused");
}

TEST_F(KbsHttp, ExpiredSession) {
  net::HttpClient c;
  auto a = auth(c);
  std::string nonce = (*parse_json(a.body))["nonce"];
  clock_->advance(std::chrono::minutes(5) + std::chrono::seconds(1));
  auto key = *crypto::Key::generate(crypto::KeyType::kEcP256);
  auto r = call(c, "POST", "/kbs/v0/attest",
                attest_body(key, nonce, report_data(tee_jwk(key), nonce)).dump());
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(problem_type(r), "ExpiredCookie");
}

TEST_F(KbsHttp, ReportDataNotBoundToTeeKey) {
  register_svn();
  net::HttpClient c;
  auto a = auth(c);
  std::string nonce = (*parse_json(a.body))["nonce"];
  auto key = *crypto::Key::generate(crypto::KeyType::kEcP256);
  auto attacker = *crypto::Key::generate(crypto::KeyType::kEcP256);
  // Evidence bound to the attacker's key, runtime data claiming another key.
  auto r = call(c, "POST", "/kbs/v0/attest",
                attest_body(key, nonce, report_data(tee_jwk(attacker), nonce)).dump());
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(problem_type(r), "AttestationFailed");
  EXPECT_NE(detail(r).find("report_data_mismatch"), std::string::npos) << detail(r);
}

TEST_F(KbsHttp, PolicyDenials) {
  ASSERT_EQ(admin("POST", "/kbs/v0/resource/default/key/1", "s").status, 200);
  // No reference value for the svn: the default attestation policy gives a warning, and the
  // default resource policy requires affirming.
  net::HttpClient c;
  auto h = handshake(c);
  ASSERT_EQ(h.attest.status, 200) << h.attest.body;
  auto r = call(c, "GET", "/kbs/v0/resource/default/key/1");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(problem_type(r), "PolicyDeny");
  EXPECT_NE(detail(r).find("data.policy.allow"), std::string::npos) << detail(r);

  // With the reference value but a deny-all policy.
  register_svn();
  std::string deny = "package policy\nimport rego.v1\ndefault allow := false\n";
  Json set = {{"policy", base64url_encode(as_bytes(deny))}};
  ASSERT_EQ(admin("POST", "/kbs/v0/resource-policy", set.dump()).status, 200);
  net::HttpClient c2;
  auto h2 = handshake(c2);
  ASSERT_EQ(h2.attest.status, 200);
  auto r2 = call(c2, "GET", "/kbs/v0/resource/default/key/1");
  EXPECT_EQ(r2.status, 403);
  EXPECT_EQ(problem_type(r2), "PolicyDeny");
}

TEST_F(KbsHttp, PathBasedResourcePolicySeesResourcePath) {
  register_svn();
  ASSERT_EQ(admin("POST", "/kbs/v0/resource/public/key/1", "open").status, 200);
  ASSERT_EQ(admin("POST", "/kbs/v0/resource/private/key/1", "closed").status, 200);
  std::string rego =
      "package policy\nimport rego.v1\ndefault allow := false\n"
      "allow if data[\"resource-path\"][0] == \"public\"\n";
  ASSERT_EQ(admin("POST", "/kbs/v0/resource-policy",
                  Json{{"policy", base64url_encode(as_bytes(rego))}}.dump())
                .status,
            200);
  net::HttpClient c;
  ASSERT_EQ(handshake(c).attest.status, 200);
  EXPECT_EQ(call(c, "GET", "/kbs/v0/resource/public/key/1").status, 200);
  EXPECT_EQ(call(c, "GET", "/kbs/v0/resource/private/key/1").status, 403);
}

TEST_F(KbsHttp, MissingResource) {
  register_svn();
  net::HttpClient c;
  ASSERT_EQ(handshake(c).attest.status, 200);
  auto r = call(c, "GET", "/kbs/v0/resource/default/key/absent");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(problem_type(r), "ResourceNotFound");
}

TEST_F(KbsHttp, BadPathSegments) {
  std::string big(200, 'a');
  for (const std::string& path :
       {std::string("/kbs/v0/resource/../key/1"), std::string("/kbs/v0/resource/%2e%2e/key/1"),
        std::string("/kbs/v0/resource/a//1"), std::string("/kbs/v0/resource/a/b/" + big),
        std::string("/kbs/v0/resource/a/b/c/d"), std::string("/kbs/v0/resource/.x/b/c")}) {
    EXPECT_EQ(raw_status("GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 400)
        << path;
  }
  net::HttpClient c;
  auto r = call(c, "GET", "/kbs/v0/resource/%2e%2e/key/1");
  EXPECT_EQ(problem_type(r), "InvalidResourcePath");
  // Admin writes are checked the same way.
  EXPECT_EQ(admin("POST", "/kbs/v0/resource/%2e%2e/key/1", "x").status, 400);
  EXPECT_EQ(raw_status("GET /kbs/v0/nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            404);
}

TEST_F(KbsHttp, BodyOverLimitAndMalformedJson) {
  net::HttpClient c;
  auto r = call(c, "POST", "/kbs/v0/auth", std::string(1536 * 1024, 'x'));
  EXPECT_EQ(r.status, 413);
  auto m = call(c, "POST", "/kbs/v0/auth", "{\"version\": ");
  EXPECT_EQ(m.status, 400);
  EXPECT_EQ(problem_type(m), "InvalidRequest");
  auto n = call(c, "POST", "/kbs/v0/auth", "[1,2]");
  EXPECT_EQ(n.status, 400);
}

TEST_F(KbsHttp, AdminAuthentication) {
  net::HttpClient c;
  auto none = call(c, "POST", "/kbs/v0/resource/a/b/c", "x");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(problem_type(none), "AdminAuth");
  // Expired token.
  auto expired = admin_token(std::chrono::minutes(10));
  clock_->advance(std::chrono::minutes(11));
  EXPECT_EQ(call(c, "POST", "/kbs/v0/resource/a/b/c", "x", expired).status, 401);
  // Token from an unknown key.
  auto stranger = *crypto::Key::generate(crypto::KeyType::kEd25519);
  auto r = call(c, "POST", "/kbs/v0/resource/a/b/c", "x",
                admin_token(std::chrono::minutes(10), &stranger));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(problem_type(r), "AdminAuth");
  // exp more than two hours ahead.
  EXPECT_EQ(
      call(c, "POST", "/kbs/v0/resource/a/b/c", "x", admin_token(std::chrono::hours(3))).status,
      401);
  // Reading policies and reference values is admin-only too.
  EXPECT_EQ(call(c, "GET", "/kbs/v0/resource-policy").status, 401);
  EXPECT_EQ(call(c, "GET", "/kbs/v0/reference-value/sample.svn").status, 401);
  // A good token works; an ES256 admin key works too.
  EXPECT_EQ(call(c, "POST", "/kbs/v0/resource/a/b/c", "x", admin_token()).status, 200);
}

TEST_F(KbsHttp, NoAdminKeysMeansAdminApiClosed) {
  start(
      "[http_server]\nsockets = [\"127.0.0.1:0\"]\ninsecure_http = true\n"
      "[attestation_service.verifier.sample]\nenabled = true\n");
  net::HttpClient c;
  auto r = call(c, "POST", "/kbs/v0/resource/a/b/c", "x", admin_token());
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(detail(r).find("no [admin] auth_public_keys"), std::string::npos);
}

TEST_F(KbsHttp, InvalidPoliciesAreRejectedAndKeepTheOldOne) {
  Json bad = {{"policy", base64url_encode(as_bytes("package policy\nallow if {"))}};
  auto r = admin("POST", "/kbs/v0/resource-policy", bad.dump());
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(problem_type(r), "PolicyInvalid");
  auto ap = admin("POST", "/kbs/v0/attestation-policy",
                  Json{{"type", "rego"},
                       {"policy_id", "default_cpu"},
                       {"policy", base64url_encode(as_bytes("nope"))}}
                      .dump());
  EXPECT_EQ(ap.status, 400);
  auto get = admin("GET", "/kbs/v0/resource-policy");
  ASSERT_EQ(get.status, 200);
  auto text = base64url_decode((*parse_json(get.body))["policy"].get<std::string>());
  EXPECT_NE(to_string(*text).find("affirming"), std::string::npos);
}

TEST_F(KbsHttp, RestartKeepsResourcesPoliciesAndReferenceValues) {
  register_svn("7");
  ASSERT_EQ(admin("POST", "/kbs/v0/resource/default/key/1", "kept").status, 200);
  std::string rego = "package policy\nimport rego.v1\ndefault allow := true\n";
  ASSERT_EQ(admin("POST", "/kbs/v0/resource-policy",
                  Json{{"policy", base64url_encode(as_bytes(rego))}}.dump())
                .status,
            200);
  start(default_config());  // a new process-equivalent on the same storage
  auto rv = admin("GET", "/kbs/v0/reference-value/sample.svn");
  ASSERT_EQ(rv.status, 200);
  EXPECT_EQ((*parse_json(rv.body))["values"], Json::array({"7"}));
  auto pol = admin("GET", "/kbs/v0/resource-policy");
  EXPECT_EQ(to_string(*base64url_decode((*parse_json(pol.body))["policy"].get<std::string>())),
            rego);
  net::HttpClient c;
  auto h = handshake(c);  // svn 1 is not registered now: warning, but the policy allows all
  ASSERT_EQ(h.attest.status, 200);
  auto r = call(c, "GET", "/kbs/v0/resource/default/key/1");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(to_string(*jose::jwe_decrypt(*parse_json(r.body), h.tee_key)), "kept");
  // Deleting works and is persistent.
  ASSERT_EQ(admin("DELETE", "/kbs/v0/resource/default/key/1").status, 200);
  EXPECT_EQ(admin("DELETE", "/kbs/v0/resource/default/key/1").status, 404);
}

// An attestation policy edited in the database behind the trustee's back: the trustee refuses to
// start rather than evaluate it.
TEST_F(KbsHttp, TamperedStoredPolicyIsRefusedAtStart) {
  trustee_.reset();
  auto db = dir_.path() / "trustee.db";
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(raw,
                         "UPDATE policies SET ciphertext=zeroblob(length(ciphertext)) "
                         "WHERE kind='attestation' AND id='default_cpu'",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  EXPECT_EQ(sqlite3_changes(raw), 1);
  sqlite3_close(raw);
  auto config = parse_config(default_config(), dir_.path());
  ASSERT_TRUE(config);
  auto t = Trustee::create(*config, clock_);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, "storage_corrupt");
  EXPECT_EQ(t.error().message,
            "attestation policy 'default_cpu' does not decrypt: wrong key-encryption key or "
            "tampered database");
}

// /auth stores nothing: a flood of handshakes that never attest cannot lock real attesters out,
// even with the attested-session cap at 2 (it bounds only successful attestations).
TEST_F(KbsHttp, AuthFloodDoesNotLockOutAttesters) {
  start(default_config("[attestation_service]\nmax_sessions = 2\n"));
  register_svn();
  ASSERT_EQ(admin("POST", "/kbs/v0/resource/default/key/1", "s").status, 200);
  net::HttpClient flood;
  for (int i = 0; i < 500; ++i) ASSERT_EQ(auth(flood).status, 200);
  for (int i = 0; i < 3; ++i) {
    net::HttpClient c;
    auto h = handshake(c);
    ASSERT_EQ(h.attest.status, 200) << h.attest.body;
    EXPECT_EQ(call(c, "GET", "/kbs/v0/resource/default/key/1").status, 200);
  }
}

// The challenge cookie is a bearer of nothing once redeemed: replaying the same challenge (from
// any client) fails, and a client that attested cannot attest again on the same session.
TEST_F(KbsHttp, ReplayedChallengeCookieIsRefused) {
  register_svn();
  net::HttpClient c;
  auto a = auth(c);
  std::string nonce = (*parse_json(a.body))["nonce"];
  auto set = *a.headers.get("Set-Cookie");
  std::string challenge = set.substr(15, set.find(';') - 15);
  auto key = *crypto::Key::generate(crypto::KeyType::kEcP256);
  std::string body = attest_body(key, nonce, report_data(tee_jwk(key), nonce)).dump();
  ASSERT_EQ(call(c, "POST", "/kbs/v0/attest", body).status, 200);
  for (int i = 0; i < 2; ++i) {
    net::HttpClient replayer;
    net::ClientRequest req{.method = "POST", .url = url_ + "/kbs/v0/attest"};
    req.body = body;
    req.headers.set("Cookie", "kbs-session-id=" + challenge);
    auto r = replayer.request(req);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401);
    EXPECT_EQ(problem_type(*r), "NonceReused");
  }
}

TEST_F(KbsHttp, ForgedOrTamperedCookieIsRefused) {
  register_svn();
  ASSERT_EQ(admin("POST", "/kbs/v0/resource/default/key/1", "s").status, 200);
  net::HttpClient c;
  auto a = auth(c);
  auto set = *a.headers.get("Set-Cookie");
  std::string challenge = set.substr(15, set.find(';') - 15);
  Bytes raw = *base64url_decode(challenge);
  raw[1] ^= 0x7f;  // push the expiry far out
  std::string nonce = (*parse_json(a.body))["nonce"];
  auto key = *crypto::Key::generate(crypto::KeyType::kEcP256);
  std::string body = attest_body(key, nonce, report_data(tee_jwk(key), nonce)).dump();
  for (const std::string& cookie :
       {base64url_encode(raw), std::string("0123456789abcdef"), std::string(300, 'A')}) {
    net::HttpClient forger;
    net::ClientRequest req{.method = "POST", .url = url_ + "/kbs/v0/attest"};
    req.body = body;
    req.headers.set("Cookie", "kbs-session-id=" + cookie);
    auto r = forger.request(req);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401);
    EXPECT_EQ(problem_type(*r), "UnAuthenticatedCookie");
    net::ClientRequest get{.method = "GET", .url = url_ + "/kbs/v0/resource/default/key/1"};
    get.headers.set("Cookie", "kbs-session-id=" + cookie);
    auto g = forger.request(get);
    ASSERT_TRUE(g);
    EXPECT_EQ(g->status, 401);
    EXPECT_EQ(problem_type(*g), "UnAuthenticatedCookie");
  }
  // A challenge cookie is no attested session.
  auto r = call(c, "GET", "/kbs/v0/resource/default/key/1");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(problem_type(r), "UnAuthenticatedCookie");
}

// Replicas sharing [kbs] session_key_file accept each other's challenges, with no shared store.
TEST_F(KbsHttp, ReplicasSharingTheSessionKeyServeOneClient) {
  ASSERT_TRUE(write_file_atomic(dir_.path() / "session.key", crypto::random_bytes(32), 0600));
  std::string extra = "[kbs]\nsession_key_file = \"session.key\"\n";
  start(default_config(extra));
  testing::TempDir other_dir;
  for (const char* f : {"session.key", "admin.pub"})
    ASSERT_TRUE(std::filesystem::copy_file(dir_.path() / f, other_dir.path() / f));
  auto other_config = parse_config(default_config(extra), other_dir.path());
  ASSERT_TRUE(other_config) << other_config.error().to_string();
  auto other = Trustee::create(*other_config, clock_);
  ASSERT_TRUE(other) << other.error().to_string();
  ASSERT_TRUE((*other)->start());
  std::string other_url = (*other)->urls().at(0);

  net::HttpClient c;
  auto a = auth(c);  // replica 1
  ASSERT_EQ(a.status, 200);
  std::string nonce = (*parse_json(a.body))["nonce"];
  auto set = *a.headers.get("Set-Cookie");
  auto key = *crypto::Key::generate(crypto::KeyType::kEcP256);
  net::ClientRequest req{.method = "POST", .url = other_url + "/kbs/v0/attest"};
  req.body = attest_body(key, nonce, report_data(tee_jwk(key), nonce)).dump();
  req.headers.set("Cookie", set.substr(0, set.find(';')));
  auto r = c.request(req);  // replica 2
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  // Without the shared key, the other replica does not know the cookie.
  start(default_config());
  net::HttpClient d;
  auto a2 = auth(d);
  auto set2 = *a2.headers.get("Set-Cookie");
  req.headers.set("Cookie", set2.substr(0, set2.find(';')));
  auto r2 = d.request(req);
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status, 401);
  EXPECT_EQ(problem_type(*r2), "UnAuthenticatedCookie");
}

TEST_F(KbsHttp, HealthAndMetrics) {
  register_svn();
  net::HttpClient c;
  EXPECT_EQ(call(c, "GET", "/healthz").status, 200);
  ASSERT_EQ(handshake(c).attest.status, 200);
  call(c, "GET", "/kbs/v0/resource/default/key/none");
  auto m = call(c, "GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("kbs_attestations_total{tee=\"sample\",outcome=\"affirming\"} 1"),
            std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("kbs_resource_denials_total{reason=\"not_found\"} 1"), std::string::npos);
  EXPECT_NE(m.body.find("kbs_request_duration_seconds_bucket{endpoint=\"attest\""),
            std::string::npos);
  // Nothing secret in metrics: no nonces, no tokens.
  EXPECT_EQ(m.body.find("eyJ"), std::string::npos);
}

// A policy over its time or builtin-cost budget is a clear error, not a hang nor a denial.
TEST_F(KbsHttp, PolicyDeadlineAndCostAreHttpErrors) {
  std::string xs = "xs := [";
  for (int i = 0; i < 100; ++i) xs += (i ? "," : "") + std::to_string(i);
  xs += "]\n";
  std::string slow = "package policy\nimport rego.v1\ndefault allow := false\n" + xs +
                     "allow if {\n some i in xs\n some j in xs\n some k in xs\n i + j + k < 0\n}\n";
  std::string costly =
      "package policy\nimport rego.v1\ndefault allow := false\n"
      "allow if crypto.sha256(json.marshal(input)) != \"\"\n";
  for (const auto& [rego, limit, status, type] :
       {std::tuple{slow, "evaluation_deadline_ms = 1", 503, "PolicyDeadlineExceeded"},
        {costly, "max_builtin_bytes = 1000", 500, "PolicyCostExceeded"}}) {
    start(default_config(std::string("[policy]\n") + limit + "\n"));
    register_svn();
    ASSERT_EQ(admin("POST", "/kbs/v0/resource/default/key/1", "s").status, 200);
    net::HttpClient c;
    ASSERT_EQ(handshake(c).attest.status, 200);
    ASSERT_EQ(admin("POST", "/kbs/v0/resource-policy",
                    Json{{"policy", base64url_encode(as_bytes(rego))}}.dump())
                  .status,
              200);
    auto r = call(c, "GET", "/kbs/v0/resource/default/key/1");
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(problem_type(r), type);
  }
  // The attestation policy is bounded the same way.
  start(default_config("[policy]\nevaluation_deadline_ms = 1\n"));
  std::string slow_attestation = "package policy\nimport rego.v1\n" + xs +
                                 "executables := 3 if {\n some i in xs\n some j in xs\n"
                                 " some k in xs\n i + j + k < 0\n}\n";
  ASSERT_EQ(admin("POST", "/kbs/v0/attestation-policy",
                  Json{{"type", "rego"},
                       {"policy_id", "default_cpu"},
                       {"policy", base64url_encode(as_bytes(slow_attestation))}}
                      .dump())
                .status,
            200);
  net::HttpClient d;
  auto h = handshake(d);
  EXPECT_EQ(h.attest.status, 503) << h.attest.body;
  EXPECT_EQ(problem_type(h.attest), "PolicyDeadlineExceeded");
}

// Metric labels come from a fixed set: made-up paths all count as "other", so a flood of unique
// unknown endpoints cannot grow /metrics.
TEST_F(KbsHttp, UnknownEndpointsShareOneMetricLabel) {
  net::HttpClient c;
  call(c, "GET", "/metrics");  // so that /metrics's own series exist before the comparison below
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(call(c, "GET", "/kbs/v0/made-up-" + std::to_string(i) + "/x").status, 404);
    EXPECT_EQ(call(c, "GET", "/made-up-" + std::to_string(i)).status, 404);
  }
  auto m = call(c, "GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.body.find("made-up"), std::string::npos);
  EXPECT_NE(m.body.find("kbs_http_requests_total{endpoint=\"other\",status=\"404\"} 400"),
            std::string::npos)
      << m.body;
  for (int i = 200; i < 400; ++i) call(c, "GET", "/kbs/v0/made-up-" + std::to_string(i));
  auto m2 = call(c, "GET", "/metrics");
  // Only values change, not the number of series.
  EXPECT_EQ(std::ranges::count(m2.body, '\n'), std::ranges::count(m.body, '\n')) << m2.body;
}

}  // namespace
}  // namespace coffer::trustee::testing

namespace coffer::trustee::testing {
namespace {

class KbsHttpLongSession : public KbsFixture {};

TEST_F(KbsHttpLongSession, SessionTokenExpiresBeforeSession) {
  start(default_config(
      "[attestation_service]\ntimeout = 30\n[attestation_token]\nduration_min = 5\n"));
  register_svn();
  ASSERT_EQ(admin("POST", "/kbs/v0/resource/default/key/1", "s").status, 200);
  net::HttpClient c;
  ASSERT_EQ(handshake(c).attest.status, 200);
  EXPECT_EQ(call(c, "GET", "/kbs/v0/resource/default/key/1").status, 200);
  clock_->advance(std::chrono::minutes(6));
  auto r = call(c, "GET", "/kbs/v0/resource/default/key/1");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(problem_type(r), "TokenInvalid");
}

}  // namespace
}  // namespace coffer::trustee::testing

namespace coffer::trustee::testing {
namespace {

class KbsHttpHardware : public KbsFixture {};

// tdx, sgx and snp verifiers are registered by default; without a collateral source, TDX
// evidence is refused naming the missing settings; with chain-only verification allowed, a
// genuine Intel quote whose REPORTDATA is not this session's binding is refused.
TEST_F(KbsHttpHardware, RealTdxQuoteNotBoundToSessionIsRefused) {
  auto quote =
      read_file(std::string(COFFER_SOURCE_DIR) + "/testdata/evidence/tdx/dcap-qvl/tdx_quote");
  ASSERT_TRUE(quote);
  auto attest_quote = [&]() {
    net::HttpClient c;
    auto a = auth(c, "tdx");
    EXPECT_EQ(a.status, 200) << a.body;
    std::string nonce = (*parse_json(a.body))["nonce"];
    auto key = *crypto::Key::generate(crypto::KeyType::kEcP256);
    Json body = {
        {"runtime-data", {{"nonce", nonce}, {"tee-pubkey", tee_jwk(key)}}},
        {"tee-evidence",
         {{"primary_evidence", {{"quote", base64_encode(*quote)}}}, {"additional_evidence", ""}}}};
    return call(c, "POST", "/kbs/v0/attest", body.dump());
  };
  auto refused = attest_quote();
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(problem_type(refused), "AttestationFailed");
  EXPECT_NE(detail(refused).find("collateral_source_missing"), std::string::npos)
      << detail(refused);
  EXPECT_NE(detail(refused).find("[attestation_service.verifier.tdx] sets neither collateral_dir "
                                 "nor pccs_url"),
            std::string::npos)
      << detail(refused);

  start(default_config("[attestation_service.verifier.tdx]\nallow_chain_only = true\n"));
  auto r = attest_quote();
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(problem_type(r), "AttestationFailed");
  EXPECT_NE(detail(r).find("report_data_mismatch"), std::string::npos) << detail(r);
  net::HttpClient c;
  EXPECT_EQ(auth(c, "snp").status, 200);
  EXPECT_EQ(auth(c, "sgx").status, 200);
}

TEST_F(KbsHttpHardware, HardwareVerifiersCanBeDisabled) {
  start(default_config("[attestation_service.verifier.tdx]\nenabled = false\n"));
  net::HttpClient c;
  EXPECT_EQ(auth(c, "tdx").status, 400);
  EXPECT_EQ(auth(c, "snp").status, 200);
}

}  // namespace
}  // namespace coffer::trustee::testing

namespace coffer::trustee::testing {
namespace {

// The shipped default policy, as a trustee without any stored policy uses it.
class KbsHttpDefaultPolicy : public KbsFixture {
 protected:
  void SetUp() override {
    development_policy_ = false;
    KbsFixture::SetUp();
  }
};

// Sample evidence is unsigned: with the sample TEE enabled and the default policy, a registered
// svn still gets no affirming token, so the default resource policy releases nothing.
TEST_F(KbsHttpDefaultPolicy, SampleEnabledReleasesNothing) {
  register_svn("1");
  ASSERT_EQ(admin("POST", "/kbs/v0/resource/default/key/1", "the-secret").status, 200);
  net::HttpClient c;
  auto h = handshake(c);
  ASSERT_EQ(h.attest.status, 200) << h.attest.body;
  auto r = call(c, "GET", "/kbs/v0/resource/default/key/1");
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(problem_type(r), "PolicyDeny");
  auto claims = trustee_->attestation_service().verify_token(
      (*parse_json(h.attest.body))["token"].get<std::string>());
  ASSERT_TRUE(claims) << claims.error().to_string();
  const auto& cpu0 = (*claims)["submods"]["cpu0"];
  EXPECT_EQ(cpu0["ear.status"], "contraindicated");
  EXPECT_EQ(cpu0["ear.trustworthiness-vector"]["hardware"], 97);
  EXPECT_EQ(cpu0["ear.appraisal-policy-id"], "default_cpu");
}

// The development policy (installed explicitly) affirms sample evidence with a registered svn.
TEST_F(KbsHttpDefaultPolicy, DevelopmentPolicyAffirmsSample) {
  register_svn("1");
  ASSERT_EQ(admin("POST", "/kbs/v0/resource/default/key/1", "the-secret").status, 200);
  Json set = {{"type", "rego"},
              {"policy_id", "default_cpu"},
              {"policy", base64url_encode(as_bytes(as::development_attestation_policy()))}};
  ASSERT_EQ(admin("POST", "/kbs/v0/attestation-policy", set.dump()).status, 200);
  net::HttpClient c;
  auto h = handshake(c);
  ASSERT_EQ(h.attest.status, 200) << h.attest.body;
  auto claims = trustee_->attestation_service().verify_token(
      (*parse_json(h.attest.body))["token"].get<std::string>());
  ASSERT_TRUE(claims) << claims.error().to_string();
  EXPECT_EQ((*claims)["submods"]["cpu0"]["ear.status"], "affirming");
  auto r = call(c, "GET", "/kbs/v0/resource/default/key/1");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(to_string(*jose::jwe_decrypt(*parse_json(r.body), h.tee_key)), "the-secret");
}

}  // namespace
}  // namespace coffer::trustee::testing
