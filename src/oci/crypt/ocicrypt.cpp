#include "oci/crypt/ocicrypt.h"

#include <optional>

#include "crypto/cipher.h"
#include "crypto/digest.h"
#include "crypto/kdf.h"
#include "crypto/random.h"
#include "jose/jwe.h"
#include "oci/digest.h"

namespace coffer::oci::crypt {
namespace {

constexpr std::size_t kKeySize = 32;
constexpr std::size_t kNonceSize = 16;
constexpr std::size_t kGcmIvSize = 12;
constexpr std::size_t kGcmTagSize = 16;
constexpr std::string_view kEncPrefix = "org.opencontainers.image.enc.";

std::vector<std::string_view> split_commas(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    auto end = s.find(',', start);
    if (end == std::string_view::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

Result<Bytes> json_b64(const Json& obj, std::string_view key, std::string_view what) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) {
    return make_error("bad_encryption_metadata",
                      std::string(what) + " has no '" + std::string(key) + "'");
  }
  auto b = base64_decode(it->get<std::string>());
  if (!b) {
    return make_error("bad_encryption_metadata",
                      std::string(what) + " '" + std::string(key) + "' is not base64");
  }
  return b;
}

Bytes serialize_private(const PrivateOptions& p) {
  // Go's field order (symkey, digest, cipheroptions), as ocicrypt marshals it.
  nlohmann::ordered_json j;
  j["symkey"] = base64_encode(p.symkey);
  j["digest"] = p.digest;
  j["cipheroptions"] = {{"nonce", base64_encode(p.nonce)}};
  return to_bytes(j.dump());
}

Result<PrivateOptions> parse_private(ByteView data) {
  auto j = COFFER_TRY(parse_json(to_string(data), JsonLimits{.max_bytes = 64 * 1024}));
  if (!j.is_object()) return make_error("bad_encryption_metadata", "private options not an object");
  PrivateOptions p;
  p.symkey = COFFER_TRY(json_b64(j, "symkey", "private options"));
  auto co = j.find("cipheroptions");
  if (co == j.end() || !co->is_object()) {
    return make_error("bad_encryption_metadata", "private options have no cipheroptions");
  }
  p.nonce = COFFER_TRY(json_b64(*co, "nonce", "private cipheroptions"));
  p.digest = j.value("digest", "");
  if (p.symkey.size() != kKeySize || p.nonce.size() != kNonceSize) {
    return make_error("bad_encryption_metadata", "layer key must be 32 bytes and nonce 16");
  }
  if (auto st = validate_digest(p.digest); !st) {
    return make_error("bad_encryption_metadata", "private options digest: " + st.error().message);
  }
  return p;
}

// The expected HMAC from the public options.
Result<Bytes> parse_public_hmac(const Descriptor& layer) {
  auto it = layer.annotations.find(std::string(kPubOptsAnnotation));
  if (it == layer.annotations.end()) {
    return make_error("bad_encryption_metadata", "encrypted layer " + layer.digest + " has no " +
                                                     std::string(kPubOptsAnnotation));
  }
  auto raw = base64_decode(it->second);
  if (!raw) return make_error("bad_encryption_metadata", "pubopts annotation is not base64");
  auto j = COFFER_TRY(parse_json(to_string(*raw), JsonLimits{.max_bytes = 64 * 1024}));
  if (!j.is_object()) return make_error("bad_encryption_metadata", "pubopts not an object");
  if (j.value("cipher", "") != kCipher) {
    return make_error("unsupported_cipher", "layer cipher '" + j.value("cipher", "") + "' is not " +
                                                std::string(kCipher));
  }
  // ocicrypt stores the HMAC at the top level; very old versions put it in cipheroptions.
  if (auto h = j.find("hmac"); h != j.end() && h->is_string())
    return json_b64(j, "hmac", "pubopts");
  if (auto co = j.find("cipheroptions"); co != j.end() && co->is_object() && co->contains("hmac")) {
    return json_b64(*co, "hmac", "pubopts cipheroptions");
  }
  return make_error("bad_encryption_metadata",
                    "pubopts carry no HMAC; refusing to decrypt "
                    "an unauthenticated layer");
}

std::string strip_encrypted(std::string mt) {
  if (mt.ends_with(media_type::kEncryptedSuffix)) {
    mt.resize(mt.size() - media_type::kEncryptedSuffix.size());
  }
  return mt;
}

// Plaintext of ciphertext whose HMAC already verified; checks the private options' digest.
class DecryptingReader final : public Reader {
 public:
  DecryptingReader(std::unique_ptr<Reader> inner, crypto::AesCtr ctr, const std::string& digest)
      : inner_(std::move(inner)), ctr_(std::move(ctr)), checker_(digest, -1) {}

  Result<std::size_t> read(std::span<std::uint8_t> buffer) override {
    if (done_) return std::size_t{0};
    std::size_t n = COFFER_TRY(inner_->read(buffer));
    if (n == 0) {
      COFFER_TRY_STATUS(checker_.finish());
      done_ = true;
      return std::size_t{0};
    }
    ctr_.update(ByteView(buffer.data(), n), buffer.data());
    checker_.update(ByteView(buffer.data(), n));
    return n;
  }

 private:
  std::unique_ptr<Reader> inner_;
  crypto::AesCtr ctr_;
  DigestChecker checker_;
  bool done_ = false;
};

}  // namespace

bool is_encrypted(const Descriptor& layer) {
  return layer.media_type.ends_with(media_type::kEncryptedSuffix);
}

Result<std::string> wrap_for_kbs(ByteView private_options, const KbsRecipient& r) {
  if (r.key.size() != kKeySize) {
    return make_error("bad_key", "the KBS key for " + r.kid + " must be 32 bytes");
  }
  if (!r.kid.starts_with("kbs:///")) {
    return make_error("bad_key", "kid '" + r.kid + "' is not a kbs:///repo/type/tag URI");
  }
  Bytes iv = crypto::random_bytes(kGcmIvSize);
  auto sealed = COFFER_TRY(crypto::aes_gcm_encrypt(r.key, iv, private_options, {}));
  Bytes wrapped = sealed.ciphertext;
  wrapped.insert(wrapped.end(), sealed.tag.begin(), sealed.tag.end());
  nlohmann::ordered_json packet;
  packet["kid"] = r.kid;
  packet["wrapped_data"] = base64_encode(wrapped);
  packet["iv"] = base64_encode(iv);
  packet["wrap_type"] = "A256GCM";
  packet["version"] = "0.1.0";
  packet["provider"] = "kbs";
  packet["provider_settings"] = Json::object();
  packet["annotations"] = Json::object();
  return base64_encode(as_bytes(packet.dump()));
}

Result<Descriptor> encrypt_layer(const Descriptor& layer, Reader& plaintext, TempFile& out,
                                 const EncryptConfig& config) {
  if (config.jwe_recipients.empty() && config.kbs_recipients.empty()) {
    return make_error("no_recipients", "encryption needs at least one recipient");
  }
  auto type = COFFER_TRY(classify_layer(layer.media_type));
  if (type.encrypted) return make_error("already_encrypted", layer.digest + " is encrypted");
  PrivateOptions p{crypto::random_bytes(kKeySize), crypto::random_bytes(kNonceSize), layer.digest};
  auto ctr = COFFER_TRY(crypto::AesCtr::create(p.symkey, p.nonce));
  crypto::HmacStream mac(crypto::DigestAlg::kSha256, p.symkey);
  Sha256Digester digester;
  COFFER_TRY(pump(plaintext, [&](ByteView chunk) -> Status {
    Bytes buf(chunk.begin(), chunk.end());
    ctr.update(buf, buf.data());
    mac.update(buf);
    digester.update(buf);
    return out.write(buf);
  }));
  Bytes hmac = mac.finish();

  Descriptor enc;
  enc.media_type = layer_media_type(type.compression, true);
  enc.digest = digester.finish();
  enc.size = static_cast<std::int64_t>(digester.bytes());
  for (const auto& [k, v] : layer.annotations) {
    if (!k.starts_with(kEncPrefix)) enc.annotations[k] = v;
  }
  Bytes priv = serialize_private(p);
  if (!config.jwe_recipients.empty()) {
    auto jwe = COFFER_TRY(jose::jwe_encrypt_multi(priv, config.jwe_recipients));
    enc.annotations[std::string(kJweAnnotation)] = base64_encode(as_bytes(jwe.dump()));
  }
  std::string kbs;
  for (const auto& r : config.kbs_recipients) {
    kbs += (kbs.empty() ? "" : ",") + COFFER_TRY(wrap_for_kbs(priv, r));
  }
  if (!kbs.empty()) enc.annotations[std::string(kKeyProviderAnnotation)] = kbs;
  nlohmann::ordered_json pub;
  pub["cipher"] = kCipher;
  pub["hmac"] = base64_encode(hmac);
  pub["cipheroptions"] = Json::object();
  enc.annotations[std::string(kPubOptsAnnotation)] = base64_encode(as_bytes(pub.dump()));
  return enc;
}

Result<PrivateOptions> unwrap_layer_key(const Descriptor& layer, const DecryptConfig& config) {
  bool tried = false;
  std::string errors;
  auto note = [&](const std::string& e) { errors += (errors.empty() ? "" : "; ") + e; };
  // A key provider's refusal (e.g. the KBS's 403 with its reason) is what the user needs to see:
  // when nothing else opened the layer key, the first one is returned with its own code.
  std::optional<Error> provider_refusal;
  if (auto it = layer.annotations.find(std::string(kJweAnnotation));
      it != layer.annotations.end() && !config.jwe_keys.empty()) {
    tried = true;
    for (auto part : split_commas(it->second)) {
      auto text = base64_decode(part);
      if (!text) return make_error("bad_encryption_metadata", "jwe annotation is not base64");
      for (const auto& key : config.jwe_keys) {
        auto priv = jose::jwe_decrypt_text(to_string(*text), key);
        if (priv) return parse_private(*priv);
        note("jwe: " + priv.error().message);
      }
    }
  }
  if (auto it = layer.annotations.find(std::string(kKeyProviderAnnotation));
      it != layer.annotations.end() && config.key_provider) {
    tried = true;
    for (auto part : split_commas(it->second)) {
      auto raw = base64_decode(part);
      if (!raw) return make_error("bad_encryption_metadata", "key provider annotation not base64");
      auto packet = COFFER_TRY(parse_json(to_string(*raw), JsonLimits{.max_bytes = 64 * 1024}));
      if (!packet.is_object()) return make_error("bad_encryption_metadata", "packet not an object");
      std::string kid = packet.value("kid", "");
      if (packet.value("wrap_type", "") != "A256GCM") {
        note("key provider: unsupported wrap_type for " + kid);
        continue;
      }
      auto wrapped = COFFER_TRY(json_b64(packet, "wrapped_data", "key provider packet"));
      auto iv = COFFER_TRY(json_b64(packet, "iv", "key provider packet"));
      if (wrapped.size() < kGcmTagSize) {
        return make_error("bad_encryption_metadata", "wrapped_data is too short");
      }
      auto key = config.key_provider(kid);
      if (!key) {
        note("key provider (" + kid + "): " + key.error().to_string());
        if (!provider_refusal) {
          provider_refusal = Error{key.error().code, "the key provider refused the layer key " +
                                                         kid + ": " + key.error().message};
        }
        continue;
      }
      ByteView all(wrapped);
      auto priv = crypto::aes_gcm_decrypt(*key, iv, all.first(all.size() - kGcmTagSize),
                                          all.last(kGcmTagSize), {});
      if (priv) return parse_private(*priv);
      note("key provider (" + kid + "): the key does not open the wrapped layer key");
    }
  }
  if (!tried) {
    return make_error("missing_decryption_key",
                      "layer " + layer.digest +
                          " is encrypted for recipients none of the given keys or key providers "
                          "apply to: give the private key of one of its recipients or its KBS key");
  }
  if (provider_refusal) return std::unexpected(*provider_refusal);
  return make_error("decrypt_failed",
                    "cannot unwrap the key of layer " + layer.digest + ": " + errors);
}

LayerAuthenticator::LayerAuthenticator(PrivateOptions p, Bytes expected_hmac)
    : private_(std::move(p)), expected_hmac_(std::move(expected_hmac)) {
  reset();
}

LayerAuthenticator::~LayerAuthenticator() { crypto::cleanse(private_.symkey); }

Result<std::unique_ptr<LayerAuthenticator>> LayerAuthenticator::create(
    const Descriptor& layer, const DecryptConfig& config) {
  auto hmac = COFFER_TRY(parse_public_hmac(layer));
  auto p = COFFER_TRY(unwrap_layer_key(layer, config));
  return std::unique_ptr<LayerAuthenticator>(new LayerAuthenticator(std::move(p), std::move(hmac)));
}

void LayerAuthenticator::reset() {
  hmac_.emplace(crypto::DigestAlg::kSha256, private_.symkey);
  verified_ = false;
}

void LayerAuthenticator::update(ByteView ciphertext) {
  verified_ = false;
  hmac_->update(ciphertext);
}

Status LayerAuthenticator::verify() {
  Bytes mac = hmac_->finish();
  reset();  // a finished HMAC cannot be updated; verify() twice checks the empty stream
  if (!constant_time_equal(mac, expected_hmac_)) {
    return make_error("hmac_mismatch",
                      "the encrypted layer fails its HMAC check: it was tampered with or the key "
                      "is wrong; nothing of it was decrypted");
  }
  verified_ = true;
  return ok();
}

Result<std::unique_ptr<Reader>> LayerAuthenticator::decrypt(std::unique_ptr<Reader> ciphertext) {
  if (!verified_) {
    return make_error("hmac_not_verified", "refusing to decrypt a layer before its HMAC verified");
  }
  auto ctr = COFFER_TRY(crypto::AesCtr::create(private_.symkey, private_.nonce));
  return std::unique_ptr<Reader>(
      std::make_unique<DecryptingReader>(std::move(ciphertext), std::move(ctr), private_.digest));
}

Result<std::unique_ptr<Reader>> open_decrypted_layer(ImageSource& source, const Descriptor& layer,
                                                     const DecryptConfig& config) {
  auto auth = COFFER_TRY(LayerAuthenticator::create(layer, config));
  auto ciphertext = COFFER_TRY(source.blob_observed(layer, *auth));
  COFFER_TRY_STATUS(auth->verify());
  return auth->decrypt(std::move(ciphertext));
}

namespace {

// Borrows a reader (decrypt_layer's caller keeps ownership).
class BorrowedReader final : public Reader {
 public:
  explicit BorrowedReader(Reader& inner) : inner_(inner) {}
  Result<std::size_t> read(std::span<std::uint8_t> buffer) override { return inner_.read(buffer); }
  Status rewind() override { return inner_.rewind(); }
  [[nodiscard]] std::int64_t size() const override { return inner_.size(); }

 private:
  Reader& inner_;
};

Descriptor plain_descriptor(const Descriptor& layer, const std::string& digest,
                            std::uint64_t size) {
  Descriptor plain;
  plain.media_type = strip_encrypted(layer.media_type);
  plain.digest = digest;
  plain.size = static_cast<std::int64_t>(size);
  for (const auto& [k, v] : layer.annotations) {
    if (!k.starts_with(kEncPrefix)) plain.annotations[k] = v;
  }
  return plain;
}

// Authenticated plaintext into `out`.
Result<Descriptor> decrypt_verified(const Descriptor& layer, LayerAuthenticator& auth,
                                    std::unique_ptr<Reader> ciphertext, TempFile& out) {
  COFFER_TRY_STATUS(auth.verify());
  auto plain = COFFER_TRY(auth.decrypt(std::move(ciphertext)));
  auto size = COFFER_TRY(pump(*plain, [&](ByteView chunk) { return out.write(chunk); }));
  return plain_descriptor(layer, auth.private_options().digest, size);
}

}  // namespace

Result<Descriptor> decrypt_layer(const Descriptor& layer, Reader& ciphertext, TempFile& out,
                                 const DecryptConfig& config) {
  auto auth = COFFER_TRY(LayerAuthenticator::create(layer, config));
  COFFER_TRY(pump(ciphertext, [&](ByteView chunk) -> Status {
    auth->update(chunk);
    return ok();
  }));
  COFFER_TRY_STATUS(ciphertext.rewind());
  return decrypt_verified(layer, *auth, std::make_unique<BorrowedReader>(ciphertext), out);
}

CopyOptions encrypt_copy_options(EncryptConfig config, const std::filesystem::path& spool_dir) {
  CopyOptions o;
  o.action_name = "encrypt";
  o.wants_transform = [](const Descriptor& d) { return !is_encrypted(d); };
  o.transform = [config = std::move(config), spool_dir](
                    const Descriptor& layer, std::size_t,
                    LayerInput& input) -> Result<std::optional<TransformedLayer>> {
    auto source = COFFER_TRY(input.open());
    auto tmp = COFFER_TRY(TempFile::create(spool_dir.empty() ? input.spool_dir : spool_dir));
    auto d = COFFER_TRY(encrypt_layer(layer, *source, tmp, config));
    return std::optional<TransformedLayer>(TransformedLayer{std::move(d), std::move(tmp)});
  };
  return o;
}

CopyOptions decrypt_copy_options(DecryptConfig config, const std::filesystem::path& spool_dir) {
  CopyOptions o;
  o.action_name = "decrypt";
  o.wants_transform = [](const Descriptor& d) { return is_encrypted(d); };
  o.transform = [config = std::move(config), spool_dir](
                    const Descriptor& layer, std::size_t,
                    LayerInput& input) -> Result<std::optional<TransformedLayer>> {
    auto auth = COFFER_TRY(LayerAuthenticator::create(layer, config));
    // The HMAC is computed while the blob is downloaded or first read; decryption follows.
    auto ciphertext = COFFER_TRY(input.open_observed(*auth));
    auto tmp = COFFER_TRY(TempFile::create(spool_dir.empty() ? input.spool_dir : spool_dir));
    auto d = COFFER_TRY(decrypt_verified(layer, *auth, std::move(ciphertext), tmp));
    return std::optional<TransformedLayer>(TransformedLayer{std::move(d), std::move(tmp)});
  };
  return o;
}

}  // namespace coffer::oci::crypt
