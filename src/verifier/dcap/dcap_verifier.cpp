#include "verifier/dcap/dcap_verifier.h"

#include <algorithm>

#include "crypto/digest.h"
#include "verifier/dcap/intel_root.h"

namespace coffer::verifier::dcap {
namespace {

using crypto::Certificate;
using crypto::Key;
namespace sgx = evidence::sgx;

const crypto::SignatureParams kP256Raw{crypto::DigestAlg::kSha256, crypto::SignatureFormat::kRaw};

// cert_expired / cert_not_yet_valid -> <prefix>_expired / <prefix>_not_yet_valid.
Status check_validity(const Certificate& cert, TimePoint now, const std::string& prefix) {
  auto st = cert.check_validity(now);
  if (st) return st;
  std::string suffix = st.error().code == "cert_expired" ? "_expired" : "_not_yet_valid";
  return make_error(prefix + suffix, cert.subject_common_name() + ": " + st.error().message);
}

Status check_signed_by(const Certificate& cert, const Certificate& issuer,
                       const std::string& code) {
  auto key = issuer.public_key();
  if (!key) return make_error(code, "issuer key unusable: " + key.error().message);
  if (!cert.verify_signed_by(*key)) {
    return make_error(
        code, cert.subject_common_name() + " is not signed by " + issuer.subject_common_name());
  }
  return ok();
}

// A certificate stands for a trust anchor when it has the anchor's subject and public key.
bool is_anchor(const Certificate& cert, const Certificate& anchor) {
  if (cert.subject() != anchor.subject()) return false;
  auto a = anchor.public_key();
  auto c = cert.public_key();
  return a && c && a->same_public(*c);
}

// Collateral past its nextUpdate fails unless the options accept it (then it is flagged).
Status check_fresh(TimePoint next_update, TimePoint now, bool allow, bool& expired,
                   const std::string& code, const std::string& what) {
  if (now <= next_update) return ok();
  if (allow) {
    expired = true;
    return ok();
  }
  return make_error(
      code, what + " expired at " + format_rfc3339(next_update) + "; fetch current collateral");
}

}  // namespace

DcapVerifier::DcapVerifier(std::vector<Certificate> trust_anchors,
                           std::shared_ptr<const CollateralSource> source, DcapOptions options)
    : anchors_(std::move(trust_anchors)), source_(std::move(source)), options_(options) {}

DcapVerifier DcapVerifier::with_intel_root(std::shared_ptr<const CollateralSource> source,
                                           DcapOptions options) {
  auto root = Certificate::from_pem(kIntelSgxRootCaPem);
  if (!root) std::abort();  // the embedded constant is a broken invariant, not input
  return DcapVerifier({*root}, std::move(source), options);
}

Result<DcapResult> DcapVerifier::verify_tdx(const evidence::tdx::Quote& quote,
                                            TimePoint now) const {
  QuoteView v;
  v.tee = TeeKind::kTdx;
  v.signed_region = evidence::tdx::serialize_signed_region(quote);
  v.header = &quote.header;
  v.signature = &quote.signature_data;
  TdxTcbInput tdx;
  tdx.tee_tcb_svn = quote.body.tee_tcb_svn;
  tdx.mrsigner_seam = quote.body.mrsigner_seam;
  tdx.seam_attributes = quote.body.seam_attributes;
  v.tdx = tdx;
  return verify(v, nullptr, now);
}

Result<DcapResult> DcapVerifier::verify_sgx(const evidence::sgx::Quote& quote,
                                            TimePoint now) const {
  QuoteView v;
  v.tee = TeeKind::kSgx;
  evidence::ByteWriter w;
  sgx::write_quote_header(w, quote.header);
  sgx::write_enclave_report(w, quote.body);
  v.signed_region = w.take();
  v.header = &quote.header;
  v.signature = &quote.signature_data;
  return verify(v, nullptr, now);
}

Result<DcapResult> DcapVerifier::verify(const QuoteView& quote, const Collateral* collateral,
                                        TimePoint now) const {
  DcapResult r;
  const sgx::QuoteSignatureData& sig = *quote.signature;

  // 1. quote structure (parsed by the caller): only Intel's QE produces DCAP ECDSA quotes
  if (quote.header->qe_vendor_id != sgx::kIntelQeVendorId) {
    return make_error("quote_unsupported_qe_vendor",
                      "QE vendor ID " + hex_encode(quote.header->qe_vendor_id) + " is not Intel's");
  }

  // 2. PCK chain: PCK <- Platform/Processor CA <- a configured root, all valid now
  auto chain = Certificate::chain_from_pem(to_string(sig.qe.certification_data));
  if (!chain) return make_error("pck_chain_invalid", "PCK chain: " + chain.error().message);
  if (chain->size() != 3) {
    return make_error("pck_chain_invalid",
                      "PCK chain has " + std::to_string(chain->size()) + " certificates, not 3");
  }
  const Certificate& pck = (*chain)[0];
  const Certificate& intermediate = (*chain)[1];
  const Certificate& root = (*chain)[2];
  // the root must carry a configured trust anchor's name and key (its signature is checked next)
  if (std::none_of(anchors_.begin(), anchors_.end(),
                   [&](const Certificate& a) { return is_anchor(root, a); })) {
    return make_error("untrusted_root", "PCK chain ends in '" + root.subject() +
                                            "', which is not a configured trust anchor");
  }
  COFFER_TRY_STATUS(check_signed_by(root, root, "root_signature_invalid"));
  COFFER_TRY_STATUS(check_signed_by(intermediate, root, "intermediate_signature_invalid"));
  COFFER_TRY_STATUS(check_signed_by(pck, intermediate, "pck_signature_invalid"));
  COFFER_TRY_STATUS(check_validity(pck, now, "pck"));
  COFFER_TRY_STATUS(check_validity(intermediate, now, "intermediate"));
  COFFER_TRY_STATUS(check_validity(root, now, "root"));
  r.pck = COFFER_TRY(parse_pck_extensions(pck));
  r.pck_ca = intermediate.subject_common_name().find("Platform") != std::string::npos ? "platform"
                                                                                      : "processor";
  r.root_subject = root.subject();
  r.root_fingerprint = root.sha256_fingerprint();
  Key pck_key = COFFER_TRY(pck.public_key());

  Collateral fetched;
  if (!collateral && source_) {
    auto c = source_->fetch(CollateralRequest{quote.tee, r.pck.fmspc, r.pck_ca});
    if (!c) return make_error("collateral_unavailable", c.error().to_string());
    fetched = std::move(*c);
    collateral = &fetched;
  }
  r.chain_only = collateral == nullptr;

  std::optional<TcbInfo> tcb_info;
  std::optional<EnclaveIdentity> qe_identity;
  if (collateral) {
    // 3. CRLs: the root CA CRL (signed by the root) must not list the intermediate, the PCK CRL
    // (signed by the intermediate) must not list the PCK; both current
    std::optional<crypto::Crl> root_crl;
    if (collateral->root_ca_crl) {
      auto crl = crypto::Crl::parse_any(*collateral->root_ca_crl);
      if (!crl) return make_error("root_ca_crl_invalid", crl.error().message);
      Key root_key = COFFER_TRY(root.public_key());
      if (!crl->verify_signed_by(root_key)) {
        return make_error("root_ca_crl_signature_invalid", "root CA CRL is not signed by the root");
      }
      if (auto next = crl->next_update()) {
        COFFER_TRY_STATUS(check_fresh(*next, now, options_.allow_expired_collateral,
                                      r.collateral_expired, "root_ca_crl_expired", "root CA CRL"));
      }
      if (crl->is_revoked(intermediate.serial())) {
        return make_error("intermediate_revoked",
                          intermediate.subject_common_name() + " is revoked by the root CA CRL");
      }
      root_crl = std::move(*crl);
    }
    if (collateral->pck_crl) {
      auto crl = crypto::Crl::parse_any(*collateral->pck_crl);
      if (!crl) return make_error("pck_crl_invalid", crl.error().message);
      if (crl->issuer() != intermediate.subject()) {
        return make_error("pck_crl_issuer_mismatch", "PCK CRL is issued by '" + crl->issuer() +
                                                         "', the PCK by '" +
                                                         intermediate.subject() + "'");
      }
      Key intermediate_key = COFFER_TRY(intermediate.public_key());
      if (!crl->verify_signed_by(intermediate_key)) {
        return make_error("pck_crl_signature_invalid",
                          "PCK CRL is not signed by " + intermediate.subject_common_name());
      }
      if (auto next = crl->next_update()) {
        COFFER_TRY_STATUS(check_fresh(*next, now, options_.allow_expired_collateral,
                                      r.collateral_expired, "pck_crl_expired", "PCK CRL"));
      }
      if (crl->is_revoked(pck.serial())) {
        return make_error("pck_revoked", "the PCK certificate (serial " + hex_encode(pck.serial()) +
                                             ") is revoked");
      }
    }
    r.crls_checked = collateral->root_ca_crl.has_value() && collateral->pck_crl.has_value();

    // Signing chains of TCB info and QE identity: Intel SGX TCB Signing <- configured root.
    auto signing_key = [&](const std::string& pem, const std::string& what) -> Result<Key> {
      auto c = Certificate::chain_from_pem(pem);
      if (!c || c->size() < 2) {
        return make_error("tcb_signing_chain_invalid", what + " issuer chain is missing or bad");
      }
      const Certificate& signer = c->front();
      if (std::none_of(anchors_.begin(), anchors_.end(),
                       [&](const Certificate& a) { return is_anchor(c->back(), a); })) {
        return make_error("tcb_signing_chain_invalid", what + " chain ends in an untrusted root");
      }
      COFFER_TRY_STATUS(check_signed_by(c->back(), c->back(), "tcb_signing_chain_invalid"));
      COFFER_TRY_STATUS(check_signed_by(signer, c->back(), "tcb_signing_chain_invalid"));
      COFFER_TRY_STATUS(check_validity(signer, now, "tcb_signing_cert"));
      if (root_crl && root_crl->is_revoked(signer.serial())) {
        return make_error("tcb_signing_cert_revoked", "the TCB signing certificate is revoked");
      }
      return signer.public_key();
    };

    // 4. TCB info: signed by the TCB signing key, current, for this TEE, FMSPC and PCE
    Key tcb_key = COFFER_TRY(signing_key(collateral->tcb_info_issuer_chain, "TCB info"));
    tcb_info = COFFER_TRY(parse_tcb_info(collateral->tcb_info));
    if (!tcb_key.verify(as_bytes(tcb_info->signed_body), tcb_info->signature, kP256Raw)) {
      return make_error("tcb_info_signature_invalid", "TCB info signature does not verify");
    }
    std::string want_id = quote.tee == TeeKind::kTdx ? "TDX" : "SGX";
    if (tcb_info->id != want_id || tcb_info->version != 3) {
      return make_error("tcb_info_mismatch", "TCB info is " + tcb_info->id + " v" +
                                                 std::to_string(tcb_info->version) + ", need " +
                                                 want_id + " v3");
    }
    if (tcb_info->fmspc != r.pck.fmspc || tcb_info->pce_id != r.pck.pce_id) {
      return make_error("tcb_info_mismatch", "TCB info is for FMSPC " +
                                                 hex_encode(tcb_info->fmspc) + ", the PCK has " +
                                                 hex_encode(r.pck.fmspc));
    }
    if (now < tcb_info->issue_date) {
      return make_error("tcb_info_not_yet_valid", "TCB info issued after the verification time");
    }
    COFFER_TRY_STATUS(check_fresh(tcb_info->next_update, now, options_.allow_expired_collateral,
                                  r.collateral_expired, "tcb_info_expired", "TCB info"));

    // 5. QE identity: signed by the TCB signing key, current, for the right QE
    Key qe_key = COFFER_TRY(signing_key(collateral->qe_identity_issuer_chain, "QE identity"));
    qe_identity = COFFER_TRY(parse_enclave_identity(collateral->qe_identity));
    if (!qe_key.verify(as_bytes(qe_identity->signed_body), qe_identity->signature, kP256Raw)) {
      return make_error("qe_identity_signature_invalid", "QE identity signature does not verify");
    }
    std::string want_qe = quote.tee == TeeKind::kTdx ? "TD_QE" : "QE";
    if (qe_identity->id != want_qe || qe_identity->version != 2) {
      return make_error("qe_identity_mismatch", "QE identity is " + qe_identity->id + " v" +
                                                    std::to_string(qe_identity->version) +
                                                    ", need " + want_qe + " v2");
    }
    if (now < qe_identity->issue_date) {
      return make_error("qe_identity_not_yet_valid", "QE identity issued after verification time");
    }
    COFFER_TRY_STATUS(check_fresh(qe_identity->next_update, now, options_.allow_expired_collateral,
                                  r.collateral_expired, "qe_identity_expired", "QE identity"));
    r.tcb_evaluation_data_number =
        std::min(tcb_info->tcb_evaluation_data_number, qe_identity->tcb_evaluation_data_number);
  }

  // 6. QE report signature: the PCK key vouches for the quoting enclave
  Bytes qe_report = sgx::serialize_enclave_report(sig.qe.qe_report);
  if (!pck_key.verify(qe_report, sig.qe.qe_report_signature, kP256Raw)) {
    return make_error("qe_report_signature_invalid", "QE report is not signed by the PCK key");
  }

  // 7. QE REPORTDATA binds the attestation key: SHA-256(key || QE auth data) || 32 zero bytes
  Bytes bound(sig.attestation_key.begin(), sig.attestation_key.end());
  bound.insert(bound.end(), sig.qe.qe_auth_data.begin(), sig.qe.qe_auth_data.end());
  Bytes expected = crypto::sha256(bound);
  expected.resize(64, 0);
  if (!std::equal(expected.begin(), expected.end(), sig.qe.qe_report.report_data.begin())) {
    return make_error("qe_report_data_mismatch",
                      "QE REPORTDATA does not bind the attestation key and QE auth data");
  }

  // 8. quote signature: the attestation key signed header || body
  crypto::EcPoint point{Bytes(sig.attestation_key.begin(), sig.attestation_key.begin() + 32),
                        Bytes(sig.attestation_key.begin() + 32, sig.attestation_key.end())};
  auto att_key = Key::ec_from_point(crypto::KeyType::kEcP256, point);
  if (!att_key) return make_error("attestation_key_invalid", att_key.error().message);
  if (!att_key->verify(quote.signed_region, sig.signature, kP256Raw)) {
    return make_error("quote_signature_invalid", "quote signature does not verify");
  }
  if (!collateral) return r;

  // 9. QE identity match: Intel's QE (MRSIGNER, ISVPRODID, masked MISCSELECT/ATTRIBUTES)
  const sgx::EnclaveReport& qe = sig.qe.qe_report;
  auto attrs = qe.attributes();
  bool attrs_ok = true;
  for (std::size_t i = 0; i < 16; ++i) {
    attrs_ok &= (attrs[i] & qe_identity->attributes_mask[i]) ==
                (qe_identity->attributes[i] & qe_identity->attributes_mask[i]);
  }
  if (!std::equal(qe_identity->mrsigner.begin(), qe_identity->mrsigner.end(), qe.mr_signer.begin(),
                  qe.mr_signer.end()) ||
      qe_identity->isv_prod_id != qe.isv_prod_id ||
      (qe.misc_select & qe_identity->miscselect_mask) !=
          (qe_identity->miscselect & qe_identity->miscselect_mask) ||
      !attrs_ok) {
    return make_error("qe_identity_mismatch",
                      "the quoting enclave does not match the QE identity (MRSIGNER " +
                          hex_encode(qe.mr_signer) + ")");
  }
  const IsvTcbLevel* qe_level = select_isv_level(qe_identity->levels, qe.isv_svn);
  if (!qe_level) {
    return make_error("qe_tcb_level_not_found",
                      "QE ISVSVN " + std::to_string(qe.isv_svn) + " is below every QE TCB level");
  }

  // 10. TCB level and status from the PCK TCB (and TEE_TCB_SVN / TDX module for TDX)
  r.tcb = COFFER_TRY(evaluate_tcb(*tcb_info, r.pck, *qe_level, quote.tdx));
  return r;
}

}  // namespace coffer::verifier::dcap
