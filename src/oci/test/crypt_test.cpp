// ocicrypt: round trips for every recipient type, tampering, wrong keys, and interop with
// skopeo's ocicrypt in both directions.
#include "oci/crypt/ocicrypt.h"

#include <gtest/gtest.h>

#include "core/file.h"
#include "crypto/random.h"
#include "oci/layout.h"
#include "oci/test/test_util.h"
#include "oci/transport.h"

namespace coffer::oci::crypt {
namespace {

using oci::testing::TempDir;

Result<CopyResult> copy(const std::string& from, const std::string& to, const CopyOptions& co) {
  return oci::testing::copy_by_name(from, to, {}, co);
}

std::vector<Descriptor> layers_of(const std::filesystem::path& dir, const std::string& tag) {
  return oci::testing::read_manifest(OciLayout::open(dir).value(), tag).layers;
}

Bytes layer_tar(char c) {
  return oci::testing::make_tar({{.name = "f", .content = std::string(200000, c)}});
}

std::size_t count_files(const std::filesystem::path& dir) {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    (void)e;
    ++n;
  }
  return n;
}

TEST(Ocicrypt, RoundTripAllRecipientTypes) {
  TempDir tmp;
  auto src = tmp.path() / "src";
  oci::testing::write_image(src, "v1", {layer_tar('a'), layer_tar('b')});
  auto ec = crypto::Key::generate(crypto::KeyType::kEcP256).value();
  auto rsa = crypto::Key::generate(crypto::KeyType::kRsa, 2048).value();
  Bytes kbs_key = crypto::random_bytes(32);
  EncryptConfig ec_cfg;
  ec_cfg.jwe_recipients = {crypto::Key::from_pem(ec.public_pem()).value(),
                           crypto::Key::from_pem(rsa.public_pem()).value()};
  ec_cfg.kbs_recipients = {{"kbs:///default/key/1", kbs_key}};
  std::filesystem::create_directories(tmp.path() / "spool");
  auto enc = copy("oci:" + src.string() + ":v1", "oci:" + (tmp.path() / "enc").string() + ":v1",
                  encrypt_copy_options(ec_cfg, tmp.path() / "spool"));
  ASSERT_TRUE(enc) << enc.error().to_string();
  auto enc_layers = layers_of(tmp.path() / "enc", "v1");
  ASSERT_EQ(enc_layers.size(), 2u);
  EXPECT_EQ(enc_layers[0].media_type, "application/vnd.oci.image.layer.v1.tar+gzip+encrypted");
  EXPECT_TRUE(enc_layers[0].annotations.contains(std::string(kJweAnnotation)));
  EXPECT_TRUE(enc_layers[0].annotations.contains(std::string(kKeyProviderAnnotation)));
  auto packet = parse_json(to_string(
      base64_decode(enc_layers[0].annotations[std::string(kKeyProviderAnnotation)]).value()));
  EXPECT_EQ(packet->value("kid", ""), "kbs:///default/key/1");
  EXPECT_EQ(packet->value("wrap_type", ""), "A256GCM");
  auto orig = layers_of(src, "v1");

  auto check_decrypt = [&](DecryptConfig dc, const std::string& name) {
    auto out = tmp.path() / name;
    auto r = copy("oci:" + (tmp.path() / "enc").string() + ":v1", "oci:" + out.string() + ":v1",
                  decrypt_copy_options(std::move(dc), tmp.path() / "spool"));
    ASSERT_TRUE(r) << name << ": " << r.error().to_string();
    auto got = layers_of(out, "v1");
    ASSERT_EQ(got.size(), orig.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].digest, orig[i].digest);
      EXPECT_EQ(got[i].media_type, orig[i].media_type);
      EXPECT_TRUE(got[i].annotations.empty());
    }
  };
  check_decrypt(DecryptConfig{.jwe_keys = {ec}}, "dec-ec");
  check_decrypt(DecryptConfig{.jwe_keys = {rsa}}, "dec-rsa");
  std::vector<std::string> kids;
  check_decrypt(DecryptConfig{.key_provider = [&](const std::string& kid) -> Result<Bytes> {
                  kids.push_back(kid);
                  return kbs_key;
                }},
                "dec-kbs");
  EXPECT_EQ(kids, (std::vector<std::string>{"kbs:///default/key/1", "kbs:///default/key/1"}));

  // Wrong keys.
  auto other = crypto::Key::generate(crypto::KeyType::kEcP256).value();
  auto wrong = copy("oci:" + (tmp.path() / "enc").string() + ":v1",
                    "oci:" + (tmp.path() / "w").string() + ":v1",
                    decrypt_copy_options(DecryptConfig{.jwe_keys = {other}}, tmp.path() / "spool"));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, "decrypt_failed");
  auto none = copy("oci:" + (tmp.path() / "enc").string() + ":v1",
                   "oci:" + (tmp.path() / "w").string() + ":v1",
                   decrypt_copy_options(DecryptConfig{}, tmp.path() / "spool"));
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, "missing_decryption_key");
  auto bad_kbs = copy(
      "oci:" + (tmp.path() / "enc").string() + ":v1", "oci:" + (tmp.path() / "w").string() + ":v1",
      decrypt_copy_options(DecryptConfig{.key_provider = [](const std::string&) -> Result<Bytes> {
                             return crypto::random_bytes(32);
                           }},
                           tmp.path() / "spool"));
  ASSERT_FALSE(bad_kbs);
  EXPECT_EQ(bad_kbs.error().code, "decrypt_failed");
  EXPECT_EQ(count_files(tmp.path() / "spool"), 0u);
}

// Transformed layers reach a layout by rename, not by a second copy; a descriptor that does not
// fit the spooled file falls back to the verified copy, which refuses it.
TEST(OciLayoutPutBlobFile, MovesASpooledBlobOrCopiesItWithVerification) {
  TempDir tmp;
  auto layout = OciLayout::open_or_create(tmp.path() / "l").value();
  Bytes data = crypto::random_bytes(5000);
  Descriptor d{.media_type = "application/octet-stream",
               .digest = sha256_digest(data),
               .size = static_cast<std::int64_t>(data.size())};
  auto spool = TempFile::create(tmp.path()).value();
  ASSERT_TRUE(spool.write(data));
  auto spooled = spool.path();
  ASSERT_TRUE(layout.put_blob_file(d, spool));
  EXPECT_FALSE(std::filesystem::exists(spooled));
  EXPECT_EQ(read_file(layout.blob_path(d.digest)).value(), data);

  Bytes other = crypto::random_bytes(100);
  Descriptor lying{.media_type = "application/octet-stream",
                   .digest = sha256_digest(other),
                   .size = static_cast<std::int64_t>(other.size())};
  auto wrong = TempFile::create(tmp.path()).value();
  ASSERT_TRUE(wrong.write(data));
  auto st = layout.put_blob_file(lying, wrong);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, "size_mismatch") << st.error().to_string();
  EXPECT_FALSE(std::filesystem::exists(layout.blob_path(lying.digest)));
}

TEST(Ocicrypt, TamperedCiphertextFailsHmacAndLeavesNothing) {
  TempDir tmp;
  auto src = tmp.path() / "src";
  oci::testing::write_image(src, "v1", {layer_tar('c')});
  auto key = crypto::Key::generate(crypto::KeyType::kEcP256).value();
  std::filesystem::create_directories(tmp.path() / "spool");
  ASSERT_TRUE(
      copy("oci:" + src.string() + ":v1", "oci:" + (tmp.path() / "enc").string() + ":v1",
           encrypt_copy_options(EncryptConfig{.jwe_recipients = {key}}, tmp.path() / "spool")));
  auto layer = layers_of(tmp.path() / "enc", "v1")[0];
  auto layout = OciLayout::open(tmp.path() / "enc").value();
  auto blob = read_file(layout.blob_path(layer.digest)).value();
  blob[blob.size() / 2] ^= 1;
  MemoryReader reader(blob);
  auto out = TempFile::create(tmp.path() / "spool").value();
  auto r = decrypt_layer(layer, reader, out, DecryptConfig{.jwe_keys = {key}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "hmac_mismatch");

  // Through copy: the blob digest no longer matches, caught before decryption output is kept.
  ASSERT_TRUE(write_file_atomic(layout.blob_path(layer.digest), blob));
  auto c = copy("oci:" + (tmp.path() / "enc").string() + ":v1",
                "oci:" + (tmp.path() / "dec").string() + ":v1",
                decrypt_copy_options(DecryptConfig{.jwe_keys = {key}}, tmp.path() / "spool"));
  ASSERT_FALSE(c);
  EXPECT_TRUE(c.error().code == "digest_mismatch" || c.error().code == "hmac_mismatch")
      << c.error().to_string();
  out = TempFile::create(tmp.path() / "spool").value();
  EXPECT_EQ(count_files(tmp.path() / "spool"), 1u);  // only `out` itself
}

TEST(OcicryptInterop, SkopeoEncryptedDecryptsInCoffer) {
  TempDir tmp;
  auto src = tmp.path() / "src";
  oci::testing::write_image(src, "v1", {layer_tar('d'), layer_tar('e')});
  for (auto type : {crypto::KeyType::kRsa, crypto::KeyType::kEcP256}) {
    auto key = crypto::Key::generate(type, 2048).value();
    ASSERT_TRUE(write_file_atomic(tmp.path() / "pub.pem", as_bytes(key.public_pem())));
    auto enc = tmp.path() / ("enc" + std::string(crypto::key_type_name(type)));
    auto r = oci::testing::run({oci::testing::require_program("skopeo"), "copy", "--encryption-key",
                                "jwe:" + (tmp.path() / "pub.pem").string(),
                                "oci:" + src.string() + ":v1", "oci:" + enc.string() + ":v1"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ASSERT_TRUE(is_encrypted(layers_of(enc, "v1")[0]));
    auto dec = copy("oci:" + enc.string() + ":v1", "oci:" + enc.string() + "-dec:v1",
                    decrypt_copy_options(DecryptConfig{.jwe_keys = {key}}, tmp.path()));
    ASSERT_TRUE(dec) << dec.error().to_string();
    auto got = layers_of(enc.string() + "-dec", "v1");
    auto orig = layers_of(src, "v1");
    ASSERT_EQ(got.size(), orig.size());
    for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].digest, orig[i].digest);
  }
}

TEST(OcicryptInterop, CofferEncryptedDecryptsInSkopeo) {
  TempDir tmp;
  auto src = tmp.path() / "src";
  oci::testing::write_image(src, "v1", {layer_tar('f')});
  for (auto type : {crypto::KeyType::kRsa, crypto::KeyType::kEcP256}) {
    auto key = crypto::Key::generate(type, 2048).value();
    ASSERT_TRUE(write_file_atomic(tmp.path() / "priv.pem", as_bytes(key.private_pem().value())));
    auto enc = tmp.path() / ("enc" + std::string(crypto::key_type_name(type)));
    auto r = copy("oci:" + src.string() + ":v1", "oci:" + enc.string() + ":v1",
                  encrypt_copy_options(EncryptConfig{.jwe_recipients = {key}}, tmp.path()));
    ASSERT_TRUE(r) << r.error().to_string();
    auto s = oci::testing::run({oci::testing::require_program("skopeo"), "copy", "--decryption-key",
                                (tmp.path() / "priv.pem").string(), "oci:" + enc.string() + ":v1",
                                "oci:" + enc.string() + "-dec:v1"});
    ASSERT_EQ(s.exit_code, 0) << s.output;
    EXPECT_EQ(layers_of(enc.string() + "-dec", "v1")[0].digest, layers_of(src, "v1")[0].digest);
  }
}

}  // namespace
}  // namespace coffer::oci::crypt
