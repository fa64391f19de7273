// Hostile client input over real loopback HTTP: every malformed request gets a 4xx with its RFC
// 7807 problem type, never a 500 or a crash, and the server keeps answering afterwards.
#include "trustee/test/kbs_fixture.h"

namespace coffer::trustee::testing {
namespace {

class KbsInput : public KbsFixture {
 protected:
  struct Reply {
    int status = -1;
    std::string content_type;
    std::string body;
  };

  // One request of raw bytes (a target no HTTP client library would send), read to the end.
  Reply raw(const std::string& request_line, const std::string& headers = "") const {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port_);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    Reply out;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      return out;
    }
    std::string text = request_line + "\r\nHost: x\r\n" + headers + "Connection: close\r\n\r\n";
    ::send(fd, text.data(), text.size(), 0);
    std::string reply;
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) reply.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    if (reply.size() < 12) return out;
    out.status = std::stoi(reply.substr(9, 3));
    auto head_end = reply.find("\r\n\r\n");
    std::string head = reply.substr(0, head_end);
    if (auto ct = head.find("Content-Type: "); ct != std::string::npos) {
      out.content_type = head.substr(ct + 14, head.find("\r\n", ct) - ct - 14);
    }
    if (head_end != std::string::npos) out.body = reply.substr(head_end + 4);
    return out;
  }

  static std::string problem_of(const Reply& r) {
    net::Response resp;
    resp.body = r.body;
    return problem_type(resp);
  }

  // /auth then /attest with this tee-pubkey (and optional init-data) for the sample TEE.
  net::Response attest_with(net::HttpClient& client, const Json& jwk,
                            const std::optional<std::string>& init_data = std::nullopt) {
    auto a = auth(client);
    EXPECT_EQ(a.status, 200) << a.body;
    std::string nonce = (*parse_json(a.body))["nonce"];
    Json body = {{"runtime-data", {{"nonce", nonce}, {"tee-pubkey", jwk}}},
                 {"tee-evidence",
                  {{"primary_evidence",
                    {{"svn", "1"}, {"report_data", base64_encode(report_data(jwk, nonce))}}},
                   {"additional_evidence", ""}}}};
    if (init_data) body["init-data"] = {{"format", "toml"}, {"body", *init_data}};
    return call(client, "POST", "/kbs/v0/attest", body.dump());
  }

  void expect_still_serving() {
    net::HttpClient c;
    EXPECT_EQ(call(c, "GET", "/healthz").status, 200);
    auto key = *crypto::Key::generate(crypto::KeyType::kEcP256);
    auto r = attest_with(c, tee_jwk(key));
    EXPECT_EQ(r.status, 200) << r.body;
  }
};

std::string dotted(int parts) {
  std::string key = "a";
  for (int i = 1; i < parts; ++i) key += ".a";
  return key;
}

// An unauthenticated crash: init-data whose [data] holds a dotted key 20,000 levels deep overflowed
// the stack converting TOML to JSON before any evidence was looked at.
TEST_F(KbsInput, DeepInitDataIsRefusedAndTheServerStaysUp) {
  register_svn();
  net::HttpClient c;
  auto key = *crypto::Key::generate(crypto::KeyType::kEcP256);
  auto r = attest_with(c, tee_jwk(key), "[data]\n" + dotted(20'000) + " = 1\n");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(problem_type(r), "InvalidRequest");
  EXPECT_NE(detail(r).find("nesting deeper than 64 levels"), std::string::npos) << detail(r);
  // deep inline tables and arrays too
  std::string inline_tables = "[data]\nx = ";
  for (int i = 0; i < 200; ++i) inline_tables += "{a = ";
  inline_tables += "1" + std::string(200, '}') + "\n";
  auto t = attest_with(c, tee_jwk(key), inline_tables);
  EXPECT_EQ(t.status, 400) << t.body;
  EXPECT_EQ(problem_type(t), "InvalidRequest");
  // a reasonable init-data still attests
  auto ok = attest_with(c, tee_jwk(key), "algorithm = \"sha384\"\n[data]\n\"a.toml\" = 'x'\n");
  EXPECT_EQ(ok.status, 200) << ok.body;
  expect_still_serving();
}

// A multibyte character cut at the byte limit of a quoted field once made serialising the problem
// throw (a text/plain 500).
TEST_F(KbsInput, QuotedFieldsCutInsideACharacterStayProblems) {
  std::string accented = "a";
  for (int i = 0; i < 40; ++i) accented += "\xC3\xA9";  // U+00E9, two bytes each
  net::HttpClient c;
  auto v = auth(c, "sample", accented);
  EXPECT_EQ(v.status, 400) << v.body;
  EXPECT_EQ(problem_type(v), "ProtocolVersion");
  EXPECT_EQ(v.headers.get("Content-Type").value_or(""), "application/problem+json");
  auto t = auth(c, accented);
  EXPECT_EQ(t.status, 400) << t.body;
  EXPECT_EQ(problem_type(t), "UnsupportedTee");
  // a resource path segment over the limit, cut when quoted
  auto p = call(c, "GET", "/kbs/v0/resource/default/key/" + accented + accented);
  EXPECT_EQ(p.status, 400) << p.body;
  EXPECT_EQ(problem_type(p), "InvalidResourcePath");
  // a reference value name cut when quoted
  auto n = admin("GET", "/kbs/v0/reference-value/" + accented);
  EXPECT_EQ(n.status, 404) << n.body;
  EXPECT_EQ(problem_type(n), "ReferenceValueNotFound");
  expect_still_serving();
}

// Raw bytes that are not UTF-8 in the request target.
TEST_F(KbsInput, InvalidUtf8InTheTargetIsA400) {
  const std::string bearer = "Authorization: Bearer " + admin_token() + "\r\n";
  struct Case {
    std::string target;
    std::string headers;
    std::string type;
  };
  for (const Case& k : {
           Case{"/kbs/v0/resource/default/key/\xff\xfe", "", "InvalidResourcePath"},
           Case{"/kbs/v0/resource/def\xc3/key/1", "", "InvalidResourcePath"},
           Case{"/kbs/v0/resource/default/key/\xff", bearer, "InvalidResourcePath"},
           Case{"/kbs/v0/reference-value/\xff\xfe", bearer, "InvalidRequest"},
           Case{"/kbs/v0/attestation-policy?policy_id=\xff", bearer, "InvalidRequest"},
           Case{"/kbs/v0/attestation-policy?policy_id=\xc3\xa9", bearer, "InvalidRequest"},
       }) {
    std::string method = k.type == "InvalidResourcePath" && !k.headers.empty() ? "POST" : "GET";
    auto r = raw(method + " " + k.target + " HTTP/1.1",
                 k.headers + (method == "POST" ? "Content-Length: 0\r\n" : ""));
    EXPECT_EQ(r.status, 400) << printable_excerpt(k.target) << " " << r.body;
    EXPECT_EQ(r.content_type, "application/problem+json") << printable_excerpt(k.target);
    EXPECT_EQ(problem_of(r), k.type) << printable_excerpt(k.target);
  }
  expect_still_serving();
}

// JSON bodies that are not UTF-8, or that repeat a member: the parser's message quotes the input
// only escaped.
TEST_F(KbsInput, InvalidJsonBodiesAreProblems) {
  net::HttpClient c;
  for (const std::string& body :
       {std::string("{\"version\": \"\xff\xfe\", \"tee\": \"sample\"}"),
        std::string("{\"version\": \"0.4.0\", \"tee\": \"sample\", \"tee\": \"tdx\"}"),
        std::string("{\"version\": \"0.4.0\", \"t\\u0065e\": \"tdx\", \"tee\": \"sample\"}"),
        std::string("{\"version\xc3"), std::string("{\"\xff\": 1}")}) {
    auto r = call(c, "POST", "/kbs/v0/auth", body);
    EXPECT_EQ(r.status, 400) << printable_excerpt(body) << " " << r.body;
    EXPECT_EQ(problem_type(r), "InvalidRequest") << printable_excerpt(body);
  }
}

// A tee-pubkey the KBS cannot seal to is refused when the TEE attests (400), not with a 500 when
// it asks for a resource.
TEST_F(KbsInput, UnsealableTeePubkeyIsRefusedAtAttest) {
  register_svn();
  ASSERT_EQ(admin("POST", "/kbs/v0/resource/default/key/1", "s").status, 200);
  auto small = *crypto::Key::generate(crypto::KeyType::kRsa, 1024);
  auto ed = *crypto::Key::generate(crypto::KeyType::kEd25519);
  auto rsa = *crypto::Key::generate(crypto::KeyType::kRsa, 2048);
  Json e1 = tee_jwk(rsa);
  e1["e"] = "AQ";  // e = 1: RSA-OAEP would send the content key in the clear
  Json e3 = tee_jwk(rsa);
  e3["e"] = "Aw";
  for (const Json& jwk : {tee_jwk(small), tee_jwk(ed), e1, e3}) {
    net::HttpClient c;
    auto r = attest_with(c, jwk);
    EXPECT_EQ(r.status, 400) << jwk.dump() << " " << r.body;
    EXPECT_EQ(problem_type(r), "InvalidRequest") << jwk.dump();
    EXPECT_EQ(call(c, "GET", "/kbs/v0/resource/default/key/1").status, 401) << jwk.dump();
  }
  net::HttpClient c;
  ASSERT_EQ(attest_with(c, tee_jwk(rsa)).status, 200);
  auto r = call(c, "GET", "/kbs/v0/resource/default/key/1");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(to_string(*jose::jwe_decrypt(*parse_json(r.body), rsa)), "s");
}

// Signed JSON with a repeated member is refused wherever the KBS reads it: an admin token and an
// attestation token (re-signed here with the trustee's own key, as only a forger with that key
// could, to show the refusal does not hinge on the signature).
TEST_F(KbsInput, SignedTokensWithRepeatedClaimsAreRefused) {
  auto now = unix_seconds(clock_->now());
  auto admin_with = [&](const std::string& payload) {
    auto token = jose::jws_sign(as_bytes(payload), admin_key_, jose::JwsAlg::kEdDSA);
    EXPECT_TRUE(token);
    net::HttpClient c;
    return call(c, "GET", "/kbs/v0/resource-policy", "", *token);
  };
  std::string iat = "\"iat\":" + std::to_string(now);
  std::string exp = "\"exp\":" + std::to_string(now + 600);
  EXPECT_EQ(admin_with("{" + iat + "," + exp + "}").status, 200);
  for (const std::string& payload :
       {"{" + iat + "," + exp + "," + exp + "}", "{" + iat + "," + exp + ",\"\\u0065xp\":1}"}) {
    auto r = admin_with(payload);
    EXPECT_EQ(r.status, 401) << payload;
    EXPECT_EQ(problem_type(r), "AdminAuth") << payload;
  }

  register_svn();
  ASSERT_EQ(admin("POST", "/kbs/v0/resource/default/key/1", "s").status, 200);
  net::HttpClient c;
  auto h = handshake(c);
  ASSERT_EQ(h.attest.status, 200) << h.attest.body;
  std::string token = (*parse_json(h.attest.body))["token"];
  std::string payload = to_string(
      *base64url_decode(token.substr(token.find('.') + 1, token.rfind('.') - token.find('.') - 1)));
  auto signer = crypto::Key::from_pem(*read_text_file(dir_.path() / "token-signer.pem"));
  ASSERT_TRUE(signer) << signer.error().to_string();
  auto bearer = [&](const std::string& claims) {
    auto t = jose::jws_sign(as_bytes(claims), *signer, jose::JwsAlg::kES256);
    EXPECT_TRUE(t);
    net::HttpClient fresh;
    return call(fresh, "GET", "/kbs/v0/resource/default/key/1", "", *t);
  };
  EXPECT_EQ(bearer(payload).status, 200);
  auto repeated = bearer("{\"submods\":{}," + payload.substr(1));
  EXPECT_EQ(repeated.status, 401) << repeated.body;
  EXPECT_EQ(problem_type(repeated), "TokenInvalid");
}

}  // namespace
}  // namespace coffer::trustee::testing
