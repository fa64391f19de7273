#include "verifier/dcap/dcap_verifier.h"

#include <algorithm>

#include "crypto/digest.h"
#include "verifier/cache.h"
#include "verifier/dcap/errors.h"
#include "verifier/dcap/intel_root.h"

namespace coffer::verifier::dcap {
namespace {

using crypto::Certificate;
using crypto::Key;
namespace sgx = evidence::sgx;

const crypto::SignatureParams kP256Raw{crypto::DigestAlg::kSha256, crypto::SignatureFormat::kRaw};

// The certificate's validity window holds `now`: `expired` past it, `not_yet_valid` before it.
Status check_validity(const Certificate& cert, TimePoint now, DcapError expired,
                      DcapError not_yet_valid) {
  auto st = cert.check_validity(now);
  if (st) return st;
  return make_error(now < cert.not_before() ? not_yet_valid : expired,
                    cert.subject_common_name() + ": " + st.error().message);
}

Status check_signed_by(const Certificate& cert, const Certificate& issuer, DcapError code) {
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

bool is_any_anchor(const Certificate& cert, const std::vector<Certificate>& anchors) {
  return std::any_of(anchors.begin(), anchors.end(),
                     [&](const Certificate& a) { return is_anchor(cert, a); });
}

// Collateral past its nextUpdate fails unless the options accept it (then it is flagged).
Status check_fresh(TimePoint next_update, TimePoint now, bool allow, bool& expired, DcapError code,
                   const std::string& what) {
  if (now <= next_update) return ok();
  if (allow) {
    expired = true;
    return ok();
  }
  return make_error(
      code, what + " expired at " + format_rfc3339(next_update) + "; fetch current collateral");
}

// The PEM certificate blocks of a chain, in order (text between the markers is not inspected:
// each block is parsed on its own).
std::vector<std::string_view> pem_blocks(std::string_view pem) {
  constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
  constexpr std::string_view kEnd = "-----END CERTIFICATE-----";
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while ((pos = pem.find(kBegin, pos)) != std::string_view::npos) {
    std::size_t end = pem.find(kEnd, pos);
    if (end == std::string_view::npos) break;
    end += kEnd.size();
    out.push_back(pem.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

std::string two_part_key(std::string_view a, std::string_view b) {
  return cache_key(a) + cache_key(b);
}

// The PCK's issuer (Platform or Processor CA) and the root, verified up to a trust anchor.
struct IssuerChain {
  Certificate intermediate;
  Certificate root;
  Key intermediate_key;
  Key root_key;
  std::string id;  // cache key: identifies this issuer for the PCK CRL cache
  // identifies the intermediate (its key) for the PCK leaf cache: cache_key(SHA-256 of its DER)
  std::string intermediate_id;
  std::string pck_ca;
  Bytes root_fingerprint;
  std::string intermediate_subject;
  std::string root_subject;
  Bytes intermediate_serial;
};

// A PCK leaf whose signature by a verified intermediate verified, cached under the leaf's exact
// bytes and that intermediate (its validity and revocation are checked for every quote).
struct PckLeaf {
  Certificate cert;
  Key key;
  PckExtensions ext;
  Bytes serial;
};

// A CRL whose signature by a given issuer key verified.
struct VerifiedCrl {
  crypto::Crl crl;
};

// A TCB info or QE identity whose signing chain reaches a trust anchor and whose signature
// verified; the signer's validity and revocation are re-checked per quote.
template <typename Doc>
struct SignedDoc {
  Doc doc;
  Certificate signer;
};

// An attestation key that a QE report vouches for: the exact QE report bytes verified under a
// cached PCK leaf's key (step 6) and bind this key and QE auth data (step 7). Cached under all
// those bytes, so a hit stands for exactly the inputs that passed both steps.
struct VouchedKey {
  Key key;
};

}  // namespace

struct DcapVerifier::Caches {
  explicit Caches(std::size_t n)
      : chains(n), leaves(n), crls(n), tcb_infos(n), qe_identities(n), attestation_keys(n) {}
  BoundedCache<IssuerChain> chains;
  BoundedCache<PckLeaf> leaves;
  BoundedCache<VerifiedCrl> crls;
  BoundedCache<SignedDoc<TcbInfo>> tcb_infos;
  BoundedCache<SignedDoc<EnclaveIdentity>> qe_identities;
  BoundedCache<VouchedKey> attestation_keys;
};

namespace {

Result<std::shared_ptr<const IssuerChain>> verified_issuer_chain(
    BoundedCache<IssuerChain>& cache, const std::vector<Certificate>& anchors,
    std::string_view intermediate_pem, std::string_view root_pem) {
  std::string key = two_part_key(intermediate_pem, root_pem);
  if (auto hit = cache.find(key)) return hit;
  auto intermediate = Certificate::from_pem(intermediate_pem);
  if (!intermediate)
    return make_error(DcapError::kPckChainInvalid, "PCK CA: " + intermediate.error().message);
  auto root = Certificate::from_pem(root_pem);
  if (!root) return make_error(DcapError::kPckChainInvalid, "root CA: " + root.error().message);
  // the root must carry a configured trust anchor's name and key (its signature is checked next)
  if (!is_any_anchor(*root, anchors)) {
    return make_error(DcapError::kUntrustedRoot, "PCK chain ends in '" + root->subject() +
                                                     "', which is not a configured trust anchor");
  }
  COFFER_TRY_STATUS(check_signed_by(*root, *root, DcapError::kRootSignatureInvalid));
  COFFER_TRY_STATUS(
      check_signed_by(*intermediate, *root, DcapError::kIntermediateSignatureInvalid));
  Key intermediate_key = COFFER_TRY(intermediate->public_key());
  Key root_key = COFFER_TRY(root->public_key());
  std::string ca = intermediate->subject_common_name().find("Platform") != std::string::npos
                       ? "platform"
                       : "processor";
  Bytes fingerprint = root->sha256_fingerprint();
  std::string intermediate_id = cache_key(intermediate->sha256_fingerprint());
  return cache.insert(
      key, std::make_shared<const IssuerChain>(
               IssuerChain{*intermediate, *root, std::move(intermediate_key), std::move(root_key),
                           key, std::move(intermediate_id), ca, std::move(fingerprint),
                           intermediate->subject(), root->subject(), intermediate->serial()}));
}

struct CrlCodes {
  DcapError invalid;
  DcapError signature;
  const char* what;
};

// A CRL signed by `issuer_key` (identified by `issuer_id`), and issued by `issuer_name` if given.
Result<std::shared_ptr<const VerifiedCrl>> verified_crl(BoundedCache<VerifiedCrl>& cache,
                                                        ByteView data, const std::string& issuer_id,
                                                        const Key& issuer_key,
                                                        const std::string* issuer_name,
                                                        const CrlCodes& codes) {
  std::string key = cache_key(data) + issuer_id;
  if (auto hit = cache.find(key)) return hit;
  auto crl = crypto::Crl::parse_any(data);
  if (!crl) return make_error(codes.invalid, crl.error().message);
  if (issuer_name && crl->issuer() != *issuer_name) {
    return make_error(DcapError::kPckCrlIssuerMismatch, "PCK CRL is issued by '" + crl->issuer() +
                                                            "', the PCK by '" + *issuer_name + "'");
  }
  if (!crl->verify_signed_by(issuer_key)) {
    return make_error(codes.signature, std::string(codes.what) + " is not signed by its issuer");
  }
  return cache.insert(key, std::make_shared<const VerifiedCrl>(VerifiedCrl{std::move(*crl)}));
}

// Signing chain of TCB info and QE identity (Intel SGX TCB Signing <- configured root), the
// document's parse and its signature; cached by the bytes of document and chain.
template <typename Doc, typename Parse>
Result<std::shared_ptr<const SignedDoc<Doc>>> verified_doc(BoundedCache<SignedDoc<Doc>>& cache,
                                                           const std::vector<Certificate>& anchors,
                                                           std::string_view body,
                                                           std::string_view chain_pem,
                                                           const std::string& what, Parse parse,
                                                           DcapError signature_code) {
  std::string key = two_part_key(body, chain_pem);
  if (auto hit = cache.find(key)) return hit;
  auto c = Certificate::chain_from_pem(chain_pem);
  if (!c || c->size() < 2) {
    return make_error(DcapError::kTcbSigningChainInvalid, what + " issuer chain is missing or bad");
  }
  const Certificate& signer = c->front();
  if (!is_any_anchor(c->back(), anchors)) {
    return make_error(DcapError::kTcbSigningChainInvalid,
                      what + " chain ends in an untrusted root");
  }
  COFFER_TRY_STATUS(check_signed_by(c->back(), c->back(), DcapError::kTcbSigningChainInvalid));
  COFFER_TRY_STATUS(check_signed_by(signer, c->back(), DcapError::kTcbSigningChainInvalid));
  Key signing_key = COFFER_TRY(signer.public_key());
  Doc doc = COFFER_TRY(parse(body));
  if (!signing_key.verify(as_bytes(doc.signed_body), doc.signature, kP256Raw)) {
    return make_error(signature_code, what + " signature does not verify");
  }
  return cache.insert(
      key, std::make_shared<const SignedDoc<Doc>>(SignedDoc<Doc>{std::move(doc), signer}));
}

// Per quote: the signing certificate is valid now and not revoked by the root CA CRL.
Status check_signer(const Certificate& signer, TimePoint now, const crypto::Crl* root_crl) {
  COFFER_TRY_STATUS(check_validity(signer, now, DcapError::kTcbSigningCertExpired,
                                   DcapError::kTcbSigningCertNotYetValid));
  if (root_crl && root_crl->is_revoked(signer.serial())) {
    return make_error(DcapError::kTcbSigningCertRevoked, "the TCB signing certificate is revoked");
  }
  return ok();
}

}  // namespace

DcapVerifier::DcapVerifier(std::vector<Certificate> trust_anchors,
                           std::shared_ptr<const CollateralSource> source, DcapOptions options)
    : anchors_(std::move(trust_anchors)),
      source_(std::move(source)),
      options_(options),
      caches_(std::make_shared<Caches>(options.cache_capacity)) {}

DcapCacheSizes DcapVerifier::cache_sizes() const {
  return DcapCacheSizes{caches_->chains.size(), caches_->leaves.size(), caches_->crls.size(),
                        caches_->tcb_infos.size(), caches_->qe_identities.size()};
}

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
  Caches& caches = *caches_;

  // 1. quote structure (parsed by the caller): only Intel's QE produces DCAP ECDSA quotes
  if (quote.header->qe_vendor_id != sgx::kIntelQeVendorId) {
    return make_error(DcapError::kQuoteUnsupportedQeVendor,
                      "QE vendor ID " + hex_encode(quote.header->qe_vendor_id) + " is not Intel's");
  }

  // 2. PCK chain: PCK <- Platform/Processor CA <- a configured root, all valid now
  std::string_view pem(reinterpret_cast<const char*>(sig.qe.certification_data.data()),
                       sig.qe.certification_data.size());
  auto blocks = pem_blocks(pem);
  if (blocks.size() != 3) {
    auto chain = Certificate::chain_from_pem(pem);
    if (!chain)
      return make_error(DcapError::kPckChainInvalid, "PCK chain: " + chain.error().message);
    return make_error(DcapError::kPckChainInvalid,
                      "PCK chain has " + std::to_string(chain->size()) + " certificates, not 3");
  }
  auto issuer_chain = verified_issuer_chain(caches.chains, anchors_, blocks[1], blocks[2]);
  if (!issuer_chain) {
    // an unparsable leaf is reported first
    if (auto parsed = Certificate::from_pem(blocks[0]); !parsed) {
      return make_error(DcapError::kPckChainInvalid, "PCK chain: " + parsed.error().message);
    }
    return std::unexpected(issuer_chain.error());
  }
  std::shared_ptr<const IssuerChain> issuers = *issuer_chain;
  const Certificate& intermediate = issuers->intermediate;
  const Certificate& root = issuers->root;
  // the PCK leaf must be signed by the (verified) intermediate: a cached leaf was verified
  // against exactly this intermediate, a new one is verified now
  std::string leaf_key = cache_key(blocks[0]) + issuers->intermediate_id;
  std::shared_ptr<const PckLeaf> leaf = caches.leaves.find(leaf_key);
  std::optional<Certificate> new_leaf;
  if (!leaf) {
    auto parsed = Certificate::from_pem(blocks[0]);
    if (!parsed)
      return make_error(DcapError::kPckChainInvalid, "PCK chain: " + parsed.error().message);
    if (!parsed->verify_signed_by(issuers->intermediate_key)) {
      return make_error(DcapError::kPckSignatureInvalid, parsed->subject_common_name() +
                                                             " is not signed by " +
                                                             intermediate.subject_common_name());
    }
    new_leaf = std::move(*parsed);
  }
  const Certificate& leaf_cert = leaf ? leaf->cert : *new_leaf;
  COFFER_TRY_STATUS(
      check_validity(leaf_cert, now, DcapError::kPckExpired, DcapError::kPckNotYetValid));
  COFFER_TRY_STATUS(check_validity(intermediate, now, DcapError::kIntermediateExpired,
                                   DcapError::kIntermediateNotYetValid));
  COFFER_TRY_STATUS(
      check_validity(root, now, DcapError::kRootExpired, DcapError::kRootNotYetValid));
  if (!leaf) {
    auto ext = COFFER_TRY(parse_pck_extensions(*new_leaf));
    Key key = COFFER_TRY(new_leaf->public_key());
    Bytes serial = new_leaf->serial();
    leaf = caches.leaves.insert(
        leaf_key, std::make_shared<const PckLeaf>(PckLeaf{std::move(*new_leaf), std::move(key),
                                                          std::move(ext), std::move(serial)}));
  }
  r.pck = leaf->ext;
  r.pck_ca = issuers->pck_ca;
  r.root_subject = issuers->root_subject;
  r.root_fingerprint = issuers->root_fingerprint;
  const Key& pck_key = leaf->key;

  Collateral fetched;
  if (!collateral && source_) {
    auto c = source_->fetch(CollateralRequest{quote.tee, r.pck.fmspc, r.pck_ca});
    if (!c) return make_error(DcapError::kCollateralUnavailable, c.error().to_string());
    fetched = std::move(*c);
    collateral = &fetched;
  }
  r.chain_only = collateral == nullptr;

  const TcbInfo* tcb_info = nullptr;
  const EnclaveIdentity* qe_identity = nullptr;
  std::shared_ptr<const SignedDoc<TcbInfo>> tcb_doc;
  std::shared_ptr<const SignedDoc<EnclaveIdentity>> qe_doc;
  if (collateral) {
    // 3. CRLs: the root CA CRL (signed by the root) must not list the intermediate, the PCK CRL
    // (signed by the intermediate) must not list the PCK; both current
    std::shared_ptr<const VerifiedCrl> root_crl;
    if (collateral->root_ca_crl) {
      root_crl = COFFER_TRY(verified_crl(
          caches.crls, *collateral->root_ca_crl, to_string(issuers->root_fingerprint),
          issuers->root_key, nullptr,
          {DcapError::kRootCaCrlInvalid, DcapError::kRootCaCrlSignatureInvalid, "root CA CRL"}));
      if (auto next = root_crl->crl.next_update()) {
        COFFER_TRY_STATUS(check_fresh(*next, now, options_.allow_expired_collateral,
                                      r.collateral_expired, DcapError::kRootCaCrlExpired,
                                      "root CA CRL"));
      }
      if (root_crl->crl.is_revoked(issuers->intermediate_serial)) {
        return make_error(DcapError::kIntermediateRevoked,
                          intermediate.subject_common_name() + " is revoked by the root CA CRL");
      }
    }
    if (collateral->pck_crl) {
      auto pck_crl = COFFER_TRY(
          verified_crl(caches.crls, *collateral->pck_crl, issuers->id, issuers->intermediate_key,
                       &issuers->intermediate_subject,
                       {DcapError::kPckCrlInvalid, DcapError::kPckCrlSignatureInvalid, "PCK CRL"}));
      if (auto next = pck_crl->crl.next_update()) {
        COFFER_TRY_STATUS(check_fresh(*next, now, options_.allow_expired_collateral,
                                      r.collateral_expired, DcapError::kPckCrlExpired, "PCK CRL"));
      }
      if (pck_crl->crl.is_revoked(leaf->serial)) {
        return make_error(DcapError::kPckRevoked, "the PCK certificate (serial " +
                                                      hex_encode(leaf->serial) + ") is revoked");
      }
    }
    r.crls_checked = collateral->root_ca_crl.has_value() && collateral->pck_crl.has_value();
    const crypto::Crl* root_crl_ptr = root_crl ? &root_crl->crl : nullptr;

    // 4. TCB info: signed by the TCB signing key, current, for this TEE, FMSPC and PCE
    tcb_doc = COFFER_TRY(verified_doc(caches.tcb_infos, anchors_, collateral->tcb_info,
                                      collateral->tcb_info_issuer_chain, "TCB info", parse_tcb_info,
                                      DcapError::kTcbInfoSignatureInvalid));
    COFFER_TRY_STATUS(check_signer(tcb_doc->signer, now, root_crl_ptr));
    tcb_info = &tcb_doc->doc;
    std::string want_id = quote.tee == TeeKind::kTdx ? "TDX" : "SGX";
    if (tcb_info->id != want_id || tcb_info->version != 3) {
      return make_error(DcapError::kTcbInfoMismatch, "TCB info is " + tcb_info->id + " v" +
                                                         std::to_string(tcb_info->version) +
                                                         ", need " + want_id + " v3");
    }
    if (tcb_info->fmspc != r.pck.fmspc || tcb_info->pce_id != r.pck.pce_id) {
      return make_error(DcapError::kTcbInfoMismatch,
                        "TCB info is for FMSPC " + hex_encode(tcb_info->fmspc) + ", the PCK has " +
                            hex_encode(r.pck.fmspc));
    }
    if (now < tcb_info->issue_date) {
      return make_error(DcapError::kTcbInfoNotYetValid,
                        "TCB info issued after the verification time");
    }
    COFFER_TRY_STATUS(check_fresh(tcb_info->next_update, now, options_.allow_expired_collateral,
                                  r.collateral_expired, DcapError::kTcbInfoExpired, "TCB info"));

    // 5. QE identity: signed by the TCB signing key, current, for the right QE
    qe_doc =
        COFFER_TRY(verified_doc(caches.qe_identities, anchors_, collateral->qe_identity,
                                collateral->qe_identity_issuer_chain, "QE identity",
                                parse_enclave_identity, DcapError::kQeIdentitySignatureInvalid));
    COFFER_TRY_STATUS(check_signer(qe_doc->signer, now, root_crl_ptr));
    qe_identity = &qe_doc->doc;
    std::string want_qe = quote.tee == TeeKind::kTdx ? "TD_QE" : "QE";
    if (qe_identity->id != want_qe || qe_identity->version != 2) {
      return make_error(DcapError::kQeIdentityMismatch, "QE identity is " + qe_identity->id + " v" +
                                                            std::to_string(qe_identity->version) +
                                                            ", need " + want_qe + " v2");
    }
    if (now < qe_identity->issue_date) {
      return make_error(DcapError::kQeIdentityNotYetValid,
                        "QE identity issued after verification time");
    }
    COFFER_TRY_STATUS(check_fresh(qe_identity->next_update, now, options_.allow_expired_collateral,
                                  r.collateral_expired, DcapError::kQeIdentityExpired,
                                  "QE identity"));
    r.tcb_evaluation_data_number =
        std::min(tcb_info->tcb_evaluation_data_number, qe_identity->tcb_evaluation_data_number);
  }

  // 6-7 for exactly these bytes under this PCK leaf passed before: the key they vouch for
  Bytes qe_report = sgx::serialize_enclave_report(sig.qe.qe_report);
  std::string vouched_key = leaf_key + cache_key(qe_report) +
                            cache_key(sig.qe.qe_report_signature) + cache_key(sig.qe.qe_auth_data) +
                            cache_key(sig.attestation_key);
  std::shared_ptr<const VouchedKey> att_key = caches.attestation_keys.find(vouched_key);
  bool att_key_cached = att_key != nullptr;
  if (!att_key) {
    // 6. QE report signature: the PCK key vouches for the quoting enclave
    if (!pck_key.verify(qe_report, sig.qe.qe_report_signature, kP256Raw)) {
      return make_error(DcapError::kQeReportSignatureInvalid,
                        "QE report is not signed by the PCK key");
    }

    // 7. QE REPORTDATA binds the attestation key: SHA-256(key || QE auth data) || 32 zero bytes
    Bytes bound(sig.attestation_key.begin(), sig.attestation_key.end());
    bound.insert(bound.end(), sig.qe.qe_auth_data.begin(), sig.qe.qe_auth_data.end());
    Bytes expected = crypto::sha256(bound);
    expected.resize(64, 0);
    if (!std::equal(expected.begin(), expected.end(), sig.qe.qe_report.report_data.begin())) {
      return make_error(DcapError::kQeReportDataMismatch,
                        "QE REPORTDATA does not bind the attestation key and QE auth data");
    }
    crypto::EcPoint point{Bytes(sig.attestation_key.begin(), sig.attestation_key.begin() + 32),
                          Bytes(sig.attestation_key.begin() + 32, sig.attestation_key.end())};
    auto k = Key::ec_from_point(crypto::KeyType::kEcP256, point);
    if (!k) return make_error(DcapError::kAttestationKeyInvalid, k.error().message);
    att_key = std::make_shared<const VouchedKey>(VouchedKey{std::move(*k)});
  }

  // 8. quote signature: the attestation key signed header || body
  if (!att_key->key.verify(quote.signed_region, sig.signature, kP256Raw)) {
    return make_error(DcapError::kQuoteSignatureInvalid, "quote signature does not verify");
  }
  // kept once the whole QE -> quote path verified
  if (!att_key_cached) caches.attestation_keys.insert(vouched_key, att_key);
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
    return make_error(DcapError::kQeIdentityMismatch,
                      "the quoting enclave does not match the QE identity (MRSIGNER " +
                          hex_encode(qe.mr_signer) + ")");
  }
  const IsvTcbLevel* qe_level = select_isv_level(qe_identity->levels, qe.isv_svn);
  if (!qe_level) {
    return make_error(DcapError::kQeTcbLevelNotFound,
                      "QE ISVSVN " + std::to_string(qe.isv_svn) + " is below every QE TCB level");
  }

  // 10. TCB level and status from the PCK TCB (and TEE_TCB_SVN / TDX module for TDX)
  r.tcb = COFFER_TRY(evaluate_tcb(*tcb_info, r.pck, *qe_level, quote.tdx));
  return r;
}

}  // namespace coffer::verifier::dcap
