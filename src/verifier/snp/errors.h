// SEV-SNP endorsement (VEK chain, AMD CRL) and VEK/CRL source error codes (see
// verifier/error_code.h). The wire strings are stable.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "verifier/error_code.h"

namespace coffer::verifier::snp {

enum class SnpError : std::uint8_t {
  // 1. signing key
  kReportUnsigned,
  // 2. VEK and its sources
  kVekUnavailable,
  kVekFetchFailed,
  kVekInvalid,
  kVekTypeMismatch,
  kVendorChainInvalid,
  // 3. product
  kProductMismatch,
  kProductUnsupported,
  // 4-6. ARK, ASK/ASVK, VEK
  kArkSignatureInvalid,
  kArkUntrusted,
  kAskUnavailable,
  kAskSignatureInvalid,
  kVekSignatureInvalid,
  kVekExtensionsInvalid,
  // 7. validity
  kVekExpired,
  kVekNotYetValid,
  kAskExpired,
  kAskNotYetValid,
  kArkExpired,
  kArkNotYetValid,
  // 8. revocation and the CRL sources
  kCrlUnavailable,
  kCrlFetchFailed,
  kAmdCrlNotFound,
  kAmdCrlInvalid,
  kAmdCrlSignatureInvalid,
  kAmdCrlExpired,
  kAskRevoked,
  kAsvkRevoked,
  // 9-10. TCB, chip, signature
  kVekTcbMismatch,
  kChipIdMismatch,
  kReportSignatureInvalid,
  kCount
};

inline constexpr auto kSnpErrorNames = std::to_array<ErrorCodeName<SnpError>>({
    {SnpError::kReportUnsigned, "report_unsigned"},
    {SnpError::kVekUnavailable, "vek_unavailable"},
    {SnpError::kVekFetchFailed, "vek_fetch_failed"},
    {SnpError::kVekInvalid, "vek_invalid"},
    {SnpError::kVekTypeMismatch, "vek_type_mismatch"},
    {SnpError::kVendorChainInvalid, "vendor_chain_invalid"},
    {SnpError::kProductMismatch, "product_mismatch"},
    {SnpError::kProductUnsupported, "product_unsupported"},
    {SnpError::kArkSignatureInvalid, "ark_signature_invalid"},
    {SnpError::kArkUntrusted, "ark_untrusted"},
    {SnpError::kAskUnavailable, "ask_unavailable"},
    {SnpError::kAskSignatureInvalid, "ask_signature_invalid"},
    {SnpError::kVekSignatureInvalid, "vek_signature_invalid"},
    {SnpError::kVekExtensionsInvalid, "vek_extensions_invalid"},
    {SnpError::kVekExpired, "vek_expired"},
    {SnpError::kVekNotYetValid, "vek_not_yet_valid"},
    {SnpError::kAskExpired, "ask_expired"},
    {SnpError::kAskNotYetValid, "ask_not_yet_valid"},
    {SnpError::kArkExpired, "ark_expired"},
    {SnpError::kArkNotYetValid, "ark_not_yet_valid"},
    {SnpError::kCrlUnavailable, "crl_unavailable"},
    {SnpError::kCrlFetchFailed, "crl_fetch_failed"},
    {SnpError::kAmdCrlNotFound, "amd_crl_not_found"},
    {SnpError::kAmdCrlInvalid, "amd_crl_invalid"},
    {SnpError::kAmdCrlSignatureInvalid, "amd_crl_signature_invalid"},
    {SnpError::kAmdCrlExpired, "amd_crl_expired"},
    {SnpError::kAskRevoked, "ask_revoked"},
    {SnpError::kAsvkRevoked, "asvk_revoked"},
    {SnpError::kVekTcbMismatch, "vek_tcb_mismatch"},
    {SnpError::kChipIdMismatch, "chip_id_mismatch"},
    {SnpError::kReportSignatureInvalid, "report_signature_invalid"},
});
static_assert(error_table_is_ordered(kSnpErrorNames));

constexpr std::string_view code_string(SnpError e) {
  return kSnpErrorNames[static_cast<std::size_t>(e)].name;
}

}  // namespace coffer::verifier::snp
