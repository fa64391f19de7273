// ocicrypt layer encryption (containers/ocicrypt, as skopeo and image-rs use it):
//   layer cipher AES_256_CTR_HMAC_SHA256: fresh 32-byte key and 16-byte nonce per layer,
//   HMAC-SHA256 (keyed with the same key) over the ciphertext, checked before anything decrypted
//   is trusted;
//   org.opencontainers.image.enc.pubopts = base64({"cipher","hmac","cipheroptions":{}})
//   org.opencontainers.image.enc.keys.<scheme> = comma-separated base64 blobs, each wrapping the
//   private options {"symkey","digest","cipheroptions":{"nonce"}} for recipients:
//     jwe: a JWE (JSON serialization) to RSA / EC public keys;
//     provider.attestation-agent: CoCo's KBS key provider packet, AES-256-GCM under the 32-byte
//     key stored in the KBS at `kid`.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/error.h"
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

// A stream of the decrypted layer. Its final read fails with "hmac_mismatch" (tampered
// ciphertext or wrong key) or "digest_mismatch" (plaintext differs from the private options'
// digest) instead of returning 0: consumers keep what they produce provisional until then.
Result<std::unique_ptr<Reader>> decrypt_reader(const Descriptor& layer, Reader& ciphertext,
                                               const DecryptConfig& config);

// Decrypts into `out` and returns the plaintext layer's descriptor (media type without
// +encrypted, ocicrypt annotations removed).
Result<Descriptor> decrypt_layer(const Descriptor& layer, Reader& ciphertext, TempFile& out,
                                 const DecryptConfig& config);

// Copy transforms: encrypt every plaintext layer / decrypt every encrypted one, spooling into
// `spool_dir`.
CopyOptions encrypt_copy_options(EncryptConfig config, std::filesystem::path spool_dir);
CopyOptions decrypt_copy_options(DecryptConfig config, std::filesystem::path spool_dir);

// The KBS key provider annotation packet for one recipient (exposed for tests and tools).
Result<std::string> wrap_for_kbs(ByteView private_options, const KbsRecipient& recipient);

}  // namespace coffer::oci::crypt
