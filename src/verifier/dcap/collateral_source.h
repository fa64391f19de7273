// Where DCAP collateral comes from: one interface, an offline directory implementation here, the
// Intel PCS/PCCS HTTP implementation in pcs_source.h.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "core/bytes.h"
#include "core/error.h"

namespace coffer::verifier::dcap {

enum class TeeKind { kSgx, kTdx };

// The raw collateral documents, exactly as Intel PCS serves them.
struct Collateral {
  std::string tcb_info;               // {"tcbInfo": {...}, "signature": "..."}
  std::string tcb_info_issuer_chain;  // PEM: Intel SGX TCB Signing, Intel SGX Root CA
  std::string qe_identity;            // {"enclaveIdentity": {...}, "signature": "..."}
  std::string qe_identity_issuer_chain;
  std::optional<Bytes> pck_crl;      // DER, PEM or hex of DER
  std::string pck_crl_issuer_chain;  // PEM: PCK Platform/Processor CA, Root CA
  std::optional<Bytes> root_ca_crl;  // DER, PEM or hex of DER
};

struct CollateralRequest {
  TeeKind tee = TeeKind::kTdx;
  Bytes fmspc;         // 6 bytes, from the PCK certificate
  std::string pck_ca;  // "platform" or "processor", from the PCK issuer's CN
};

class CollateralSource {
 public:
  virtual ~CollateralSource() = default;
  virtual Result<Collateral> fetch(const CollateralRequest& request) const = 0;
};

// Offline collateral from files. An empty path means "not provided": the QE identity issuer chain
// falls back to the TCB info issuer chain (both are signed by the Intel SGX TCB Signing key),
// missing CRLs are reported as not checked.
class DirectoryCollateralSource final : public CollateralSource {
 public:
  struct Files {
    std::filesystem::path tcb_info, tcb_info_issuer_chain;
    std::filesystem::path qe_identity, qe_identity_issuer_chain;
    std::filesystem::path pck_crl, pck_crl_issuer_chain;
    std::filesystem::path root_ca_crl;
  };
  // tcb_info.json, tcb_info_issuer_chain.pem, qe_identity.json, qe_identity_issuer_chain.pem,
  // pck_crl.der, pck_crl_issuer_chain.pem, root_ca_crl.der.
  static Files split_layout(const std::filesystem::path& dir);
  // go-tdx-guest test data: sample_tcbInfo_response, sample_qeIdentity_response, pckcrl,
  // rootcrl.der, tcb_info_issuer_chain.pem, pck_crl_issuer_chain.pem.
  static Files go_tdx_guest_layout(const std::filesystem::path& dir);
  // Picks whichever of the two layouts the directory holds ("not_found" if neither).
  static Result<DirectoryCollateralSource> open(const std::filesystem::path& dir);

  explicit DirectoryCollateralSource(Files files) : files_(std::move(files)) {}
  Result<Collateral> fetch(const CollateralRequest& request) const override;

 private:
  Files files_;
};

}  // namespace coffer::verifier::dcap
