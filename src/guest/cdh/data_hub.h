// The confidential data hub (CDH): KBS resources, the ocicrypt key provider and CoCo sealed
// secrets, inside the enclave. Also includes the guest configuration (guest/config.h) and the
// attestation agent facade (guest/aa/agent.h), which the contract first declared here.
//
// Sealed secrets (CoCo guest-components confidential-data-hub/docs/SEALED_SECRET.md):
//   "sealed." + JWS compact serialization (header.payload.signature)
//   payload: {"version":"0.1.0","type":"vault","provider":"kbs","name":"kbs:///repo/type/tag",
//             "provider_settings":{},"annotations":{}}
// CoCo does not verify the signature yet (it accepts dummy header and signature); coffer always
// does: the protected header's "kid" must be one of the kbs:/// URIs listed in init-data
// (cdh.toml [sealed_secret] verification_keys); the JWK stored at that KBS resource verifies the
// signature (ES256, ES384, PS256, RS256 or EdDSA, as the key's type allows). Only the "vault"
// type with the "kbs" provider is supported ("envelope" secrets need a KMS).
#pragma once

#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/error.h"
#include "guest/aa/agent.h"
#include "guest/config.h"

namespace coffer::guest {

// Upper bound on a sealed secret value (environment variables and mounted files).
inline constexpr std::size_t kMaxSealedSecretBytes = 64 * 1024;

class DataHub {
 public:
  DataHub(AttestationAgent& aa, const GuestConfig& config);

  // kbs:///repo/type/tag (or repo/type/tag) through the AA's attested KBS session.
  Result<Bytes> get_resource(std::string_view uri);
  // ocicrypt provider.attestation-agent (oci::crypt::DecryptConfig::key_provider): the 32-byte
  // key at kid, which must be a kbs:/// URI. "bad_key" when the resource is not 32 bytes.
  Result<Bytes> unwrap_key(const std::string& kid);
  // Unseals "sealed.<JWS>". Codes: "bad_sealed_secret" (malformed, truncated, too large, not
  // vault/kbs), "sealed_secret_unknown_key" (no kid, or a kid not in verification_keys),
  // "sealed_secret_signature" (the signature does not verify, or an algorithm the key does not
  // allow), and the KBS codes of fetching the key or the secret.
  Result<Bytes> unseal(std::string_view sealed);
  // True for a value that is a sealed secret ("sealed." prefix).
  static bool is_sealed(std::string_view value);

 private:
  AttestationAgent& aa_;
  GuestConfig config_;
};

}  // namespace coffer::guest
