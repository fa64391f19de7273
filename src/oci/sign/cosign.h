// Sigstore/cosign image signatures: a simple-signing payload signed with ECDSA P-256 (DER
// signature over SHA-256), stored as a manifest tagged "sha256-<hex>.sig" in the image's
// repository, one layer per signature (media type application/vnd.dev.cosign.simplesigning.v1+json,
// the signature base64 in the dev.cosignproject.cosign/signature annotation).
#pragma once

#include <string>
#include <vector>

#include "core/json.h"
#include "crypto/pkey.h"
#include "oci/image.h"

namespace coffer::oci::sign {

inline constexpr std::string_view kCosignSignatureAnnotation = "dev.cosignproject.cosign/signature";
inline constexpr std::string_view kSimpleSigningMediaType =
    "application/vnd.dev.cosign.simplesigning.v1+json";
inline constexpr std::string_view kCosignType = "cosign container image signature";
inline constexpr std::string_view kAtomicType = "atomic container signature";

struct SignaturePayload {
  std::string docker_reference;
  std::string manifest_digest;
  std::string type;
};

// {"critical":{"identity":{"docker-reference"},"image":{"docker-manifest-digest"},"type"},
//  "optional":null}
Bytes make_payload(const std::string& docker_reference, const std::string& manifest_digest,
                   std::string_view type = kCosignType);
// Parses strictly, as containers/image does: repeated member names are refused; the top level is
// exactly {critical, optional} and critical, critical.image and critical.identity have exactly
// their known members; optional is null or an object; the type must be `expected_type`.
// "bad_signature_payload" otherwise.
Result<SignaturePayload> parse_payload(ByteView data, std::string_view expected_type);

// "sha256:abc" -> "sha256-abc.sig".
std::string cosign_signature_tag(const std::string& manifest_digest);

struct CosignSignature {
  Bytes payload;
  Bytes signature;  // DER ECDSA
};

// The signatures attached to `manifest_digest` (empty when there are none).
Result<std::vector<CosignSignature>> fetch_cosign_signatures(ImageSource& source,
                                                             const std::string& manifest_digest);

// "signature_invalid" if `key` did not sign the payload.
Status verify_cosign_signature(const CosignSignature& sig, const crypto::Key& public_key);

// Signs and attaches (keeping signatures already there). `source` reads the same repository as
// `destination` writes.
Status sign_image(ImageSource& source, ImageDestination& destination,
                  const std::string& manifest_digest, const std::string& docker_reference,
                  const crypto::Key& private_key);

}  // namespace coffer::oci::sign
