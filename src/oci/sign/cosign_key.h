// Cosign's key files: an ECDSA P-256 private key (PKCS#8 DER) encrypted under a password with
// scrypt (N=32768, r=8, p=1, 32-byte salt) and NaCl secretbox, in JSON
//   {"kdf":{"name":"scrypt","params":{"N","r","p"},"salt"},"cipher":{"name":"nacl/secretbox",
//    "nonce"},"ciphertext"}
// armored as "ENCRYPTED SIGSTORE PRIVATE KEY" (older cosign: "ENCRYPTED COSIGN PRIVATE KEY");
// the public key is a PKIX "PUBLIC KEY" PEM. The same files work with cosign and skopeo.
#pragma once

#include <string>
#include <string_view>

#include "core/error.h"
#include "crypto/pkey.h"

namespace coffer::oci::sign {

struct CosignKeyPair {
  std::string private_pem;  // encrypted
  std::string public_pem;
};

Result<CosignKeyPair> generate_cosign_key_pair(std::string_view password);
// Encrypts an existing private key in cosign's format.
Result<std::string> encrypt_cosign_private_key(const crypto::Key& key, std::string_view password);
// "bad_key" (format), "wrong_password" (secretbox does not open).
Result<crypto::Key> load_cosign_private_key(std::string_view pem, std::string_view password);

}  // namespace coffer::oci::sign
