// The Concat KDF of NIST SP 800-56A section 5.8.1 with SHA-256, as JWE ECDH-ES uses it
// (RFC 7518 section 4.6.2).
#pragma once

#include <cstddef>
#include <string_view>

#include "core/bytes.h"

namespace coffer::jose {

// Derives key_bits bits (a multiple of 8) from the shared secret z. OtherInfo is
// AlgorithmID || PartyUInfo || PartyVInfo (each a 32-bit big-endian length and the bytes) ||
// SuppPubInfo (key_bits as 32-bit big-endian); SuppPrivInfo is empty.
Bytes concat_kdf_sha256(ByteView z, std::size_t key_bits, std::string_view algorithm_id,
                        ByteView apu, ByteView apv);

}  // namespace coffer::jose
