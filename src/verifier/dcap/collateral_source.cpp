#include "verifier/dcap/collateral_source.h"

#include "core/file.h"
#include "verifier/dcap/errors.h"

namespace coffer::verifier::dcap {
namespace {

Result<std::string> read_text(const std::filesystem::path& p, std::string_view what) {
  auto t = read_text_file(p, 4 * 1024 * 1024);
  if (!t) return wrap_error(t.error(), "collateral " + std::string(what));
  return t;
}

}  // namespace

DirectoryCollateralSource::Files DirectoryCollateralSource::split_layout(
    const std::filesystem::path& dir) {
  return Files{dir / "tcb_info.json",    dir / "tcb_info_issuer_chain.pem",
               dir / "qe_identity.json", dir / "qe_identity_issuer_chain.pem",
               dir / "pck_crl.der",      dir / "pck_crl_issuer_chain.pem",
               dir / "root_ca_crl.der"};
}

DirectoryCollateralSource::Files DirectoryCollateralSource::go_tdx_guest_layout(
    const std::filesystem::path& dir) {
  return Files{dir / "sample_tcbInfo_response",
               dir / "tcb_info_issuer_chain.pem",
               dir / "sample_qeIdentity_response",
               {},
               dir / "pckcrl",
               dir / "pck_crl_issuer_chain.pem",
               dir / "rootcrl.der"};
}

Result<DirectoryCollateralSource> DirectoryCollateralSource::open(
    const std::filesystem::path& dir) {
  if (std::filesystem::exists(dir / "tcb_info.json")) {
    return DirectoryCollateralSource(split_layout(dir));
  }
  if (std::filesystem::exists(dir / "sample_tcbInfo_response")) {
    return DirectoryCollateralSource(go_tdx_guest_layout(dir));
  }
  return make_error(DcapError::kCollateralNotFound,
                    "no DCAP collateral (tcb_info.json) in " + dir.string());
}

Result<Collateral> DirectoryCollateralSource::fetch(const CollateralRequest&) const {
  Collateral c;
  c.tcb_info = COFFER_TRY(read_text(files_.tcb_info, "TCB info"));
  c.qe_identity = COFFER_TRY(read_text(files_.qe_identity, "QE identity"));
  if (!files_.tcb_info_issuer_chain.empty()) {
    c.tcb_info_issuer_chain = COFFER_TRY(read_text(files_.tcb_info_issuer_chain, "TCB chain"));
  }
  c.qe_identity_issuer_chain =
      files_.qe_identity_issuer_chain.empty()
          ? c.tcb_info_issuer_chain
          : COFFER_TRY(read_text(files_.qe_identity_issuer_chain, "QE identity chain"));
  if (!files_.pck_crl.empty()) {
    c.pck_crl = COFFER_TRY(read_file(files_.pck_crl, 4 * 1024 * 1024));
    c.pck_crl_issuer_chain = COFFER_TRY(read_text(files_.pck_crl_issuer_chain, "PCK CRL chain"));
  }
  if (!files_.root_ca_crl.empty()) {
    c.root_ca_crl = COFFER_TRY(read_file(files_.root_ca_crl, 4 * 1024 * 1024));
  }
  return c;
}

}  // namespace coffer::verifier::dcap
