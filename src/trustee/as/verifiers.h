// Builds the hardware TEE verifiers (tdx, sgx, snp) from the trustee configuration and registers
// them with the attestation service.
//
//   [attestation_service.verifier.tdx]          # same keys for .sgx
//   enabled = true                              # default true
//   trusted_roots = ["root.pem"]                # default: the embedded Intel SGX Root CA
//   collateral_dir = "/var/lib/coffer/dcap"     # offline collateral (tcb_info.json, ...)
//   pccs_url = "https://pccs:8081"              # or Intel PCS / a PCCS (v4 API)
//   cache_dir = "/var/cache/coffer/pcs"         # on-disk cache of PCS/PCCS collateral
//   allow_expired_collateral = false            # accept past nextUpdate, flagged in claims
//   allow_chain_only = false                    # without collateral: PCK chain only
//
//   [attestation_service.verifier.snp]
//   enabled = true
//   trusted_roots = ["milan_ask_ark.pem"]       # default: AMD's embedded ARK/ASK/ASVK chains
//   vek_dir = "/var/lib/coffer/vcek"            # offline VCEKs/VLEKs
//   kds_url = "https://kdsintf.amd.com"         # AMD KDS for VCEKs
//   cache_dir = "/var/cache/coffer/kds"         # on-disk cache of KDS answers
//   crl_dir = "/var/lib/coffer/amd-crl"         # AMD CRLs <product>.crl; default: KDS if set
//   allow_unchecked_revocation = false          # let policies affirm without a checked CRL
//
// With neither collateral_dir nor pccs_url, DCAP evidence is refused ("collateral_source_missing",
// naming the settings) unless allow_chain_only = true: then quotes are verified up to the PCK
// chain only (claims verification_mode "chain_only", crls_checked false, tcb_status "Unknown"),
// which the default policy never affirms. SNP claims carry crl_checked (AMD's CRL checked) and
// unchecked_revocation_allowed (the setting); the default policy affirms SNP hardware only when
// one of them is true. Roots other than the vendors' are trusted only when
// listed, and the claims then say tee_root = "simulated". Relative paths resolve against
// `base_dir`.
#pragma once

#include <filesystem>
#include <memory>
#include <vector>

#include "core/clock.h"
#include "core/config.h"
#include "core/error.h"
#include "trustee/as/attestation_service.h"
#include "verifier/verifier.h"

namespace coffer::trustee::as {

// The verifiers the section enables ("bad_config" on unknown keys, unreadable or invalid roots).
Result<std::vector<std::unique_ptr<verifier::Verifier>>> build_tee_verifiers(
    const coffer::config::Section& verifier_section, std::shared_ptr<const Clock> clock,
    const std::filesystem::path& base_dir = {});

// build_tee_verifiers() + AttestationService::register_verifier() for each.
Status register_tee_verifiers(AttestationService& as,
                              const coffer::config::Section& verifier_section,
                              std::shared_ptr<const Clock> clock,
                              const std::filesystem::path& base_dir = {});

}  // namespace coffer::trustee::as
