// The registry client against docker-registry 2.8 (anonymous and basic auth), skopeo, and an
// in-process fake registry for the bearer flow, retries, redirects and hostile answers.
#include "oci/registry.h"

#include <atomic>

#include <gtest/gtest.h>

#include "core/file.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "oci/copy.h"
#include "oci/crypt/ocicrypt.h"
#include "oci/layout.h"
#include "oci/test/test_util.h"
#include "oci/transport.h"

namespace coffer::oci {
namespace {

using testing::copy_by_name;
using testing::insecure_options;
using testing::Registry;
using testing::sample_layer;
using testing::TempDir;

TEST(RegistryInterop, PushPullMountAndChunkedWithDockerRegistry) {
  Registry reg;
  ASSERT_TRUE(reg.ok());
  TempDir tmp;
  auto digest = testing::write_image(tmp.path() / "src", "v1",
                                     {sample_layer('a', 3 << 20), sample_layer('b', 1000)});
  auto o = insecure_options(reg.host());
  auto pushed = copy_by_name("oci:" + (tmp.path() / "src").string() + ":v1",
                             "docker://" + reg.host() + "/test/app:v1", o);
  ASSERT_TRUE(pushed) << pushed.error().to_string();
  EXPECT_EQ(pushed->manifest_digest, digest);

  // skopeo sees the same image.
  auto inspect = testing::run({testing::require_program("skopeo"), "inspect", "--raw",
                               "--tls-verify=false", "docker://" + reg.host() + "/test/app:v1"});
  ASSERT_EQ(inspect.exit_code, 0) << inspect.output;
  EXPECT_EQ(sha256_digest(as_bytes(inspect.output)), digest);

  // Chunked upload into another repository.
  auto chunked = o;
  chunked.chunk_size = 1 << 20;
  auto c2 = copy_by_name("oci:" + (tmp.path() / "src").string() + ":v1",
                         "docker://" + reg.host() + "/test/chunked:v1", chunked);
  ASSERT_TRUE(c2) << c2.error().to_string();

  // Registry to registry in another repository: blobs are mounted, not copied.
  std::vector<std::string> actions;
  CopyOptions co;
  co.progress = [&](const LayerProgress& p) {
    if (p.done) actions.push_back(p.action);
  };
  auto m = copy_by_name("docker://" + reg.host() + "/test/app:v1",
                        "docker://" + reg.host() + "/other/app:v2", o, co);
  ASSERT_TRUE(m) << m.error().to_string();
  EXPECT_EQ(std::count(actions.begin(), actions.end(), "mount"), 3);

  // Pull back into a layout: identical manifest.
  auto pulled = copy_by_name("docker://" + reg.host() + "/test/chunked:v1",
                             "oci:" + (tmp.path() / "dst").string() + ":x", o);
  ASSERT_TRUE(pulled) << pulled.error().to_string();
  EXPECT_EQ(pulled->manifest_digest, digest);

  auto missing = copy_by_name("docker://" + reg.host() + "/test/app:nope",
                              "oci:" + (tmp.path() / "dst").string() + ":y", o);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, "manifest_unknown");
}

TEST(RegistryInterop, PullsWhatSkopeoPushed) {
  Registry reg;
  ASSERT_TRUE(reg.ok());
  TempDir tmp;
  auto digest = testing::write_image(tmp.path() / "src", "v1", {sample_layer('z', 5000)});
  auto r = testing::run({testing::require_program("skopeo"), "copy", "--dest-tls-verify=false",
                         "oci:" + (tmp.path() / "src").string() + ":v1",
                         "docker://" + reg.host() + "/sk/app:v1"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto pulled =
      copy_by_name("docker://" + reg.host() + "/sk/app:v1",
                   "oci:" + (tmp.path() / "dst").string() + ":v1", insecure_options(reg.host()));
  ASSERT_TRUE(pulled) << pulled.error().to_string();
  auto layout = OciLayout::open(tmp.path() / "dst").value();
  EXPECT_EQ(layout.resolve("v1")->digest, pulled->manifest_digest);
}

TEST(RegistryInterop, BasicAuthWithAuthJson) {
  Registry reg(/*basic_auth=*/true);
  ASSERT_TRUE(reg.ok());
  TempDir tmp;
  testing::write_image(tmp.path() / "src", "v1", {sample_layer('q', 100)});
  auto o = insecure_options(reg.host());
  auto denied = copy_by_name("oci:" + (tmp.path() / "src").string() + ":v1",
                             "docker://" + reg.host() + "/auth/app:v1", o);
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().code, "unauthorized");

  Json auth{{"auths", {{reg.host(), {{"auth", base64_encode(as_bytes("user:s3cret"))}}}}}};
  ASSERT_TRUE(write_file_atomic(tmp.path() / "auth.json", as_bytes(auth.dump())));
  o.auth_file = tmp.path() / "auth.json";
  auto pushed = copy_by_name("oci:" + (tmp.path() / "src").string() + ":v1",
                             "docker://" + reg.host() + "/auth/app:v1", o);
  ASSERT_TRUE(pushed) << pushed.error().to_string();

  Json wrong{{"auths", {{reg.host(), {{"auth", base64_encode(as_bytes("user:nope"))}}}}}};
  ASSERT_TRUE(write_file_atomic(tmp.path() / "auth.json", as_bytes(wrong.dump())));
  auto bad = copy_by_name("docker://" + reg.host() + "/auth/app:v1",
                          "oci:" + (tmp.path() / "dst").string(), o);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, "unauthorized");
}

// A fake registry: bearer tokens from /token, one 503 before each manifest, blobs behind a
// redirect, and switches for hostile answers.
struct FakeRegistry {
  std::string manifest;
  std::string manifest_digest;
  std::string config =
      R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";
  std::atomic<int> token_requests{0};
  std::atomic<int> failures_left{1};
  std::atomic<bool> tamper_manifest{false};
  std::atomic<bool> huge_manifest{false};
  std::atomic<bool> tamper_blob{false};
  std::string scope_seen;
  std::uint16_t port = 0;
  std::unique_ptr<net::HttpServer> server;

  std::string scheme = "http";

  explicit FakeRegistry(std::optional<net::TlsServerConfig> tls = std::nullopt) {
    if (tls) scheme = "https";
    Manifest m;
    m.media_type = media_type::kOciManifest;
    m.config = Descriptor{.media_type = std::string(media_type::kOciConfig),
                          .digest = sha256_digest(as_bytes(config)),
                          .size = static_cast<std::int64_t>(config.size())};
    manifest = to_string(m.serialize());
    manifest_digest = sha256_digest(as_bytes(manifest));
    server = std::make_unique<net::HttpServer>(
        net::HttpServerConfig{.sockets = {"127.0.0.1:0"}, .tls = tls},
        [this](const net::Request& r) { return handle(r); });
    if (server->start()) port = server->bound_ports()[0];
  }

  std::string host() const { return "127.0.0.1:" + std::to_string(port); }

  net::Response handle(const net::Request& r) {
    auto path = r.path();
    if (path == "/token") {
      ++token_requests;
      scope_seen = r.query();
      return net::Response::json(200, Json{{"token", "tok123"}});
    }
    if (path.starts_with("/blobdata/")) {
      std::string body = config;
      if (tamper_blob) body[0] = '[';
      return net::Response::bytes(200, body);
    }
    if (r.headers.get("Authorization") != "Bearer tok123") {
      net::Response resp = net::Response::json(401, Json{{"errors", Json::array()}});
      resp.headers.set("WWW-Authenticate", "Bearer realm=\"" + scheme + "://" + host() +
                                               "/token\",service=\"fake\",scope=\"repository:"
                                               "x/y:pull\"");
      return resp;
    }
    if (path.starts_with("/v2/x/y/manifests/")) {
      if (failures_left.fetch_sub(1) > 0) return net::Response::text(503, "busy");
      std::string body = manifest;
      if (tamper_manifest) body.insert(body.size() - 1, " ");
      if (huge_manifest) body = std::string(kMaxManifestBytes + 10, ' ');
      net::Response resp = net::Response::bytes(200, body, std::string(media_type::kOciManifest));
      resp.headers.set("Docker-Content-Digest", manifest_digest);
      return resp;
    }
    if (path.starts_with("/v2/x/y/blobs/")) {
      net::Response resp;
      resp.status = 307;
      resp.headers.set("Location", scheme + "://" + host() + "/blobdata/" + path.substr(14));
      return resp;
    }
    return net::Response::text(404, "not found");
  }
};

TEST(RegistryClientFake, BearerFlowRetriesRedirectsAndVerification) {
  FakeRegistry fake;
  ASSERT_NE(fake.port, 0);
  auto ref = parse_reference(fake.host() + "/x/y:v1").value();
  RegistryClient client(ref, insecure_options(fake.host()));
  auto m = client.get_manifest("v1");
  ASSERT_TRUE(m) << m.error().to_string();
  EXPECT_EQ(m->digest, fake.manifest_digest);
  EXPECT_EQ(fake.token_requests.load(), 1);
  EXPECT_NE(fake.scope_seen.find("scope=repository%3Ax%2Fy%3Apull"), std::string::npos);
  EXPECT_NE(fake.scope_seen.find("service=fake"), std::string::npos);

  auto manifest = parse_manifest(m->data).value();
  auto blob = client.get_blob(manifest.config);
  ASSERT_TRUE(blob) << blob.error().to_string();
  EXPECT_EQ(to_string(read_all(**blob, 1 << 20).value()), fake.config);

  fake.tamper_blob = true;
  auto tampered = client.get_blob(manifest.config);
  ASSERT_FALSE(tampered);
  EXPECT_EQ(tampered.error().code, "digest_mismatch");

  fake.tamper_manifest = true;
  auto bad = client.get_manifest("v1");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, "digest_mismatch");
  auto by_digest = client.get_manifest(fake.manifest_digest);
  ASSERT_FALSE(by_digest);
  EXPECT_EQ(by_digest.error().code, "digest_mismatch");

  fake.tamper_manifest = false;
  fake.huge_manifest = true;
  auto huge = client.get_manifest("v1");
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.error().code, "manifest_too_large");
}

TEST(RegistryClientFake, GivesUpAfterRepeated5xx) {
  FakeRegistry fake;
  fake.failures_left = 100;
  auto o = insecure_options(fake.host());
  o.max_attempts = 3;
  RegistryClient client(parse_reference(fake.host() + "/x/y:v1").value(), o);
  auto m = client.get_manifest("v1");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, "registry_error");
  EXPECT_EQ(fake.failures_left.load(), 97);
}

TEST(RegistryClient, NoPlainHttpUnlessConfigured) {
  FakeRegistry fake;
  RegistryOptions o;
  o.connect_timeout = std::chrono::milliseconds(2000);
  o.max_attempts = 1;
  RegistryClient client(parse_reference(fake.host() + "/x/y:v1").value(), o);
  auto m = client.get_manifest("v1");
  ASSERT_FALSE(m);  // spoke TLS to a plain-HTTP server
  EXPECT_NE(m.error().code, "manifest_unknown");
}

TEST(RegistryClientFake, TlsWithCustomCa) {
  TempDir tmp;
  auto gen = testing::run({testing::require_program("openssl"), "req", "-x509", "-newkey", "ec",
                           "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                           (tmp.path() / "key.pem").string(), "-out",
                           (tmp.path() / "cert.pem").string(), "-days", "1", "-subj",
                           "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"});
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  FakeRegistry fake(net::TlsServerConfig{tmp.path() / "cert.pem", tmp.path() / "key.pem"});
  fake.failures_left = 0;
  ASSERT_NE(fake.port, 0);
  auto ref = parse_reference(fake.host() + "/x/y:v1").value();
  RegistryOptions o;
  o.auth_file = "/nonexistent";
  o.max_attempts = 1;
  auto untrusted = RegistryClient(ref, o).get_manifest("v1");
  ASSERT_FALSE(untrusted);
  EXPECT_EQ(untrusted.error().code, "tls_untrusted");
  o.ca_file = (tmp.path() / "cert.pem").string();
  o.max_attempts = 2;
  RegistryClient client(ref, o);
  auto m = client.get_manifest("v1");
  ASSERT_TRUE(m) << m.error().to_string();
  auto blob = client.get_blob(parse_manifest(m->data)->config);
  ASSERT_TRUE(blob) << blob.error().to_string();
}

TEST(RegistryInterop, IndexAllPlatformsAndDockerManifestConversion) {
  Registry reg;
  ASSERT_TRUE(reg.ok());
  TempDir tmp;
  auto o = insecure_options(reg.host());
  // An index with two platforms, built from two single-image layouts.
  auto dir = tmp.path() / "multi";
  testing::write_image(dir, "amd", {sample_layer('1', 100)});
  testing::write_image(dir, "arm", {sample_layer('2', 100)});
  auto layout = OciLayout::open(dir).value();
  Index idx{.media_type = std::string(media_type::kOciIndex)};
  for (auto [tag, arch] : {std::pair{"amd", "amd64"}, std::pair{"arm", "arm64"}}) {
    auto d = layout.resolve(tag).value();
    d.annotations.clear();
    d.platform = Platform{"linux", arch, "", ""};
    idx.manifests.push_back(d);
  }
  auto idx_bytes = idx.serialize();
  ASSERT_TRUE(layout.tag_manifest(Descriptor{.media_type = std::string(media_type::kOciIndex),
                                             .digest = layout.put_bytes(idx_bytes).value(),
                                             .size = static_cast<std::int64_t>(idx_bytes.size())},
                                  "multi"));
  CopyOptions all;
  all.all_platforms = true;
  auto pushed =
      copy_by_name("oci:" + dir.string() + ":multi", "docker://" + reg.host() + "/m/i:v1", o, all);
  ASSERT_TRUE(pushed) << pushed.error().to_string();
  EXPECT_EQ(pushed->manifest_digest, sha256_digest(idx_bytes));
  CopyOptions arm;
  arm.platform = Platform{"linux", "arm64", "v8", ""};
  auto one = copy_by_name("docker://" + reg.host() + "/m/i:v1",
                          "oci:" + (tmp.path() / "arm").string() + ":x", o, arm);
  ASSERT_TRUE(one) << one.error().to_string();
  EXPECT_EQ(one->manifest_digest, layout.resolve("arm")->digest);

  // skopeo pushes Docker schema 2; encrypting converts to OCI media types.
  auto r = testing::run({testing::require_program("skopeo"), "copy", "--format", "v2s2",
                         "--dest-tls-verify=false", "oci:" + dir.string() + ":amd",
                         "docker://" + reg.host() + "/d/v2:v1"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto src =
      open_source(parse_image_name("docker://" + reg.host() + "/d/v2:v1").value(), o).value();
  EXPECT_EQ(src->manifest()->media_type, media_type::kDockerManifest);
  auto key = crypto::Key::generate(crypto::KeyType::kEcP256).value();
  auto enc = copy_by_name(
      "docker://" + reg.host() + "/d/v2:v1", "docker://" + reg.host() + "/d/enc:v1", o,
      crypt::encrypt_copy_options(crypt::EncryptConfig{.jwe_recipients = {key}}, tmp.path()));
  ASSERT_TRUE(enc) << enc.error().to_string();
  auto m = parse_manifest(enc->manifest).value();
  EXPECT_EQ(m.media_type, media_type::kOciManifest);
  EXPECT_EQ(m.config.media_type, media_type::kOciConfig);
  EXPECT_EQ(m.layers[0].media_type, "application/vnd.oci.image.layer.v1.tar+gzip+encrypted");
  auto dec = copy_by_name(
      "docker://" + reg.host() + "/d/enc:v1", "oci:" + (tmp.path() / "dec").string() + ":v1", o,
      crypt::decrypt_copy_options(crypt::DecryptConfig{.jwe_keys = {key}}, tmp.path()));
  ASSERT_TRUE(dec) << dec.error().to_string();
}

TEST(AuthFile, LookupByHostPrefixAndUrl) {
  TempDir tmp;
  Json auth{{"auths",
             {{"https://index.docker.io/v1/", {{"auth", base64_encode(as_bytes("hub:pw"))}}},
              {"quay.io", {{"auth", base64_encode(as_bytes("q:1"))}}},
              {"quay.io/team", {{"auth", base64_encode(as_bytes("team:2"))}}}}}};
  ASSERT_TRUE(write_file_atomic(tmp.path() / "a.json", as_bytes(auth.dump())));
  EXPECT_EQ(lookup_credentials(tmp.path() / "a.json", "docker.io", "library/x").value()->username,
            "hub");
  EXPECT_EQ(lookup_credentials(tmp.path() / "a.json", "quay.io", "team/x").value()->username,
            "team");
  EXPECT_EQ(lookup_credentials(tmp.path() / "a.json", "quay.io", "other/x").value()->username, "q");
  EXPECT_FALSE(lookup_credentials(tmp.path() / "a.json", "ghcr.io", "x").value());
  auto c = parse_www_authenticate(
               R"(Bearer realm="https://a/token",service="reg",scope="repository:x:pull,push")")
               .value();
  EXPECT_EQ(c.scheme, "bearer");
  EXPECT_EQ(c.params["scope"], "repository:x:pull,push");
}

}  // namespace
}  // namespace coffer::oci
