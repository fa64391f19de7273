// The guest's configuration from CoCo init-data (docs/init-data.md): the TOML document the host
// hands to the enclave, whose digest the TEE binds (TDX MRCONFIGID, SNP HOST_DATA, the simulated
// TEE's equivalents). Everything that matters inside the enclave comes from here, and only after
// check_init_data_binding() has confirmed that the TEE carries exactly this document's digest.
//
//   version = "0.1.0"
//   algorithm = "sha384"
//   [data]
//   "aa.toml" = '''[token_configs.kbs]\nurl = "https://kbs:8080"'''
//   "cdh.toml" = '''[kbc]\nname = "cc_kbc"\n[image]\nimage_security_policy_uri = "kbs:///..."'''
//   "policy.rego" = '''package agent_policy ...'''
//
// aa.toml and cdh.toml use CoCo guest-components' key names; unknown keys are ignored as CoCo
// does; a known key with the wrong type is "bad_init_data" naming the key.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "core/error.h"
#include "crypto/digest.h"
#include "guest/aa/attester.h"

namespace coffer::guest {

// Upper bound on an init-data document (CoCo's are a few KiB: two small TOML files and a policy).
inline constexpr std::size_t kMaxInitDataBytes = 512 * 1024;

struct GuestConfig {
  // Where it came from: the init-data text (kept verbatim: its digest is what the TEE binds), or
  // nothing (built-in defaults; then `init_data_toml` is empty and from_init_data false).
  bool from_init_data = false;
  std::string init_data_toml;
  crypto::DigestAlg init_data_algorithm = crypto::DigestAlg::kSha384;
  Bytes init_data_digest;  // with the init-data's algorithm

  // aa.toml
  std::string kbs_url;       // token_configs.kbs.url ("" : no KBS configured)
  std::string kbs_cert_pem;  // token_configs.kbs.cert
  // cdh.toml (kbc url/cert fall back to aa's when absent, and must agree when both present)
  std::string image_security_policy_uri;  // [image] image_security_policy_uri, kbs:///...
  std::string image_security_policy;      // [image] image_security_policy (inline policy.json)
  std::string registry_credentials_uri;   // [image] authenticated_registry_credentials_uri
  std::vector<std::string> sealed_secret_keys;   // [sealed_secret] verification_keys (coffer)
  std::vector<std::string> insecure_registries;  // [image] insecure_registries (coffer)
  bool require_encrypted_layers = false;         // [image] require_encrypted_layers (coffer)
  // "policy.rego": the agent policy ("" : the built-in default)
  std::string agent_policy_rego;
};

// Parses init-data. "bad_init_data" with the offending key: not TOML, too large or too deep,
// an unknown algorithm, a known key of the wrong type, a URI that is not kbs:///repo/type/tag,
// a KBC other than cc_kbc, kbc url/cert disagreeing with aa's.
Result<GuestConfig> parse_guest_config(std::string_view init_data_toml);

// Checks that the TEE binds exactly this init-data's digest (TDX MRCONFIGID, SNP HOST_DATA, the
// sim's equivalents). "init_data_mismatch" otherwise. Without init-data: nothing to check. A TEE
// without such a register (sample, which attests nothing) passes: its evidence is never trusted.
Status check_init_data_binding(const GuestConfig& config, aa::Attester& attester);

}  // namespace coffer::guest
