// The agent's image service against docker-registry 2.8 on loopback (and the in-test layout
// registry where blob requests are counted or held): an image built from Debian's busybox-static,
// encrypted for a KBS key that the test's key provider returns, cosign-signed, under a
// sigstoreSigned policy whose key is a kbs:/// resource.
#include "agent/image/image_service.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <condition_variable>
#include <set>
#include <thread>

#include "core/file.h"
#include "crypto/random.h"
#include "oci/digest.h"
#include "oci/layout.h"
#include "oci/sign/cosign.h"
#include "oci/sign/cosign_key.h"
#include "oci/test/layout_registry.h"
#include "oci/test/test_util.h"
#include "oci/transport.h"

namespace coffer::agent {
namespace {

namespace fs = std::filesystem;
using oci::testing::TempDir;

constexpr char kImageKid[] = "kbs:///default/image-key/1";
constexpr char kCosignKid[] = "kbs:///default/cosign-key/1";

Bytes busybox_layer() {
  auto busybox = read_file("/bin/busybox", 16 << 20);
  EXPECT_TRUE(busybox) << "busybox-static is not installed (run scripts/install-deps)";
  return oci::testing::make_tar({
      {.name = "bin/", .type = '5', .mode = 0755},
      {.name = "bin/busybox", .content = to_string(busybox.value_or(Bytes{})), .mode = 0755},
      {.name = "bin/sh", .type = '2', .link = "busybox", .mode = 0777},
      {.name = "etc/", .type = '5', .mode = 0755},
      {.name = "etc/motd", .content = "hello from the enclave\n"},
  });
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename());
  return out;
}

// Everything the tests pull, built once: the registry, the keys and the images.
struct Images {
  oci::testing::Registry registry;
  TempDir dir;
  Bytes image_key = crypto::random_bytes(32);
  oci::sign::CosignKeyPair cosign = oci::sign::generate_cosign_key_pair("pw").value();
  oci::sign::CosignKeyPair other_cosign = oci::sign::generate_cosign_key_pair("pw").value();
  std::string signed_digest;  // app/enc:v1, encrypted and signed
  std::string layer_digest;   // its (encrypted) layer

  Images() {
    if (!registry.ok()) return;
    auto ro = oci::testing::insecure_options(registry.host());
    Json run_config{{"Entrypoint", {"/bin/busybox", "cat"}}, {"Cmd", {"/etc/motd"}}};
    oci::testing::write_image(dir.path() / "plain", "v1", {busybox_layer()}, true, run_config);
    auto enc = oci::testing::copy_by_name(
        layout("plain"), layout("enc"), {},
        oci::crypt::encrypt_copy_options(
            oci::crypt::EncryptConfig{.kbs_recipients = {{kImageKid, image_key}}}, dir.path()));
    EXPECT_TRUE(enc) << enc.error().to_string();
    layer_digest =
        oci::testing::read_manifest(oci::OciLayout::open(dir.path() / "enc").value(), "v1")
            .layers[0]
            .digest;
    signed_digest = push("enc", "app/enc:v1");
    push("enc", "app/unsigned:v1");
    push("enc", "elsewhere/enc:v1");
    push("plain", "app/plain:v1");
    auto key = oci::sign::load_cosign_private_key(cosign.private_pem, "pw").value();
    for (const std::string repo : {"app/enc:v1", "app/plain:v1"}) {
      auto name = oci::parse_image_name(image(repo)).value();
      auto src = oci::open_source(name, ro).value();
      auto dst = oci::open_destination(name, ro).value();
      auto digest = oci::pin_image(*src).value().digest();
      EXPECT_TRUE(oci::sign::sign_image(*src, *dst, digest, name.reference.str(), key));
    }
    // The encrypted layer with one ciphertext byte flipped, under a new (consistent) digest:
    // only the layer's HMAC can tell.
    fs::copy(dir.path() / "enc", dir.path() / "tampered", fs::copy_options::recursive);
    auto tampered = oci::OciLayout::open(dir.path() / "tampered").value();
    auto m = oci::testing::read_manifest(tampered, "v1");
    auto blob = read_file(tampered.blob_path(m.layers[0].digest)).value();
    blob[blob.size() / 2] ^= 0x01;
    m.layers[0].digest = tampered.put_bytes(blob).value();
    oci::testing::put_manifest(tampered, m, "v1");
    push("tampered", "app/tampered:v1");
  }

  [[nodiscard]] std::string layout(const std::string& name) const {
    return "oci:" + (dir.path() / name).string() + ":v1";
  }
  [[nodiscard]] std::string image(const std::string& repo) const {
    return "docker://" + registry.host() + "/" + repo;
  }
  std::string push(const std::string& from, const std::string& repo) {
    auto r = oci::testing::copy_by_name(layout(from), image(repo),
                                        oci::testing::insecure_options(registry.host()));
    EXPECT_TRUE(r) << r.error().to_string();
    return r ? r->manifest_digest : "";
  }
};

Images* images = nullptr;

class ImageServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { images = new Images; }
  static void TearDownTestSuite() {
    delete images;
    images = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(images->registry.ok()); }

  // Only signed images of <registry>/app, their key a KBS resource; everything else rejected.
  [[nodiscard]] std::string sigstore_policy() const {
    return oci::testing::policy_json(Json{{"type", "sigstoreSigned"}, {"keyPath", kCosignKid}},
                                     "docker", images->registry.host() + "/app");
  }

  // What the agent gets from its attested configuration, with counters on the KBS.
  ImageServiceOptions options(const fs::path& storage, const std::string& policy) {
    ImageServiceOptions o;
    o.storage_dir = storage;
    o.security_policy_json = policy;
    o.insecure_registries = {images->registry.host()};
    o.resource_resolver = [this](const std::string& uri) -> Result<Bytes> {
      ++resources_asked;
      if (uri == kCosignKid) return to_bytes(resolver_key);
      return make_error("kbs_resource_not_found", uri);
    };
    o.key_provider = [this](const std::string& kid) -> Result<Bytes> {
      ++keys_asked;
      if (kid == kImageKid && !refuse_key) return images->image_key;
      return make_error("kbs_resource_not_found", "the KBS refused " + kid);
    };
    o.progress = [this](const oci::LayerProgress& p) {
      if (p.done) ++layers_done;
    };
    return o;
  }

  // Nothing of a refused image stays: no cache entry, no staging directory, no spooled blob.
  static void expect_storage_empty(const fs::path& storage) {
    EXPECT_EQ(entries(storage / "images"), std::vector<std::string>{});
    EXPECT_EQ(entries(storage / "spool"), std::vector<std::string>{});
  }

  TempDir tmp;
  std::string resolver_key = images->cosign.public_pem;
  std::atomic<int> resources_asked{0}, keys_asked{0}, layers_done{0};
  bool refuse_key = false;
};

TEST_F(ImageServiceTest, PullsSignedEncryptedImageAndCachesItByDigest) {
  fs::path storage = tmp.path() / "storage";
  ImageService svc(options(storage, sigstore_policy()));
  auto pulled = svc.pull(images->image("app/enc:v1"));
  ASSERT_TRUE(pulled) << pulled.error().to_string();
  EXPECT_EQ(pulled->manifest_digest, images->signed_digest);
  EXPECT_FALSE(pulled->from_cache);
  EXPECT_EQ(pulled->reference, images->image("app/enc:v1"));
  EXPECT_EQ(read_file(pulled->rootfs / "bin/busybox").value(), read_file("/bin/busybox").value());
  EXPECT_EQ(read_text_file(pulled->rootfs / "etc/motd").value(), "hello from the enclave\n");
  EXPECT_EQ(pulled->config.json["config"]["Entrypoint"], (Json{"/bin/busybox", "cat"}));
  EXPECT_EQ(keys_asked, 1);
  EXPECT_EQ(resources_asked, 1);  // the cosign key, through the KBS resolver
  EXPECT_EQ(layers_done, 1);

  // The cache layout: storage_dir/images/sha256-<hex>/{rootfs,config.json,image.json}, 0700.
  fs::path entry = storage / "images" / ("sha256-" + images->signed_digest.substr(7));
  EXPECT_EQ(pulled->rootfs, entry / "rootfs");
  for (const auto& d : {storage, storage / "images"}) {
    struct stat st {};
    ASSERT_EQ(::stat(d.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0700u) << d;
  }
  auto meta = parse_json(read_text_file(entry / "image.json").value()).value();
  EXPECT_EQ(meta["reference"], images->image("app/enc:v1"));
  EXPECT_EQ(meta["manifestDigest"], images->signed_digest);
  EXPECT_EQ(meta["configDigest"], oci::sha256_digest(read_file(entry / "config.json").value()));
  EXPECT_EQ(entries(storage / "images"), std::vector<std::string>{entry.filename()});

  // Again, as a bare reference: from the cache, the policy (and its key) checked again, the
  // image key not needed.
  std::string bare = images->registry.host() + "/app/enc:v1";
  auto again = svc.pull(bare);
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_TRUE(again->from_cache);
  EXPECT_EQ(again->reference, bare);
  EXPECT_EQ(again->manifest_digest, images->signed_digest);
  EXPECT_EQ(again->rootfs, entry / "rootfs");
  EXPECT_EQ(again->config.json, pulled->config.json);
  EXPECT_EQ(resources_asked, 2);
  EXPECT_EQ(keys_asked, 1);
  auto stats = svc.stats();
  EXPECT_EQ(stats.fetched, 1u);
  EXPECT_EQ(stats.cache_hits, 1u);
  EXPECT_EQ(stats.refused, 0u);
}

TEST_F(ImageServiceTest, RestartedServiceFindsItsCache) {
  fs::path storage = tmp.path() / "storage";
  {
    ImageService svc(options(storage, sigstore_policy()));
    ASSERT_TRUE(svc.pull(images->image("app/enc:v1")));
  }
  ImageService svc(options(storage, sigstore_policy()));
  auto listed = svc.list();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].reference, images->image("app/enc:v1"));
  EXPECT_EQ(listed[0].manifest_digest, images->signed_digest);
  EXPECT_EQ(listed[0].config.json["config"]["Cmd"], (Json{"/etc/motd"}));
  EXPECT_TRUE(fs::exists(listed[0].rootfs / "bin/busybox"));
  auto pulled = svc.pull(images->image("app/enc:v1"));
  ASSERT_TRUE(pulled) << pulled.error().to_string();
  EXPECT_TRUE(pulled->from_cache);
  EXPECT_EQ(keys_asked, 1);  // only the first service's download
}

TEST_F(ImageServiceTest, PolicyIsEvaluatedOnEveryPullOfACachedImage) {
  fs::path storage = tmp.path() / "storage";
  {
    ImageService svc(options(storage, sigstore_policy()));
    ASSERT_TRUE(svc.pull(images->image("app/enc:v1")));
  }
  fs::path busybox =
      storage / "images" / ("sha256-" + images->signed_digest.substr(7)) / "rootfs/bin/busybox";
  {
    ImageService svc(options(storage, oci::testing::policy_json(Json{{"type", "reject"}})));
    auto r = svc.pull(images->image("app/enc:v1"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "policy_rejected");
    EXPECT_EQ(svc.stats().cache_hits, 0u);
  }
  {
    // The KBS now hands out another cosign key: the cached image's signature no longer verifies.
    resolver_key = images->other_cosign.public_pem;
    ImageService svc(options(storage, sigstore_policy()));
    auto r = svc.pull(images->image("app/enc:v1"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "no_valid_signature");
  }
  // Refused, but the cache stays whole for pulls the policy allows.
  EXPECT_TRUE(fs::exists(busybox));
  resolver_key = images->cosign.public_pem;
  ImageService svc(options(storage, sigstore_policy()));
  auto r = svc.pull(images->image("app/enc:v1"));
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_TRUE(r->from_cache);
}

TEST_F(ImageServiceTest, UnsignedImageIsRefusedAndLeavesNothing) {
  fs::path storage = tmp.path() / "storage";
  ImageService svc(options(storage, sigstore_policy()));
  auto r = svc.pull(images->image("app/unsigned:v1"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "no_valid_signature");
  EXPECT_EQ(keys_asked, 0);
  expect_storage_empty(storage);
  EXPECT_EQ(svc.stats().refused, 1u);
  // Outside the policy's scope: the default, reject.
  ImageService other(options(storage, sigstore_policy()));
  auto outside = other.pull(images->registry.host() + "/elsewhere/enc:v1");
  ASSERT_FALSE(outside);
  EXPECT_EQ(outside.error().code, "policy_rejected");
}

TEST_F(ImageServiceTest, TamperedEncryptedLayerIsRefusedAndLeavesNothing) {
  fs::path storage = tmp.path() / "storage";
  // No signature requirement here (a signature would already fail): the HMAC is what catches it.
  ImageService svc(
      options(storage, oci::testing::policy_json(Json{{"type", "insecureAcceptAnything"}})));
  auto r = svc.pull(images->image("app/tampered:v1"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "hmac_mismatch") << r.error().to_string();
  expect_storage_empty(storage);
}

TEST_F(ImageServiceTest, KeyRefusedByTheKbsOrNoKeyProviderLeavesNothing) {
  fs::path storage = tmp.path() / "storage";
  refuse_key = true;
  ImageService svc(options(storage, sigstore_policy()));
  auto r = svc.pull(images->image("app/enc:v1"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "kbs_resource_not_found");
  EXPECT_NE(r.error().message.find("refused the layer key kbs:///"), std::string::npos)
      << r.error().message;
  expect_storage_empty(storage);

  auto o = options(storage, sigstore_policy());
  o.key_provider = nullptr;
  ImageService without(std::move(o));
  auto missing = without.pull(images->image("app/enc:v1"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, "missing_decryption_key");
  expect_storage_empty(storage);
}

TEST_F(ImageServiceTest, RequireEncryptedRefusesAPlaintextLayerBeforeFetchingIt) {
  oci::testing::LayoutRegistry reg(images->dir.path() / "plain", "v1", "v1");
  ASSERT_TRUE(reg.ok());
  fs::path storage = tmp.path() / "storage";
  auto o = options(storage, oci::testing::policy_json(Json{{"type", "insecureAcceptAnything"}}));
  o.insecure_registries = {reg.host()};
  o.require_encrypted_layers = true;
  ImageService svc(std::move(o));
  auto r = svc.pull(reg.image());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "layer_not_encrypted");
  auto plain =
      oci::testing::read_manifest(oci::OciLayout::open(images->dir.path() / "plain").value(), "v1");
  EXPECT_EQ(reg.blob_fetches(plain.layers[0].digest), 0);
  EXPECT_EQ(reg.blob_fetches(plain.config.digest), 0);
  expect_storage_empty(storage);

  // The signed plaintext image from docker-registry: the signature passes, the rule still holds.
  auto o2 = options(storage, sigstore_policy());
  o2.require_encrypted_layers = true;
  ImageService svc2(std::move(o2));
  auto r2 = svc2.pull(images->image("app/plain:v1"));
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().code, "layer_not_encrypted");
  expect_storage_empty(storage);
}

// Holds the first download of `digest` until `release()` says so.
class BlobGate {
 public:
  explicit BlobGate(oci::testing::LayoutRegistry& reg, std::string digest)
      : digest_(std::move(digest)) {
    reg.on_blob([this](const std::string& d) {
      if (d != digest_ || held_++ != 0) return;
      std::unique_lock lock(mu_);
      arrived_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return released_; });
    });
  }
  void wait_arrived() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return arrived_; });
  }
  void release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::string digest_;
  std::atomic<int> held_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool arrived_ = false, released_ = false;
};

// Polls a counter of the service that another thread moves (the pull under test is blocked in a
// call and cannot signal): bounded, so a regression fails instead of hanging.
bool eventually(const std::function<bool()>& condition) {
  for (int i = 0; i < 10'000; ++i) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

class SingleFlightTest : public ImageServiceTest {
 protected:
  void start(const std::string& layout) {
    reg = std::make_unique<oci::testing::LayoutRegistry>(images->dir.path() / layout, "v1", "v1");
    ASSERT_TRUE(reg->ok());
    layer =
        oci::testing::read_manifest(oci::OciLayout::open(images->dir.path() / layout).value(), "v1")
            .layers[0]
            .digest;
    gate = std::make_unique<BlobGate>(*reg, layer);
    auto o = options(tmp.path() / "storage",
                     oci::testing::policy_json(Json{{"type", "insecureAcceptAnything"}}));
    o.insecure_registries = {reg->host()};
    svc = std::make_unique<ImageService>(std::move(o));
  }
  void TearDown() override {
    if (gate) gate->release();
  }

  std::unique_ptr<oci::testing::LayoutRegistry> reg;
  std::string layer;
  std::unique_ptr<BlobGate> gate;
  std::unique_ptr<ImageService> svc;
};

TEST_F(SingleFlightTest, TwoConcurrentPullsDownloadOnceAndShareTheResult) {
  start("enc");
  Result<PulledImage> first = make_error("not_run", ""), second = make_error("not_run", "");
  std::thread a([&] { first = svc->pull(reg->image()); });
  gate->wait_arrived();  // the first pull is downloading the layer
  std::thread b([&] { second = svc->pull(reg->image()); });
  bool joined = eventually([&] { return svc->stats().joined == 1; });
  gate->release();
  a.join();
  b.join();
  ASSERT_TRUE(joined);
  ASSERT_TRUE(first) << first.error().to_string();
  ASSERT_TRUE(second) << second.error().to_string();
  EXPECT_EQ(first->manifest_digest, second->manifest_digest);
  EXPECT_EQ(first->rootfs, second->rootfs);
  EXPECT_EQ(reg->blob_fetches(layer), 1);
  EXPECT_EQ(keys_asked, 1);
  EXPECT_EQ(svc->stats().fetched, 1u);
  EXPECT_TRUE(fs::exists(first->rootfs / "bin/busybox"));
}

TEST_F(SingleFlightTest, TwoConcurrentPullsShareTheError) {
  start("tampered");
  Result<PulledImage> first = make_error("not_run", ""), second = make_error("not_run", "");
  std::thread a([&] { first = svc->pull(reg->image()); });
  gate->wait_arrived();
  std::thread b([&] { second = svc->pull(reg->image()); });
  bool joined = eventually([&] { return svc->stats().joined == 1; });
  gate->release();
  a.join();
  b.join();
  ASSERT_TRUE(joined);
  ASSERT_FALSE(first);
  ASSERT_FALSE(second);
  EXPECT_EQ(first.error().code, "hmac_mismatch");
  EXPECT_EQ(second.error().code, "hmac_mismatch");
  EXPECT_EQ(reg->blob_fetches(layer), 1);
  expect_storage_empty(tmp.path() / "storage");
}

TEST_F(SingleFlightTest, CancelledPullLeavesNothingAndItsWaiterPullsByItself) {
  start("enc");
  std::stop_source cancel;
  Result<PulledImage> first = make_error("not_run", ""), second = make_error("not_run", "");
  std::thread a([&] { first = svc->pull(reg->image(), cancel.get_token()); });
  gate->wait_arrived();
  std::thread b([&] { second = svc->pull(reg->image()); });
  bool joined = eventually([&] { return svc->stats().joined == 1; });
  cancel.request_stop();
  gate->release();
  a.join();
  b.join();
  ASSERT_TRUE(joined);
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error().code, "cancelled");
  ASSERT_TRUE(second) << second.error().to_string();  // not cancelled: downloaded again
  EXPECT_FALSE(second->from_cache);
  EXPECT_EQ(reg->blob_fetches(layer), 2);
  EXPECT_EQ(entries(tmp.path() / "storage/images"),
            std::vector<std::string>{"sha256-" + second->manifest_digest.substr(7)});

  // Cancelled before it starts.
  std::stop_source before;
  before.request_stop();
  auto r = svc->pull(reg->image(), before.get_token());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "cancelled");
}

TEST_F(SingleFlightTest, WaiterCancelledWhileWaitingStopsWaiting) {
  start("enc");
  std::stop_source cancel;
  Result<PulledImage> first = make_error("not_run", ""), second = make_error("not_run", "");
  std::thread a([&] { first = svc->pull(reg->image()); });
  gate->wait_arrived();
  std::thread b([&] { second = svc->pull(reg->image(), cancel.get_token()); });
  bool joined = eventually([&] { return svc->stats().joined == 1; });
  cancel.request_stop();
  b.join();  // returns while the first pull is still held
  if (!joined) {
    gate->release();
    a.join();
  }
  ASSERT_TRUE(joined);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, "cancelled");
  gate->release();
  a.join();
  ASSERT_TRUE(first) << first.error().to_string();
}

TEST_F(ImageServiceTest, RegistryCredentialsFromTheConfiguration) {
  oci::testing::Registry reg(/*basic_auth=*/true);
  ASSERT_TRUE(reg.ok());
  auto push_options = oci::testing::insecure_options(reg.host());
  push_options.credentials[reg.host()] = {"user", "s3cret"};
  ASSERT_TRUE(oci::testing::copy_by_name(images->layout("enc"),
                                         "docker://" + reg.host() + "/app/enc:v1", push_options));
  fs::path storage = tmp.path() / "storage";
  auto o = options(storage, oci::testing::policy_json(Json{{"type", "insecureAcceptAnything"}}));
  o.insecure_registries = {reg.host()};
  std::string image = reg.host() + "/app/enc:v1";
  {
    ImageService anonymous(o);
    auto r = anonymous.pull(image);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "unauthorized");
  }
  {
    auto wrong = o;
    wrong.registry_auth_json =
        Json{{"auths", {{reg.host(), {{"auth", base64_encode(as_bytes("user:wrong"))}}}}}}.dump();
    ImageService svc(std::move(wrong));
    auto r = svc.pull(image);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "unauthorized");
  }
  expect_storage_empty(storage);
  o.registry_auth_json =
      Json{{"auths", {{reg.host(), {{"auth", base64_encode(as_bytes("user:s3cret"))}}}}}}.dump();
  ImageService svc(std::move(o));
  auto r = svc.pull(image);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_TRUE(fs::exists(r->rootfs / "bin/busybox"));
}

// PullProgress's source: while a three-layer image is unpacked, progress() names the pull, the
// layer being unpacked (in order, of 3) and the bytes so far, up to all of the blobs; nothing once
// it landed.
TEST_F(ImageServiceTest, ProgressFollowsEachLayerOfAPullInFlight) {
  TempDir layout_dir;
  oci::testing::write_image(
      layout_dir.path(), "v1",
      {oci::testing::sample_layer('a', 300000), oci::testing::sample_layer('b', 200000),
       oci::testing::sample_layer('c', 100000)});
  const std::string ref = images->image("multi/three:v1");
  ASSERT_TRUE(oci::testing::copy_by_name("oci:" + layout_dir.path().string() + ":v1", ref,
                                         oci::testing::insecure_options(images->registry.host())));
  std::uint64_t blob_bytes = 0;
  for (const auto& l :
       oci::testing::read_manifest(oci::OciLayout::open(layout_dir.path()).value(), "v1").layers) {
    blob_bytes += static_cast<std::uint64_t>(l.size);
  }
  auto o = options(tmp.path() / "storage",
                   oci::testing::policy_json(Json{{"type", "insecureAcceptAnything"}}));
  ImageService* service = nullptr;
  std::vector<PullProgress> seen;
  o.progress = [&](const oci::LayerProgress& p) {
    if (p.is_config || service == nullptr) return;
    auto now = service->progress();  // called on the unpacking thread, during the pull
    ASSERT_EQ(now.size(), 1U);
    seen.push_back(now.front());
  };
  ImageService svc(std::move(o));
  service = &svc;
  EXPECT_TRUE(svc.progress().empty());
  auto pulled = svc.pull(ref);
  ASSERT_TRUE(pulled) << pulled.error().to_string();
  EXPECT_TRUE(svc.progress().empty());
  ASSERT_FALSE(seen.empty());
  std::set<std::size_t> layers;
  std::size_t last_index = 0;
  std::uint64_t last_done = 0;
  for (const auto& p : seen) {
    EXPECT_EQ(p.reference, ref);
    EXPECT_EQ(p.layer_count, 3U);
    EXPECT_GE(p.layer_index, last_index);
    EXPECT_GE(p.bytes_done, last_done);
    EXPECT_LE(p.layer_bytes, static_cast<std::uint64_t>(p.layer_total));
    layers.insert(p.layer_index);
    last_index = p.layer_index;
    last_done = p.bytes_done;
  }
  EXPECT_EQ(layers, (std::set<std::size_t>{0, 1, 2}));
  EXPECT_EQ(seen.back().bytes_done, blob_bytes);
  EXPECT_GT(pulled->timings.layers.count(), 0);
  EXPECT_GE(pulled->timings.total, pulled->timings.layers);
}

TEST_F(ImageServiceTest, PlainHttpOnlyForListedRegistries) {
  fs::path storage = tmp.path() / "storage";
  auto o = options(storage, sigstore_policy());
  o.insecure_registries.clear();
  ImageService svc(std::move(o));
  auto r = svc.pull(images->image("app/enc:v1"));
  ASSERT_FALSE(r);
  // The registry speaks HTTP: the TLS handshake fails, nothing is tried without TLS.
  EXPECT_EQ(r.error().code, "tls_wrong_version") << r.error().to_string();
  expect_storage_empty(storage);
}

TEST_F(ImageServiceTest, RefusesWithoutPolicyAndNamesOutsideARegistry) {
  fs::path storage = tmp.path() / "storage";
  auto o = options(storage, "");
  o.security_policy_json.reset();
  ImageService none(std::move(o));
  auto r = none.pull(images->image("app/enc:v1"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "no_image_policy");

  ImageService bad(options(storage, R"({"default":[]})"));
  EXPECT_EQ(bad.pull(images->image("app/enc:v1")).error().code, "bad_policy");

  ImageService svc(
      options(storage, oci::testing::policy_json(Json{{"type", "insecureAcceptAnything"}})));
  for (const std::string& name :
       {"oci:" + (images->dir.path() / "enc").string() + ":v1", std::string("dir:/etc"),
        std::string("docker://"), std::string("UPPER/case")}) {
    auto refused = svc.pull(name);
    ASSERT_FALSE(refused) << name;
    EXPECT_EQ(refused.error().code, "bad_image_name") << name;
  }
  expect_storage_empty(storage);
}

TEST_F(ImageServiceTest, RemoveDeletesACachedImage) {
  fs::path storage = tmp.path() / "storage";
  ImageService svc(options(storage, sigstore_policy()));
  auto pulled = svc.pull(images->image("app/enc:v1"));
  ASSERT_TRUE(pulled) << pulled.error().to_string();
  EXPECT_EQ(svc.remove("sha256:../../etc").error().code, "bad_digest");
  EXPECT_EQ(svc.remove(std::string("sha256:") + std::string(64, 'A')).error().code, "bad_digest");
  EXPECT_EQ(svc.remove("sha256:" + std::string(64, '0')).error().code, "image_not_found");
  ASSERT_TRUE(svc.remove(pulled->manifest_digest));
  EXPECT_TRUE(svc.list().empty());
  expect_storage_empty(storage);
  EXPECT_EQ(svc.remove(pulled->manifest_digest).error().code, "image_not_found");
  auto again = svc.pull(images->image("app/enc:v1"));
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_FALSE(again->from_cache);
}

TEST_F(ImageServiceTest, LeftoversOfAnInterruptedRunAreRemovedAtStart) {
  fs::path storage = tmp.path() / "storage";
  fs::create_directories(storage / "images/.staging-0123/rootfs/bin");
  fs::create_directories(storage / "images/.trash-4567/rootfs");
  ImageService svc(options(storage, sigstore_policy()));
  expect_storage_empty(storage);
}

}  // namespace
}  // namespace coffer::agent
