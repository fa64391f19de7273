// GPG "simple signing" (atomic container signature) verification with gpgme, against keys
// imported into a throw-away keyring, and the lookaside layout containers/image writes:
//   <lookaside>/<repository path>@<alg>=<hex>/signature-<n>, n = 1, 2, ...
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/error.h"
#include "oci/reference.h"

namespace coffer::oci::sign {

struct GpgVerified {
  Bytes payload;
  std::string fingerprint;
};

// Verifies an OpenPGP signed message made by one of `trusted_keys` (armored or binary, any
// number of keys). "signature_invalid" for a bad or untrusted signature, "bad_key" for keys
// that do not import, "gpg_error" for gpgme failures.
Result<GpgVerified> verify_gpg_signature(ByteView signature,
                                         const std::vector<Bytes>& trusted_keys);

// The signatures stored for `manifest_digest` of `repository_path` (e.g. "library/busybox").
Result<std::vector<Bytes>> read_lookaside_signatures(const std::filesystem::path& lookaside,
                                                     const std::string& repository_path,
                                                     const std::string& manifest_digest);

}  // namespace coffer::oci::sign
