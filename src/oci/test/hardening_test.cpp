// Issue 11 regressions on the registry, copy, ocicrypt and signature side: a tag checked once and
// used for everything after, MAC before decryption, retried downloads, destinations that appear
// only complete, strict signature payloads, images required to be encrypted. These tests use the
// interfaces as they were before the fixes, so each of them ran (and failed) against the old
// code; hardening_api_test.cpp covers the new library interfaces.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include <gtest/gtest.h>

#include "core/file.h"
#include "oci/crypt/ocicrypt.h"
#include "oci/layout.h"
#include "oci/registry.h"
#include "oci/sign/cosign.h"
#include "oci/sign/policy.h"
#include "oci/test/layout_registry.h"
#include "oci/test/test_util.h"
#include "oci/transport.h"
#include "oci/unpack/unpack.h"

namespace coffer::oci {
namespace {

namespace fs = std::filesystem;
using testing::make_tar;
using testing::TempDir;

const std::string kTool = std::string(COFFER_BINARY_DIR) + "/apps/coffer";

testing::CommandResult tool(std::vector<std::string> args) {
  args.insert(args.begin(), {kTool, "image"});
  return testing::run(args);
}

std::unique_ptr<ImageSource> layout_source(const fs::path& dir, const std::string& tag) {
  return make_layout_source(OciLayout::open(dir).value(), tag);
}

std::vector<fs::path> entries_of(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path());
  return out;
}

// Signs `digest` (a manifest in `layout`) as `identity` with a new key; returns a policy file
// that requires that signature.
fs::path sign_and_write_policy(const fs::path& layout_dir, const std::string& digest,
                               const std::string& identity, const fs::path& out_dir) {
  auto key = crypto::Key::generate(crypto::KeyType::kEcP256).value();
  auto layout = OciLayout::open(layout_dir).value();
  auto src = make_layout_source(layout, "");
  auto dst = make_layout_destination(layout, "");
  EXPECT_TRUE(sign::sign_image(*src, *dst, digest, identity, key));
  EXPECT_TRUE(write_file_atomic(out_dir / "cosign.pub", as_bytes(key.public_pem())));
  EXPECT_TRUE(write_file_atomic(
      out_dir / "policy.json",
      as_bytes(testing::policy_json(testing::sigstore_signed(out_dir / "cosign.pub")))));
  return out_dir / "policy.json";
}

// --- 2. The signature is checked on one manifest and another is unpacked -------------------

// A registry answers the tag with the signed manifest first and with an unsigned one after:
// `unpack --policy` must unpack the manifest whose signature it checked, fetching the tag once.
TEST(PinnedTag, UnpackWithPolicyUnpacksTheManifestItChecked) {
  TempDir tmp;
  auto dir = tmp.path() / "served";
  auto good = testing::write_tag_swap_images(dir);
  testing::LayoutRegistry reg(dir, "good", "evil");
  ASSERT_TRUE(reg.ok());
  auto policy = sign_and_write_policy(dir, good, reg.host() + "/x/y:v1", tmp.path());

  auto r = tool({"unpack", reg.image(), "--rootfs", (tmp.path() / "root").string(), "--policy",
                 policy.string(), "--insecure-registry", reg.host(), "--authfile",
                 (tmp.path() / "none.json").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(tmp.path() / "root/signed"));
  EXPECT_FALSE(fs::exists(tmp.path() / "root/evil"));
  EXPECT_EQ(reg.tag_fetches(), 1);
}

// The same for `copy --policy` and `verify`: the copy is the checked manifest.
TEST(PinnedTag, CopyAndVerifyWithPolicyUseTheManifestTheyChecked) {
  TempDir tmp;
  auto dir = tmp.path() / "served";
  auto good = testing::write_tag_swap_images(dir);
  testing::LayoutRegistry reg(dir, "good", "evil");
  ASSERT_TRUE(reg.ok());
  auto policy = sign_and_write_policy(dir, good, reg.host() + "/x/y:v1", tmp.path());
  auto r = tool({"copy", reg.image(), "oci:" + (tmp.path() / "copy").string() + ":v1", "--policy",
                 policy.string(), "--insecure-registry", reg.host(), "--authfile",
                 (tmp.path() / "none.json").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(good), std::string::npos) << r.output;
  EXPECT_EQ(OciLayout::open(tmp.path() / "copy").value().resolve("v1")->digest, good);
  EXPECT_EQ(reg.tag_fetches(), 1);

  testing::LayoutRegistry reg2(dir, "good", "evil");
  auto policy2 = sign_and_write_policy(dir, good, reg2.host() + "/x/y:v1", tmp.path());
  auto v = tool({"verify", reg2.image(), "--policy", policy2.string(), "--insecure-registry",
                 reg2.host(), "--authfile", (tmp.path() / "none.json").string()});
  ASSERT_EQ(v.exit_code, 0) << v.output;
  EXPECT_NE(v.output.find("accepted " + reg2.image() + " " + good), std::string::npos) << v.output;
  EXPECT_EQ(reg2.tag_fetches(), 1);
}

// `inspect` reports the digest and the layers of one answer.
TEST(PinnedTag, InspectDescribesOneManifest) {
  TempDir tmp;
  auto dir = tmp.path() / "served";
  auto good = testing::write_tag_swap_images(dir);
  testing::LayoutRegistry reg(dir, "good", "evil");
  ASSERT_TRUE(reg.ok());
  auto r = tool({"inspect", reg.image(), "--insecure-registry", reg.host(), "--authfile",
                 (tmp.path() / "none.json").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = parse_json(r.output.substr(r.output.find('{'))).value();
  EXPECT_EQ(j["digest"], good);
  EXPECT_EQ(j["layers"][0]["digest"],
            testing::read_manifest(OciLayout::open(dir).value(), "good").layers[0].digest);
  EXPECT_EQ(reg.tag_fetches(), 1);
}

// --- 3. Decrypted bytes reach gunzip and tar before the layer's HMAC is checked -------------

// A layout source that watches one blob: at every read of it, it notes whether anything exists
// yet inside an unpack's temporary tree under `watch` (the tar reader writes there).
class WatchingSource final : public ImageSource {
 public:
  WatchingSource(std::unique_ptr<ImageSource> inner, std::string digest, fs::path watch)
      : inner_(std::move(inner)), digest_(std::move(digest)), watch_(std::move(watch)) {}

  Result<RawManifest> manifest() override { return inner_->manifest(); }
  Result<RawManifest> manifest_by_digest(const std::string& d) override {
    return inner_->manifest_by_digest(d);
  }
  Result<std::optional<RawManifest>> manifest_by_tag(const std::string& t) override {
    return inner_->manifest_by_tag(t);
  }
  Result<std::unique_ptr<Reader>> blob(const Descriptor& d) override {
    auto r = COFFER_TRY(inner_->blob(d));
    if (d.digest != digest_) return r;
    return std::unique_ptr<Reader>(std::make_unique<Watched>(std::move(r), *this));
  }
  [[nodiscard]] std::string describe() const override { return inner_->describe(); }

  bool tree_written = false;    // something existed in the unpack tree during a read
  int reads_after_the_end = 0;  // reads after the blob had been read to its end once
  bool reached_end = false;

 private:
  class Watched final : public Reader {
   public:
    Watched(std::unique_ptr<Reader> in, WatchingSource& s) : in_(std::move(in)), s_(s) {}
    Result<std::size_t> read(std::span<std::uint8_t> b) override {
      s_.look();
      if (s_.reached_end) ++s_.reads_after_the_end;
      auto n = COFFER_TRY(in_->read(b));
      if (n == 0) s_.reached_end = true;
      return n;
    }
    Status rewind() override { return in_->rewind(); }
    [[nodiscard]] std::int64_t size() const override { return in_->size(); }

   private:
    std::unique_ptr<Reader> in_;
    WatchingSource& s_;
  };

  void look() {
    for (const auto& e : entries_of(watch_)) {
      if (e.filename().string().starts_with(".coffer-unpack-") && !entries_of(e).empty()) {
        tree_written = true;
      }
    }
  }

  std::unique_ptr<ImageSource> inner_;
  std::string digest_;
  fs::path watch_;
};

struct TamperedImage {
  fs::path layout;
  crypto::Key key;
  std::string tampered_digest;
};

// An image whose only layer (uncompressed: the tar reader sees the plaintext directly) is
// encrypted, then rewritten without the key as AES-CTR allows: ciphertext ^ plain ^ wanted turns
// the first tar entry "hello" into "pwned". `fix_checksum` also rewrites the header checksum so
// that the tar reader accepts the forged header. The layer digest is recomputed, so only the
// HMAC can catch it.
TamperedImage tampered_image(const fs::path& dir, bool fix_checksum) {
  const std::string big(3 << 20, 'b');  // more than one read buffer
  Bytes plain = make_tar({{.name = "hello", .content = "world"}, {.name = "big", .content = big}});
  Bytes wanted = make_tar({{.name = "pwned", .content = "world"}, {.name = "big", .content = big}});
  if (!fix_checksum) {
    wanted = plain;
    std::memcpy(wanted.data(), "pwned", 5);
  }
  testing::write_image(dir / "plain", "v1", {plain}, /*compress=*/false);
  auto key = crypto::Key::generate(crypto::KeyType::kEcP256).value();
  auto src = layout_source(dir / "plain", "v1");
  auto dst = open_destination(parse_image_name("oci:" + (dir / "enc").string() + ":v1").value(), {})
                 .value();
  EXPECT_TRUE(copy_image(
      *src, *dst, crypt::encrypt_copy_options(crypt::EncryptConfig{.jwe_recipients = {key}}, dir)));
  auto layout = OciLayout::open(dir / "enc").value();
  auto m = testing::read_manifest(layout, "v1");
  auto blob = read_file(layout.blob_path(m.layers[0].digest)).value();
  EXPECT_EQ(blob.size(), plain.size());
  for (std::size_t i = 0; i < blob.size(); ++i) blob[i] ^= plain[i] ^ wanted[i];
  m.layers[0].digest = layout.put_bytes(blob).value();
  testing::put_manifest(layout, m, "v1");
  return {dir / "enc", key, m.layers[0].digest};
}

void expect_nothing_decrypted_reached_tar(bool fix_checksum) {
  TempDir tmp;
  auto img = tampered_image(tmp.path(), fix_checksum);
  WatchingSource src(layout_source(img.layout, "v1"), img.tampered_digest, tmp.path());
  unpack::UnpackOptions o;
  o.tree.apply_xattrs = false;
  o.decrypt.jwe_keys = {img.key};
  auto st = unpack::unpack_image(src, tmp.path() / "out", o);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, "hmac_mismatch") << st.error().to_string();
  EXPECT_TRUE(src.reached_end);           // the whole ciphertext was read (and MACed) ...
  EXPECT_FALSE(src.tree_written);         // ... while the tar reader had written nothing
  EXPECT_EQ(src.reads_after_the_end, 0);  // and nothing was read again to decrypt it
  EXPECT_FALSE(fs::exists(tmp.path() / "out"));
}

TEST(MacFirst, ForgedTarHeaderNeverReachesTheTarReader) {
  expect_nothing_decrypted_reached_tar(true);
}

TEST(MacFirst, CorruptedTarHeaderIsReportedAsHmacMismatch) {
  expect_nothing_decrypted_reached_tar(false);
}

// From a registry: the HMAC is computed while the blob downloads, which happens once.
TEST(MacFirst, RegistryLayerIsAuthenticatedAsItDownloads) {
  TempDir tmp;
  auto img = tampered_image(tmp.path(), true);
  testing::LayoutRegistry reg(img.layout, "v1", "v1");
  ASSERT_TRUE(reg.ok());
  auto src =
      open_source(parse_image_name(reg.image()).value(), testing::insecure_options(reg.host()))
          .value();
  unpack::UnpackOptions o;
  o.tree.apply_xattrs = false;
  o.decrypt.jwe_keys = {img.key};
  auto st = unpack::unpack_image(*src, tmp.path() / "out", o);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, "hmac_mismatch") << st.error().to_string();
  EXPECT_EQ(reg.blob_fetches(img.tampered_digest), 1);
  EXPECT_FALSE(fs::exists(tmp.path() / "out"));
}

// `decrypt` of the same forged layer: refused with hmac_mismatch, nothing written.
TEST(MacFirst, DecryptCommandRefusesTheForgedLayer) {
  TempDir tmp;
  auto img = tampered_image(tmp.path(), true);
  ASSERT_TRUE(write_file_atomic(tmp.path() / "k.pem", as_bytes(img.key.private_pem().value())));
  auto r = tool({"decrypt", "oci:" + img.layout.string() + ":v1",
                 "oci:" + (tmp.path() / "dec").string() + ":v1", "--key",
                 (tmp.path() / "k.pem").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("hmac_mismatch"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(tmp.path() / "dec"));
}

// --- 4. A blob retried after a 5xx or a truncated body ------------------------------------

// Answers each TCP connection with the next scripted raw HTTP response (the last one repeats),
// then closes it: a 5xx with a body, or a body cut short of its Content-Length.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::vector<std::string> responses) : responses_(std::move(responses)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 8) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      return;
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedServer() {
    ::shutdown(fd_, SHUT_RDWR);  // wakes accept()
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;
  [[nodiscard]] std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] int connections() const { return connections_.load(); }

 private:
  void serve() {
    for (;;) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        request.append(buf, static_cast<std::size_t>(n));
      }
      std::size_t i = std::min<std::size_t>(connections_++, responses_.size() - 1);
      const std::string& out = responses_[i];
      for (std::size_t off = 0; off < out.size();) {
        ssize_t n = ::write(c, out.data() + off, out.size() - off);
        if (n <= 0) break;
        off += static_cast<std::size_t>(n);
      }
      ::shutdown(c, SHUT_WR);
      ::close(c);
    }
  }

  std::vector<std::string> responses_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<int> connections_{0};
  std::thread thread_;
};

std::string http_200(const std::string& body, std::size_t content_length) {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
         std::to_string(content_length) + "\r\nConnection: close\r\n\r\n" + body;
}

void expect_retry_succeeds(const std::string& first_answer, const std::string& body) {
  ScriptedServer server({first_answer, http_200(body, body.size())});
  TempDir tmp;
  auto o = testing::insecure_options(server.host());
  o.spool_dir = tmp.path();
  RegistryClient client(parse_reference(server.host() + "/x/y:v1").value(), o);
  Descriptor d{.media_type = "application/octet-stream",
               .digest = sha256_digest(as_bytes(body)),
               .size = static_cast<std::int64_t>(body.size())};
  auto blob = client.get_blob(d);
  ASSERT_TRUE(blob) << blob.error().to_string();
  EXPECT_EQ(to_string(read_all(**blob, 1 << 20).value()), body);
  EXPECT_EQ(server.connections(), 2);
}

TEST(BlobRetry, FreshDigestAfterA5xxWithABody) {
  const std::string body(50000, 'z');
  expect_retry_succeeds(
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n"
      "Connection: close\r\n\r\nbusy, try again soon",
      body);
}

TEST(BlobRetry, FreshDigestAfterATruncatedBody) {
  const std::string body(50000, 'y');
  expect_retry_succeeds(http_200(body.substr(0, 20000), body.size()), body);
}

// --- 8. A failed copy leaves no half-written destination -----------------------------------

// A source whose layer blob is corrupted: the copy fails after the config was written.
fs::path broken_source(const fs::path& dir) {
  testing::write_image(dir, "v1",
                       {testing::sample_layer('a', 1000), testing::sample_layer('b', 9)});
  auto layout = OciLayout::open(dir).value();
  auto m = testing::read_manifest(layout, "v1");
  EXPECT_TRUE(write_file_atomic(layout.blob_path(m.layers[1].digest), as_bytes("garbage")));
  return dir;
}

TEST(CopyDestination, FailedCopyToANewLayoutLeavesNothing) {
  TempDir tmp;
  auto src = broken_source(tmp.path() / "src");
  auto r = testing::copy_by_name("oci:" + src.string() + ":v1",
                                 "oci:" + (tmp.path() / "new").string() + ":v1");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "size_mismatch") << r.error().to_string();
  EXPECT_FALSE(fs::exists(tmp.path() / "new"));
  for (const auto& e : entries_of(tmp.path())) {
    EXPECT_FALSE(e.filename().string().find("staging") != std::string::npos) << e;
  }
  // An empty directory given as the destination stays empty.
  fs::create_directories(tmp.path() / "empty");
  ASSERT_FALSE(testing::copy_by_name("oci:" + src.string() + ":v1",
                                     "oci:" + (tmp.path() / "empty").string() + ":v1"));
  EXPECT_TRUE(entries_of(tmp.path() / "empty").empty());
  // And a successful copy into it appears whole.
  testing::write_image(tmp.path() / "ok", "v1", {testing::sample_layer('c', 10)});
  ASSERT_TRUE(testing::copy_by_name("oci:" + (tmp.path() / "ok").string() + ":v1",
                                    "oci:" + (tmp.path() / "empty").string() + ":v1"));
  EXPECT_TRUE(OciLayout::open(tmp.path() / "empty").value().resolve("v1"));
}

TEST(CopyDestination, FailedCopyToAnExistingLayoutAddsNoReference) {
  TempDir tmp;
  auto src = broken_source(tmp.path() / "src");
  testing::write_image(tmp.path() / "dst", "old", {testing::sample_layer('o', 10)});
  auto before = read_file(tmp.path() / "dst/index.json").value();
  ASSERT_FALSE(testing::copy_by_name("oci:" + src.string() + ":v1",
                                     "oci:" + (tmp.path() / "dst").string() + ":new"));
  EXPECT_EQ(read_file(tmp.path() / "dst/index.json").value(), before);
}

// Through the CLI, which used to create the layout before copying (to spool into it).
TEST(CopyDestination, FailedDecryptCommandLeavesNoLayout) {
  TempDir tmp;
  testing::write_image(tmp.path() / "img", "v1", {testing::sample_layer('d', 100)});
  auto key = crypto::Key::generate(crypto::KeyType::kEcP256).value();
  auto other = crypto::Key::generate(crypto::KeyType::kEcP256).value();
  ASSERT_TRUE(write_file_atomic(tmp.path() / "pub.pem", as_bytes(key.public_pem())));
  ASSERT_TRUE(write_file_atomic(tmp.path() / "other.pem", as_bytes(other.private_pem().value())));
  auto enc = tool({"encrypt", "oci:" + (tmp.path() / "img").string() + ":v1",
                   "oci:" + (tmp.path() / "enc").string() + ":v1", "--recipient",
                   "jwe:" + (tmp.path() / "pub.pem").string()});
  ASSERT_EQ(enc.exit_code, 0) << enc.output;
  auto dec = tool({"decrypt", "oci:" + (tmp.path() / "enc").string() + ":v1",
                   "oci:" + (tmp.path() / "dec").string() + ":v1", "--key",
                   (tmp.path() / "other.pem").string()});
  EXPECT_EQ(dec.exit_code, 1);
  EXPECT_NE(dec.output.find("decrypt_failed"), std::string::npos) << dec.output;
  EXPECT_FALSE(fs::exists(tmp.path() / "dec"));
}

// --- 9. Signature payloads: duplicate keys and unknown critical fields ---------------------

const std::string kDigest = "sha256:" + std::string(64, 'a');

std::string payload_text(const std::string& image_extra = "",
                         const std::string& identity_extra = "",
                         const std::string& critical_extra = "", const std::string& top_extra = "",
                         const std::string& optional = "null") {
  return R"({"critical":{"identity":{"docker-reference":"example.com/app:v1")" + identity_extra +
         R"(},"image":{"docker-manifest-digest":")" + kDigest + "\"" + image_extra +
         R"(},"type":"cosign container image signature")" + critical_extra + R"(},"optional":)" +
         optional + top_extra + "}";
}

TEST(SignaturePayload, StrictLikeContainersImage) {
  auto ok = sign::parse_payload(as_bytes(payload_text()), sign::kCosignType);
  ASSERT_TRUE(ok) << ok.error().to_string();
  EXPECT_EQ(ok->manifest_digest, kDigest);
  EXPECT_TRUE(sign::parse_payload(
      as_bytes(payload_text("", "", "", "", R"({"creator":"skopeo","timestamp":1700000000})")),
      sign::kCosignType));
  EXPECT_TRUE(
      sign::parse_payload(sign::make_payload("example.com/app:v1", kDigest), sign::kCosignType));

  const std::vector<std::pair<std::string, std::string>> refused = {
      // A second digest: a parser keeping the last one would check a different manifest.
      {"duplicate digest",
       payload_text(R"(,"docker-manifest-digest":"sha256:)" + std::string(64, 'b') + "\"")},
      {"duplicate reference", payload_text("", R"(,"docker-reference":"evil.example/x:v1")")},
      {"duplicate critical", payload_text("", "", "", R"(,"critical":{})")},
      {"unknown critical field", payload_text("", "", R"(,"expires":"never")")},
      {"unknown image field", payload_text(R"(,"annotations":{})")},
      {"unknown identity field", payload_text("", R"(,"scope":"any")")},
      {"unknown top-level field", payload_text("", "", "", R"(,"extra":1)")},
      {"optional not an object", payload_text("", "", "", "", "[]")},
      {"creator not a string", payload_text("", "", "", "", R"({"creator":1})")},
      {"timestamp not a number", payload_text("", "", "", "", R"({"timestamp":"now"})")},
      {"no optional", R"({"critical":{"identity":{"docker-reference":"example.com/app:v1"},)"
                      R"("image":{"docker-manifest-digest":")" +
                          kDigest + R"("},"type":"cosign container image signature"}})"},
      {"no identity", R"({"critical":{"image":{"docker-manifest-digest":")" + kDigest +
                          R"("},"type":"cosign container image signature"},"optional":null})"},
      {"reference not a string",
       R"({"critical":{"identity":{"docker-reference":1},"image":{"docker-manifest-digest":")" +
           kDigest + R"("},"type":"cosign container image signature"},"optional":null})"},
  };
  for (const auto& [what, text] : refused) {
    auto p = sign::parse_payload(as_bytes(text), sign::kCosignType);
    ASSERT_FALSE(p) << what;
    EXPECT_EQ(p.error().code, "bad_signature_payload") << what << ": " << p.error().to_string();
  }
}

// End to end: a validly signed payload with an unknown critical field does not satisfy a policy.
TEST(SignaturePayload, PolicyRefusesASignedPayloadWithAnUnknownCriticalField) {
  TempDir tmp;
  auto dir = tmp.path() / "img";
  auto digest = testing::write_image(dir, "v1", {make_tar({{.name = "f", .content = "x"}})});
  auto key = crypto::Key::generate(crypto::KeyType::kEcP256).value();
  auto layout = OciLayout::open(dir).value();
  std::string payload = R"({"critical":{"identity":{"docker-reference":"example.com/app:v1"},)"
                        R"("image":{"docker-manifest-digest":")" +
                        digest +
                        R"("},"type":"cosign container image signature","only-if":"false"},)"
                        R"("optional":null})";
  auto signature = key.sign(as_bytes(payload), crypto::SignatureParams{}).value();
  Descriptor layer{.media_type = std::string(sign::kSimpleSigningMediaType),
                   .digest = layout.put_bytes(as_bytes(payload)).value(),
                   .size = static_cast<std::int64_t>(payload.size())};
  layer.annotations[std::string(sign::kCosignSignatureAnnotation)] = base64_encode(signature);
  Manifest m;
  m.media_type = media_type::kOciManifest;
  m.config = testing::put_config(layout, Json{{"rootfs", {{"type", "layers"}}}});
  m.layers = {layer};
  testing::put_manifest(layout, m, sign::cosign_signature_tag(digest));

  ASSERT_TRUE(write_file_atomic(tmp.path() / "pub.pem", as_bytes(key.public_pem())));
  auto policy =
      sign::Policy::parse(testing::policy_json(testing::sigstore_signed(
                              tmp.path() / "pub.pem", {{"type", "exactReference"},
                                                       {"dockerReference", "example.com/app:v1"}})))
          .value();
  auto name = parse_image_name("oci:" + dir.string() + ":v1").value();
  auto src = layout_source(dir, "v1");
  auto st = policy.evaluate(name, *src, digest, {});
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, "no_valid_signature");
  EXPECT_NE(st.error().message.find("only-if"), std::string::npos) << st.error().message;
}

// --- 10. Images required to be encrypted, through the CLI ----------------------------------

TEST(RequireEncrypted, CliRefusesPlaintextLayers) {
  TempDir tmp;
  auto p = [&](const std::string& n) { return (tmp.path() / n).string(); };
  testing::write_image(tmp.path() / "img", "v1", {testing::sample_layer('p', 100)});
  auto unpack = tool({"unpack", "oci:" + p("img") + ":v1", "--rootfs", p("root"),
                      "--require-encrypted", "--insecure-policy"});
  EXPECT_EQ(unpack.exit_code, 1) << unpack.output;
  EXPECT_NE(unpack.output.find("layer_not_encrypted"), std::string::npos) << unpack.output;
  EXPECT_FALSE(fs::exists(tmp.path() / "root"));

  auto key = crypto::Key::generate(crypto::KeyType::kEcP256).value();
  ASSERT_TRUE(write_file_atomic(tmp.path() / "k.pem", as_bytes(key.private_pem().value())));
  auto dec = tool({"decrypt", "oci:" + p("img") + ":v1", "oci:" + p("dec") + ":v1", "--key",
                   p("k.pem"), "--require-encrypted"});
  EXPECT_EQ(dec.exit_code, 1) << dec.output;
  EXPECT_NE(dec.output.find("layer_not_encrypted"), std::string::npos) << dec.output;
  EXPECT_FALSE(fs::exists(tmp.path() / "dec"));

  auto copy = tool({"copy", "oci:" + p("img") + ":v1", "oci:" + p("copy") + ":v1",
                    "--require-encrypted", "--insecure-policy"});
  EXPECT_EQ(copy.exit_code, 1) << copy.output;
  EXPECT_NE(copy.output.find("layer_not_encrypted"), std::string::npos) << copy.output;
  EXPECT_FALSE(fs::exists(tmp.path() / "copy"));
}

}  // namespace
}  // namespace coffer::oci
