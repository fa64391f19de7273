// The simulated TEE's vendor PKIs and collateral, generated locally (`coffer sim init --dir D`).
//
// Intel-like: sim root CA -> sim PCK Platform CA -> PCK leaf (SGX extensions OID
// 1.2.840.113741.1.13.1 as real PCK certificates carry them: PPID, TCB with CPUSVN components
// and PCESVN, PCE ID, FMSPC, SGX type, platform instance ID) whose key signs the QE report; the
// QE report binds the QE attestation key through REPORTDATA; a TCB signing certificate signs TCB
// info (TDX, v3) and QE identity (TD_QE, v2) exactly as Intel signs them; PCK and root CRLs.
// The collateral directory has the split layout DirectoryCollateralSource reads.
//
// AMD-like: sim ARK -> sim ASK (RSA, RSASSA-PSS SHA-384) -> VCEK (P-384) with the TCB SPL
// extensions and hwID = the simulated CHIP_ID.
//
// Layout of the directory (private keys mode 0600):
//   sim.json                       platform parameters (FMSPC, SVNs, chip ID, product, ...)
//   intel/root_ca.pem, root_ca.key, pck_platform_ca.pem/.key, pck.pem/.key,
//   intel/tcb_signing.pem/.key, qe_attestation.key
//   intel/collateral/{tcb_info.json, tcb_info_issuer_chain.pem, qe_identity.json,
//                     qe_identity_issuer_chain.pem, pck_crl.der, pck_crl_issuer_chain.pem,
//                     root_ca_crl.der}                       (TDX: TCB info "TDX", QE "TD_QE")
//   intel/collateral_sgx/{the same files}                      (SGX: TCB info "SGX", QE "QE")
//   platform_secret                 32 random bytes (0600): the simulated CPU's fused key from
//                                    which SGX report and sealing keys derive (sgx_local.h)
//   amd/ark.pem, ark.key, ask.pem, ask.key, vcek.key, ask_ark.pem (ASK then ARK),
//   amd/vcek/vcek.der               (a directory DirectoryVekSource reads)
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "core/bytes.h"
#include "core/clock.h"
#include "core/error.h"
#include "crypto/pkey.h"
#include "crypto/x509.h"
#include "evidence/sgx/report.h"
#include "evidence/snp/report.h"

namespace coffer::evidence::sim {

// The simulated platform: what a real machine's firmware and microcode would report.
struct SimPlatform {
  Bytes fmspc = {0x00, 0x90, 0x6e, 0xd5, 0x00, 0x00};  // not a real Intel FMSPC
  Bytes pce_id = {0x00, 0x00};
  std::array<std::uint8_t, 16> cpu_svn = {0x05, 0x05, 0x02, 0x02, 0x03, 0x01, 0x00, 0x05};
  std::uint16_t pce_svn = 13;
  // TEE_TCB_SVN: byte 0 TDX module SVN, byte 1 its major version ("TDX_01").
  std::array<std::uint8_t, 16> tee_tcb_svn = {0x05, 0x01, 0x02};
  Fixed<48> mr_seam{};
  std::uint16_t qe_isv_svn = 4;
  Fixed<32> qe_mr_signer{};
  Fixed<32> qe_mr_enclave{};
  // SNP
  snp::Product product = snp::Product::kGenoa;
  snp::TcbVersion snp_tcb = {.fmc = 0, .bootloader = 9, .tee = 0, .snp = 21, .microcode = 84};
  Fixed<64> chip_id{};
};

struct SimPkiOptions {
  TimePoint now = std::chrono::system_clock::now();
  std::chrono::hours cert_lifetime{24 * 365 * 10};
  std::chrono::hours collateral_lifetime{24 * 365};
  int rsa_bits = 4096;  // ARK/ASK (tests use 2048 for speed)
};

struct SimPki {
  SimPlatform platform;
  // Intel-like
  crypto::Key root_key, platform_ca_key, pck_key, tcb_signing_key, attestation_key;
  crypto::Certificate root_ca, platform_ca, pck, tcb_signing;
  std::string tcb_info_json;     // {"tcbInfo":{...},"signature":"..."}
  std::string qe_identity_json;  // {"enclaveIdentity":{...},"signature":"..."}
  // SGX collateral (TCB info id "SGX" v3, QE identity id "QE" v2). Empty when loaded from a
  // directory written before sim-sgx existed.
  std::string sgx_tcb_info_json, sgx_qe_identity_json;
  // The simulated platform's secret (32 bytes; empty when loaded from an older directory).
  Bytes platform_secret;
  Bytes pck_crl, root_ca_crl;  // DER
  // AMD-like
  crypto::Key ark_key, ask_key, vcek_key;
  crypto::Certificate ark, ask, vcek;
  // AMD-like CRL of the product (DER, by the ARK, RSASSA-PSS SHA-384, nothing revoked), as KDS
  // serves /vcek/v1/<product>/crl; written as amd/crl/<product>.crl for the SNP verifier's
  // crl_dir. Empty when loaded from a directory written before it existed.
  Bytes amd_crl;

  // PEM chains as DCAP quotes and collateral carry them.
  [[nodiscard]] std::string pck_chain_pem() const;          // PCK, Platform CA, root
  [[nodiscard]] std::string tcb_signing_chain_pem() const;  // TCB signing, root
  [[nodiscard]] std::string pck_crl_chain_pem() const;      // Platform CA, root
  [[nodiscard]] std::string amd_vendor_chain_pem() const;   // ASK, ARK
};

// Generates every key, certificate, CRL and collateral document. "sim_pki_failed" on error.
Result<SimPki> generate_sim_pki(const SimPkiOptions& options = {},
                                const SimPlatform& platform = {});

// Writes the layout above; "already_exists" when `dir` already holds a sim PKI and !force.
Status write_sim_pki(const SimPki& pki, const std::filesystem::path& dir, bool force = false);

// Reads a directory written by write_sim_pki ("not_found", "sim_pki_invalid").
Result<SimPki> load_sim_pki(const std::filesystem::path& dir);

// The signed QE report for the QE attestation key (QE REPORTDATA[0:32] =
// SHA-256(attestation key || QE authentication data)), signed by the PCK key. `sgx`: the SGX QE
// (ISVPRODID 1, as Intel's "QE" identity) instead of the TD QE (ISVPRODID 2).
struct SignedQeReport {
  sgx::EnclaveReport report;
  Fixed<64> signature{};
  Bytes auth_data;
};
Result<SignedQeReport> make_qe_report(const SimPki& pki, bool sgx = false);

}  // namespace coffer::evidence::sim
