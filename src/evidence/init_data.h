// CoCo init-data: the TOML document a host hands to a confidential guest, bound into the TEE
// evidence by its digest (TDX MRCONFIGID, SNP HOSTDATA, SGX CONFIGID). The relying party hashes
// the text exactly as sent and gives its [data] table to attestation policies as claims.
//
//   version = "0.1.0"
//   algorithm = "sha384"          # sha256, sha384 (default) or sha512
//   [data]
//   "policy.rego" = '''...'''
#pragma once

#include <string_view>

#include "core/bytes.h"
#include "core/error.h"
#include "core/json.h"
#include "crypto/digest.h"

namespace coffer::evidence {

struct InitData {
  crypto::DigestAlg algorithm = crypto::DigestAlg::kSha384;
  Bytes digest;  // of the text as given
  Json claims;   // the [data] table as JSON; {} without one
};

// Parses untrusted init-data. "bad_init_data": not TOML, nested deeper than
// config::kMaxNesting levels (refused before any tree is built), an unknown algorithm.
Result<InitData> parse_init_data(std::string_view toml_text);

}  // namespace coffer::evidence
