// DCAP quote verification and collateral source error codes (see verifier/error_code.h). The
// verifier's steps fail with these; the wire strings are stable.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "verifier/error_code.h"

namespace coffer::verifier::dcap {

enum class DcapError : std::uint8_t {
  // 1. quote
  kQuoteUnsupportedQeVendor,
  // 2. PCK chain
  kPckChainInvalid,
  kUntrustedRoot,
  kRootSignatureInvalid,
  kIntermediateSignatureInvalid,
  kPckSignatureInvalid,
  kPckExpired,
  kPckNotYetValid,
  kIntermediateExpired,
  kIntermediateNotYetValid,
  kRootExpired,
  kRootNotYetValid,
  kPckExtensionsInvalid,
  // collateral sources
  kCollateralUnavailable,
  kCollateralFetchFailed,
  kCollateralNotFound,
  kBadEncoding,
  // 3. CRLs
  kRootCaCrlInvalid,
  kRootCaCrlSignatureInvalid,
  kRootCaCrlExpired,
  kIntermediateRevoked,
  kPckCrlInvalid,
  kPckCrlIssuerMismatch,
  kPckCrlSignatureInvalid,
  kPckCrlExpired,
  kPckRevoked,
  // 4-5. TCB info and QE identity
  kTcbInfoInvalid,
  kQeIdentityInvalid,
  kUnknownTcbStatus,
  kCollateralJsonInvalid,
  kTcbSigningChainInvalid,
  kTcbSigningCertExpired,
  kTcbSigningCertNotYetValid,
  kTcbSigningCertRevoked,
  kTcbInfoSignatureInvalid,
  kTcbInfoMismatch,
  kTcbInfoNotYetValid,
  kTcbInfoExpired,
  kQeIdentitySignatureInvalid,
  kQeIdentityMismatch,
  kQeIdentityNotYetValid,
  kQeIdentityExpired,
  // 6-8. QE report and quote signature
  kQeReportSignatureInvalid,
  kQeReportDataMismatch,
  kAttestationKeyInvalid,
  kQuoteSignatureInvalid,
  // 9-10. QE identity and TCB level
  kQeTcbLevelNotFound,
  kTcbLevelNotFound,
  kTdxModuleMismatch,
  kTdxModuleTcbLevelNotFound,
  kCount
};

inline constexpr auto kDcapErrorNames = std::to_array<ErrorCodeName<DcapError>>({
    {DcapError::kQuoteUnsupportedQeVendor, "quote_unsupported_qe_vendor"},
    {DcapError::kPckChainInvalid, "pck_chain_invalid"},
    {DcapError::kUntrustedRoot, "untrusted_root"},
    {DcapError::kRootSignatureInvalid, "root_signature_invalid"},
    {DcapError::kIntermediateSignatureInvalid, "intermediate_signature_invalid"},
    {DcapError::kPckSignatureInvalid, "pck_signature_invalid"},
    {DcapError::kPckExpired, "pck_expired"},
    {DcapError::kPckNotYetValid, "pck_not_yet_valid"},
    {DcapError::kIntermediateExpired, "intermediate_expired"},
    {DcapError::kIntermediateNotYetValid, "intermediate_not_yet_valid"},
    {DcapError::kRootExpired, "root_expired"},
    {DcapError::kRootNotYetValid, "root_not_yet_valid"},
    {DcapError::kPckExtensionsInvalid, "pck_extensions_invalid"},
    {DcapError::kCollateralUnavailable, "collateral_unavailable"},
    {DcapError::kCollateralFetchFailed, "collateral_fetch_failed"},
    {DcapError::kCollateralNotFound, "not_found"},
    {DcapError::kBadEncoding, "bad_encoding"},
    {DcapError::kRootCaCrlInvalid, "root_ca_crl_invalid"},
    {DcapError::kRootCaCrlSignatureInvalid, "root_ca_crl_signature_invalid"},
    {DcapError::kRootCaCrlExpired, "root_ca_crl_expired"},
    {DcapError::kIntermediateRevoked, "intermediate_revoked"},
    {DcapError::kPckCrlInvalid, "pck_crl_invalid"},
    {DcapError::kPckCrlIssuerMismatch, "pck_crl_issuer_mismatch"},
    {DcapError::kPckCrlSignatureInvalid, "pck_crl_signature_invalid"},
    {DcapError::kPckCrlExpired, "pck_crl_expired"},
    {DcapError::kPckRevoked, "pck_revoked"},
    {DcapError::kTcbInfoInvalid, "tcb_info_invalid"},
    {DcapError::kQeIdentityInvalid, "qe_identity_invalid"},
    {DcapError::kUnknownTcbStatus, "unknown_tcb_status"},
    {DcapError::kCollateralJsonInvalid, "bad_json"},
    {DcapError::kTcbSigningChainInvalid, "tcb_signing_chain_invalid"},
    {DcapError::kTcbSigningCertExpired, "tcb_signing_cert_expired"},
    {DcapError::kTcbSigningCertNotYetValid, "tcb_signing_cert_not_yet_valid"},
    {DcapError::kTcbSigningCertRevoked, "tcb_signing_cert_revoked"},
    {DcapError::kTcbInfoSignatureInvalid, "tcb_info_signature_invalid"},
    {DcapError::kTcbInfoMismatch, "tcb_info_mismatch"},
    {DcapError::kTcbInfoNotYetValid, "tcb_info_not_yet_valid"},
    {DcapError::kTcbInfoExpired, "tcb_info_expired"},
    {DcapError::kQeIdentitySignatureInvalid, "qe_identity_signature_invalid"},
    {DcapError::kQeIdentityMismatch, "qe_identity_mismatch"},
    {DcapError::kQeIdentityNotYetValid, "qe_identity_not_yet_valid"},
    {DcapError::kQeIdentityExpired, "qe_identity_expired"},
    {DcapError::kQeReportSignatureInvalid, "qe_report_signature_invalid"},
    {DcapError::kQeReportDataMismatch, "qe_report_data_mismatch"},
    {DcapError::kAttestationKeyInvalid, "attestation_key_invalid"},
    {DcapError::kQuoteSignatureInvalid, "quote_signature_invalid"},
    {DcapError::kQeTcbLevelNotFound, "qe_tcb_level_not_found"},
    {DcapError::kTcbLevelNotFound, "tcb_level_not_found"},
    {DcapError::kTdxModuleMismatch, "tdx_module_mismatch"},
    {DcapError::kTdxModuleTcbLevelNotFound, "tdx_module_tcb_level_not_found"},
});
static_assert(error_table_is_ordered(kDcapErrorNames));

constexpr std::string_view code_string(DcapError e) {
  return kDcapErrorNames[static_cast<std::size_t>(e)].name;
}

}  // namespace coffer::verifier::dcap
