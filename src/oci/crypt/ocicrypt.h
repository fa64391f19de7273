// ocicrypt layer encryption (containers/ocicrypt, as skopeo and image-rs use it):
//   layer cipher AES_256_CTR_HMAC_SHA256: fresh 32-byte key and 16-byte nonce per layer,
//   HMAC-SHA256 (keyed with the same key) over the ciphertext, checked over the whole layer
//   before anything of it is decrypted (LayerAuthenticator);
//   org.opencontainers.image.enc.pubopts = base64({"cipher","hmac","cipheroptions":{}})
//   org.opencontainers.image.enc.keys.<scheme> = comma-separated base64 blobs, each wrapping the
//   private options {"symkey","digest","cipheroptions":{"nonce"}} for recipients:
//     jwe: a JWE (JSON serialization) to RSA / EC public keys;
//     provider.attestation-agent: CoCo's KBS key provider packet, AES-256-GCM under the 32-byte
//     key stored in the KBS at `kid`.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/error.h"
#include "crypto/digest.h"
#include "crypto/pkey.h"
#include "oci/copy.h"
#include "oci/io.h"
#include "oci/manifest.h"

namespace coffer::oci::crypt {

inline constexpr std::string_view kPubOptsAnnotation = "org.opencontainers.image.enc.pubopts";
inline constexpr std::string_view kJweAnnotation = "org.opencontainers.image.enc.keys.jwe";
inline constexpr std::string_view kKeyProviderAnnotation =
    "org.opencontainers.image.enc.keys.provider.attestation-agent";
inline constexpr std::string_view kCipher = "AES_256_CTR_HMAC_SHA256";

// The KBS key provider: returns the 32-byte key stored at `kid` ("kbs:///repo/type/tag").
// The enclave plugs its attested KBS client in here.
using KeyProvider = std::function<Result<Bytes>(const std::string& kid)>;

struct KbsRecipient {
  std::string kid;  // kbs:///repo/type/tag
  Bytes key;        // 32 bytes
};

struct EncryptConfig {
  std::vector<crypto::Key> jwe_recipients;  // public keys (RSA, EC)
  std::vector<KbsRecipient> kbs_recipients;
};

struct DecryptConfig {
  std::vector<crypto::Key> jwe_keys;  // private keys
  KeyProvider key_provider;           // for provider.attestation-agent
};

struct PrivateOptions {
  Bytes symkey;
  Bytes nonce;
  std::string digest;  // of the plaintext layer blob
};

bool is_encrypted(const Descriptor& layer);

// Encrypts a plaintext layer stream into `out`; returns the encrypted layer's descriptor
// (media type +encrypted, ocicrypt annotations). "no_recipients" without any recipient.
Result<Descriptor> encrypt_layer(const Descriptor& layer, Reader& plaintext, TempFile& out,
                                 const EncryptConfig& config);

// Recovers the private options from the layer's annotations: "missing_decryption_key" when no
// given key or provider applies, "decrypt_failed" when none of them opens a wrapped key.
Result<PrivateOptions> unwrap_layer_key(const Descriptor& layer, const DecryptConfig& config);

// MAC first, then decrypt. AES-CTR is malleable: whoever can write the ciphertext can flip
// chosen plaintext bits (a tar header's name, say) without the key, so no decrypted byte may
// reach a decompressor, a tar reader or a file before the HMAC over the whole ciphertext has
// verified. A LayerAuthenticator observes the ciphertext while it is downloaded or spooled (it
// is read there anyway), verify() checks the HMAC, and only then decrypt() hands out plaintext.
class LayerAuthenticator final : public StreamObserver {
 public:
  // Unwraps the layer key (errors of unwrap_layer_key) and reads the expected HMAC.
  static Result<std::unique_ptr<LayerAuthenticator>> create(const Descriptor& layer,
                                                            const DecryptConfig& config);
  ~LayerAuthenticator() override;
  LayerAuthenticator(const LayerAuthenticator&) = delete;
  LayerAuthenticator& operator=(const LayerAuthenticator&) = delete;

  void reset() override;
  void update(ByteView ciphertext) override;
  // "hmac_mismatch": tampered ciphertext or a key that is not this layer's.
  Status verify();
  // After verify() passed: the plaintext of `ciphertext`, which must yield exactly the bytes
  // observed. Its final read fails with "digest_mismatch" if the plaintext differs from the
  // private options' digest. "hmac_not_verified" if verify() did not pass.
  Result<std::unique_ptr<Reader>> decrypt(std::unique_ptr<Reader> ciphertext);

  [[nodiscard]] const PrivateOptions& private_options() const { return private_; }

 private:
  LayerAuthenticator(PrivateOptions p, Bytes expected_hmac);
  PrivateOptions private_;
  Bytes expected_hmac_;
  std::optional<crypto::HmacStream> hmac_;
  bool verified_ = false;
};

// The decrypted stream of an encrypted layer of `source`: the blob is read to its end (digest
// and size verified, the HMAC computed as it is downloaded or spooled) and authenticated before
// this returns; "hmac_mismatch" then, with nothing decrypted.
Result<std::unique_ptr<Reader>> open_decrypted_layer(ImageSource& source, const Descriptor& layer,
                                                     const DecryptConfig& config);

// Decrypts into `out` and returns the plaintext layer's descriptor (media type without
// +encrypted, ocicrypt annotations removed). `ciphertext` is read twice: once to authenticate
// it, then (rewound) to decrypt it.
Result<Descriptor> decrypt_layer(const Descriptor& layer, Reader& ciphertext, TempFile& out,
                                 const DecryptConfig& config);

// Copy transforms: encrypt every plaintext layer / decrypt every encrypted one, spooling into
// `spool_dir` (empty: the copy's spool directory, see CopyOptions::spool_dir).
CopyOptions encrypt_copy_options(EncryptConfig config, const std::filesystem::path& spool_dir = {});
CopyOptions decrypt_copy_options(DecryptConfig config, const std::filesystem::path& spool_dir = {});

// The KBS key provider annotation packet for one recipient (exposed for tests and tools).
Result<std::string> wrap_for_kbs(ByteView private_options, const KbsRecipient& recipient);

}  // namespace coffer::oci::crypt
