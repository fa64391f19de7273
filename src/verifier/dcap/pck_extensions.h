// The Intel SGX extensions of a PCK certificate (OID 1.2.840.113741.1.13.1), per the Intel SGX
// PCK Certificate and CRL Profile, section 1.5 "SGX Extensions".
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "core/bytes.h"
#include "core/error.h"
#include "crypto/x509.h"

namespace coffer::verifier::dcap {

inline constexpr std::string_view kSgxExtensionsOid = "1.2.840.113741.1.13.1";

struct PckExtensions {
  Bytes ppid;                                 // .1, 16 bytes
  std::array<std::uint8_t, 16> cpu_svn{};     // .2.18 (and .2.1 - .2.16 component-wise)
  std::array<std::uint8_t, 16> components{};  // .2.1 - .2.16 SGX TCB component SVNs
  std::uint16_t pce_svn = 0;                  // .2.17
  Bytes pce_id;                               // .3, 2 bytes
  Bytes fmspc;                                // .4, 6 bytes
  std::uint64_t sgx_type = 0;                 // .5: 0 Standard, 1 Scalable, 2 Scalable+Integrity
  std::optional<Bytes> platform_instance_id;  // .6, Platform CA certificates only
};

// "pck_extensions_invalid" when the extension is missing, malformed, or lacks a required field.
Result<PckExtensions> parse_pck_extensions(const crypto::Certificate& pck);

}  // namespace coffer::verifier::dcap
