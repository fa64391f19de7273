// Issue 11: the library interfaces the fixes introduced (PinnedImage, LayerAuthenticator,
// require_encrypted_layers) and key files written before scrypt/secretbox moved to src/crypto.
#include <fcntl.h>
#include <sys/stat.h>

#include <cstdio>

#include <gtest/gtest.h>

#include "core/file.h"
#include "oci/crypt/ocicrypt.h"
#include "oci/layout.h"
#include "oci/sign/cosign.h"
#include "oci/sign/cosign_key.h"
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

// Resolve once, then policy, signature lookup, unpack and copy all take the pinned image: the
// lying registry's second answer is never asked for.
TEST(PinnedImageApi, PolicyUnpackAndCopyUseOnePinnedManifest) {
  TempDir tmp;
  auto dir = tmp.path() / "served";
  auto good = testing::write_tag_swap_images(dir);
  testing::LayoutRegistry reg(dir, "good", "evil");
  ASSERT_TRUE(reg.ok());
  auto key = crypto::Key::generate(crypto::KeyType::kEcP256).value();
  {
    auto layout = OciLayout::open(dir).value();
    auto src = make_layout_source(layout, "");
    auto dst = make_layout_destination(layout, "");
    ASSERT_TRUE(sign::sign_image(*src, *dst, good, reg.host() + "/x/y:v1", key));
  }
  ASSERT_TRUE(write_file_atomic(tmp.path() / "pub.pem", as_bytes(key.public_pem())));
  auto policy =
      sign::Policy::parse(testing::policy_json(testing::sigstore_signed(tmp.path() / "pub.pem")))
          .value();
  auto name = parse_image_name(reg.image()).value();
  auto src = open_source(name, testing::insecure_options(reg.host())).value();

  auto pinned = pin_image(*src).value();
  EXPECT_EQ(pinned.digest(), good);
  ASSERT_TRUE(policy.evaluate(name, *src, pinned, {}));
  unpack::UnpackOptions uo;
  uo.tree.apply_xattrs = false;
  auto st = unpack::unpack_image(*src, pinned, tmp.path() / "root", uo);
  ASSERT_TRUE(st) << st.error().to_string();
  EXPECT_TRUE(fs::exists(tmp.path() / "root/signed"));
  EXPECT_FALSE(fs::exists(tmp.path() / "root/evil"));
  auto dst =
      open_destination(parse_image_name("oci:" + (tmp.path() / "c").string() + ":v1").value(), {})
          .value();
  auto copied = copy_image(*src, *dst, pinned, {});
  ASSERT_TRUE(copied) << copied.error().to_string();
  EXPECT_EQ(copied->manifest_digest, good);
  EXPECT_EQ(reg.tag_fetches(), 1);

  // Without pinning, the same source answers differently the second time: what pinning is for.
  EXPECT_NE(src->manifest()->digest, good);
}

TEST(LayerAuthenticatorApi, DecryptsOnlyAfterVerifyAndRestartsOnReset) {
  TempDir tmp;
  testing::write_image(tmp.path() / "img", "v1", {testing::sample_layer('m', 5000)});
  auto key = crypto::Key::generate(crypto::KeyType::kEcP256).value();
  auto src = make_layout_source(OciLayout::open(tmp.path() / "img").value(), "v1");
  auto dst =
      open_destination(parse_image_name("oci:" + (tmp.path() / "enc").string() + ":v1").value(), {})
          .value();
  ASSERT_TRUE(copy_image(*src, *dst, crypt::encrypt_copy_options({.jwe_recipients = {key}})));
  auto layout = OciLayout::open(tmp.path() / "enc").value();
  auto layer = testing::read_manifest(layout, "v1").layers[0];
  auto ciphertext = read_file(layout.blob_path(layer.digest)).value();
  crypt::DecryptConfig dc{.jwe_keys = {key}};

  auto auth = crypt::LayerAuthenticator::create(layer, dc).value();
  auto early = auth->decrypt(std::make_unique<MemoryReader>(ciphertext));
  ASSERT_FALSE(early);
  EXPECT_EQ(early.error().code, "hmac_not_verified");

  // A failed attempt's bytes are forgotten by reset(), as a retried download needs.
  auth->update(as_bytes("bytes of a failed attempt"));
  auth->reset();
  auth->update(ciphertext);
  ASSERT_TRUE(auth->verify());
  auto plain = auth->decrypt(std::make_unique<MemoryReader>(ciphertext)).value();
  auto bytes = read_all(*plain, 1 << 20).value();
  EXPECT_EQ(
      sha256_digest(bytes),
      testing::read_manifest(OciLayout::open(tmp.path() / "img").value(), "v1").layers[0].digest);

  auto auth2 = crypt::LayerAuthenticator::create(layer, dc).value();
  Bytes flipped = ciphertext;
  flipped[0] ^= 0x80;
  auth2->update(flipped);
  auto st = auth2->verify();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, "hmac_mismatch");
  EXPECT_EQ(auth2->decrypt(std::make_unique<MemoryReader>(flipped)).error().code,
            "hmac_not_verified");
}

// An image with one encrypted and one plaintext layer.
fs::path mixed_image(const fs::path& dir, const crypto::Key& key) {
  testing::write_image(dir / "plain", "v1",
                       {testing::sample_layer('e', 100), testing::sample_layer('p', 100)});
  auto first = testing::read_manifest(OciLayout::open(dir / "plain").value(), "v1").layers[0];
  auto co = crypt::encrypt_copy_options({.jwe_recipients = {key}});
  co.wants_transform = [first](const Descriptor& d) { return d.digest == first.digest; };
  auto src = make_layout_source(OciLayout::open(dir / "plain").value(), "v1");
  auto dst =
      open_destination(parse_image_name("oci:" + (dir / "mixed").string() + ":v1").value(), {})
          .value();
  EXPECT_TRUE(copy_image(*src, *dst, co));
  return dir / "mixed";
}

TEST(RequireEncryptedApi, UnpackAndCopyRefuseAPlaintextLayer) {
  TempDir tmp;
  auto key = crypto::Key::generate(crypto::KeyType::kEcP256).value();
  auto mixed = mixed_image(tmp.path(), key);
  auto layers = testing::read_manifest(OciLayout::open(mixed).value(), "v1").layers;
  ASSERT_TRUE(crypt::is_encrypted(layers[0]));
  ASSERT_FALSE(crypt::is_encrypted(layers[1]));

  testing::LayoutRegistry reg(mixed, "v1", "v1");
  ASSERT_TRUE(reg.ok());
  auto src =
      open_source(parse_image_name(reg.image()).value(), testing::insecure_options(reg.host()))
          .value();
  unpack::UnpackOptions uo;
  uo.tree.apply_xattrs = false;
  uo.decrypt.jwe_keys = {key};
  uo.require_encrypted_layers = true;
  auto st = unpack::unpack_image(*src, tmp.path() / "root", uo);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, "layer_not_encrypted");
  EXPECT_NE(st.error().message.find(layers[1].digest), std::string::npos);
  EXPECT_FALSE(fs::exists(tmp.path() / "root"));
  EXPECT_EQ(reg.blob_fetches(layers[0].digest) + reg.blob_fetches(layers[1].digest), 0);
  uo.require_encrypted_layers = false;  // the same image is fine when mixing is allowed
  ASSERT_TRUE(unpack::unpack_image(*src, tmp.path() / "root", uo));

  auto co = crypt::decrypt_copy_options({.jwe_keys = {key}});
  co.require_encrypted_layers = true;
  auto copied = testing::copy_by_name("oci:" + mixed.string() + ":v1",
                                      "oci:" + (tmp.path() / "dec").string() + ":v1", {}, co);
  ASSERT_FALSE(copied);
  EXPECT_EQ(copied.error().code, "layer_not_encrypted");
  EXPECT_FALSE(fs::exists(tmp.path() / "dec"));

  // Every layer encrypted: accepted.
  auto all = crypt::encrypt_copy_options({.jwe_recipients = {key}});
  ASSERT_TRUE(testing::copy_by_name("oci:" + (tmp.path() / "plain").string() + ":v1",
                                    "oci:" + (tmp.path() / "enc").string() + ":v1", {}, all));
  uo.require_encrypted_layers = true;
  auto enc = make_layout_source(OciLayout::open(tmp.path() / "enc").value(), "v1");
  auto ok = unpack::unpack_image(*enc, tmp.path() / "root2", uo);
  EXPECT_TRUE(ok) << ok.error().to_string();
}

// A cosign key file written by the code before scrypt and secretbox moved behind src/crypto
// (coffer_image_tool keygen at commit 9640034, password "fixture-pw") still opens, to the same
// key.
TEST(CosignKeyCompat, KeyFileFromBeforeTheCryptoMoveStillLoads) {
  const std::string private_pem = R"(-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjozMjc2OCwiciI6
OCwicCI6MX0sInNhbHQiOiIzMXRybllDTVoyc0JMYS9pMGxiTkdrTjNTZnpZYUFs
eUVwTHJ3VzRPdE13PSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJkSW9PTnNyOFdWQ0NpZituT1p3R0hYVWxhYXc3QmlYRCJ9LCJj
aXBoZXJ0ZXh0Ijoib0tHNEJ2emJDNzduK2lzclJXKzU0bzZyeGFNa0NvdDFDc2tu
MWpYVFZkQ0lkcFBHVUc5d2hodnlBVElOTUtEZHVUZDRnVUxGWlRwODF4OHhza3B4
SGJQeGhUYlBIM1FOajQvRndYRTZsK0E1SlM0NjdMR2pGK3Zvd0VVMTJCR1J0cUFC
VmtnRGlPeEhLQk5mUFFGRVRXMXhqK3JLeHFhY2Rxb0hRRnNNTVhWTGtGVU5CVytP
R09BMkt5Z2psNERzMldjdHdZNUdENHNaakE9PSJ9
-----END ENCRYPTED SIGSTORE PRIVATE KEY-----
)";
  const std::string public_pem = R"(-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAED51CWfbK++CMYgBT3ajmimlP+9r9
U8oUS58HgjO+XLk8xnT6bL+Pr9jGUVi4XzbJccSjrEJYv4j2/ememnLa7w==
-----END PUBLIC KEY-----
)";
  auto key = sign::load_cosign_private_key(private_pem, "fixture-pw");
  ASSERT_TRUE(key) << key.error().to_string();
  EXPECT_TRUE(key->same_public(crypto::Key::from_pem(public_pem).value()));
  EXPECT_EQ(sign::load_cosign_private_key(private_pem, "fixture-pW").error().code,
            "wrong_password");
  // And a key written now opens with the same code path.
  auto again = sign::encrypt_cosign_private_key(*key, "pw2").value();
  EXPECT_TRUE(sign::load_cosign_private_key(again, "pw2")->same_public(*key));
}

}  // namespace
}  // namespace coffer::oci

namespace coffer::oci {
namespace {

struct CountingObserver final : StreamObserver {
  std::uint64_t bytes = 0;
  void reset() override { bytes = 0; }
  void update(ByteView chunk) override { bytes += chunk.size(); }
};

// A layout blob read once for its MAC and then again to decrypt: the second read is refused at
// its end when the file was written to in between.
TEST(LayoutBlobObserved, SecondReadRefusedWhenTheFileChanged) {
  TempDir tmp;
  testing::write_image(tmp.path() / "img", "v1", {testing::sample_layer('s', 4000)});
  auto layout = OciLayout::open(tmp.path() / "img").value();
  auto layer = testing::read_manifest(layout, "v1").layers[0];
  auto path = layout.blob_path(layer.digest);
  // An old mtime, so that the in-place write below moves it whatever the clock granularity.
  timespec old_times[2] = {{1000, 0}, {1000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), old_times, 0), 0);
  auto src = make_layout_source(layout, "v1");

  CountingObserver seen;
  auto unchanged = src->blob_observed(layer, seen).value();
  EXPECT_EQ(seen.bytes, static_cast<std::uint64_t>(layer.size));
  auto bytes = read_all(*unchanged, 1 << 20);
  ASSERT_TRUE(bytes) << bytes.error().to_string();
  EXPECT_EQ(sha256_digest(*bytes), layer.digest);

  auto reader = src->blob_observed(layer, seen).value();
  {
    auto content = read_file(path).value();
    content[10] ^= 1;
    std::FILE* f = std::fopen(path.c_str(), "r+b");  // same inode, same size
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(content.data(), 1, content.size(), f), content.size());
    std::fclose(f);
  }
  auto changed = read_all(*reader, 1 << 20);
  ASSERT_FALSE(changed);
  EXPECT_EQ(changed.error().code, "digest_mismatch");
}

}  // namespace
}  // namespace coffer::oci
