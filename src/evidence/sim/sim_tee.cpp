#include "evidence/sim/sim_tee.h"

#include <algorithm>

#include "crypto/digest.h"
#include "crypto/random.h"
#include "evidence/sgx/quote.h"
#include "evidence/tdx/quote.h"

namespace coffer::evidence::sim {
namespace {

template <std::size_t N>
Fixed<N> le_fixed(std::uint64_t v) {
  Fixed<N> out{};
  for (std::size_t i = 0; i < std::min<std::size_t>(N, 8); ++i)
    out[i] = static_cast<std::uint8_t>(v >> (8 * i));
  return out;
}

// 48-byte big-endian P-384 scalar -> 72-byte little-endian field, as the SNP report stores r, s.
Fixed<72> le72(ByteView be) {
  Fixed<72> out{};
  std::reverse_copy(be.begin(), be.end(), out.begin());
  return out;
}

}  // namespace

Result<Bytes> make_tdx_quote(const SimPki& pki, const TdMeasurements& td, ByteView report_data) {
  if (report_data.size() != 64)
    return make_error("bad_report_data", "REPORTDATA must be exactly 64 bytes");
  const SimPlatform& p = pki.platform;
  tdx::Quote q;
  q.header.version = 4;
  q.header.att_key_type = sgx::kAttestationKeyEcdsaP256;
  q.header.tee_type = sgx::kTeeTypeTdx;
  q.header.qe_vendor_id = sgx::kIntelQeVendorId;
  // user_data[0:16]: the QE's platform ID (here derived from the PPID-free chip identity).
  Bytes qe_id = crypto::sha256(p.chip_id);
  std::copy_n(qe_id.begin(), 16, q.header.user_data.begin());
  q.body_type = tdx::kBodyTypeTdx10;

  tdx::TdReport& b = q.body;
  std::copy(p.tee_tcb_svn.begin(), p.tee_tcb_svn.end(), b.tee_tcb_svn.begin());
  b.mr_seam = p.mr_seam;
  // MRSIGNER_SEAM stays zero: Intel signs the TDX module, as on real platforms.
  b.td_attributes = le_fixed<8>(td.td_attributes);
  b.xfam = le_fixed<8>(td.xfam);
  b.mr_td = td.mr_td;
  b.mr_config_id = td.mr_config_id;
  b.mr_owner = td.mr_owner;
  b.mr_owner_config = td.mr_owner_config;
  b.rtmr = td.rtmr;
  std::copy(report_data.begin(), report_data.end(), b.report_data.begin());

  auto qe = COFFER_TRY(make_qe_report(pki));
  auto point = COFFER_TRY(pki.attestation_key.ec_point());
  sgx::QuoteSignatureData& s = q.signature_data;
  std::copy(point.x.begin(), point.x.end(), s.attestation_key.begin());
  std::copy(point.y.begin(), point.y.end(), s.attestation_key.begin() + 32);
  s.qe.qe_report = qe.report;
  s.qe.qe_report_signature = qe.signature;
  s.qe.qe_auth_data = qe.auth_data;
  s.qe.certification_data_type = sgx::kCertDataPckChain;
  std::string chain = pki.pck_chain_pem();
  s.qe.certification_data = Bytes(chain.begin(), chain.end());
  s.qe.certification_data.push_back(0);  // the QE NUL-terminates the PEM chain

  // The attestation key signs header || body (ECDSA P-256, SHA-256, r || s).
  Bytes sig = COFFER_TRY(pki.attestation_key.sign(
      tdx::serialize_signed_region(q),
      {.digest = crypto::DigestAlg::kSha256, .format = crypto::SignatureFormat::kRaw}));
  std::copy(sig.begin(), sig.end(), s.signature.begin());
  return tdx::serialize_quote(q);
}

sgx::EnclaveReport sgx_report_body(const SimPlatform& platform, const SgxIdentity& id,
                                   ByteView report_data) {
  sgx::EnclaveReport b;
  std::copy(platform.cpu_svn.begin(), platform.cpu_svn.end(), b.cpu_svn.begin());
  b.misc_select = id.misc_select;
  b.attributes_flags = le_fixed<8>(id.flags);
  b.attributes_xfrm = le_fixed<8>(id.xfrm);
  b.mr_enclave = id.mr_enclave;
  b.mr_signer = id.mr_signer;
  b.config_id = id.config_id;
  b.isv_prod_id = id.isv_prod_id;
  b.isv_svn = id.isv_svn;
  b.config_svn = id.config_svn;
  std::copy_n(report_data.begin(), std::min<std::size_t>(report_data.size(), 64),
              b.report_data.begin());
  return b;
}

Result<Bytes> make_sgx_quote(const SimPki& pki, const SgxIdentity& id, ByteView report_data) {
  if (report_data.size() != 64)
    return make_error("bad_report_data", "REPORTDATA must be exactly 64 bytes");
  const SimPlatform& p = pki.platform;
  sgx::Quote q;
  q.header.version = 3;
  q.header.att_key_type = sgx::kAttestationKeyEcdsaP256;
  q.header.tee_type = sgx::kTeeTypeSgx;
  store_le16(q.header.reserved.data(), p.qe_isv_svn);   // QE_SVN
  store_le16(q.header.reserved.data() + 2, p.pce_svn);  // PCE_SVN
  q.header.qe_vendor_id = sgx::kIntelQeVendorId;
  Bytes qe_id = crypto::sha256(p.chip_id);
  std::copy_n(qe_id.begin(), 16, q.header.user_data.begin());
  q.body = sgx_report_body(p, id, report_data);

  auto qe = COFFER_TRY(make_qe_report(pki, /*sgx=*/true));
  auto point = COFFER_TRY(pki.attestation_key.ec_point());
  sgx::QuoteSignatureData& s = q.signature_data;
  std::copy(point.x.begin(), point.x.end(), s.attestation_key.begin());
  std::copy(point.y.begin(), point.y.end(), s.attestation_key.begin() + 32);
  s.qe.qe_report = qe.report;
  s.qe.qe_report_signature = qe.signature;
  s.qe.qe_auth_data = qe.auth_data;
  s.qe.certification_data_type = sgx::kCertDataPckChain;
  std::string chain = pki.pck_chain_pem();
  s.qe.certification_data = Bytes(chain.begin(), chain.end());
  s.qe.certification_data.push_back(0);

  Bytes signed_region = sgx::serialize_quote(q);
  signed_region.resize(sgx::kQuoteSignedSize);
  Bytes sig = COFFER_TRY(pki.attestation_key.sign(
      signed_region,
      {.digest = crypto::DigestAlg::kSha256, .format = crypto::SignatureFormat::kRaw}));
  std::copy(sig.begin(), sig.end(), s.signature.begin());
  return sgx::serialize_quote(q);
}

Result<Bytes> make_snp_report(const SimPki& pki, const SnpGuest& guest, ByteView report_data) {
  if (report_data.size() != 64)
    return make_error("bad_report_data", "REPORT_DATA must be exactly 64 bytes");
  const SimPlatform& p = pki.platform;
  snp::Report r;
  r.version = 3;
  r.guest_svn = guest.guest_svn;
  r.policy = guest.policy;
  r.family_id = guest.family_id;
  r.image_id = guest.image_id;
  r.vmpl = guest.vmpl;
  r.signature_algo = 1;
  std::uint64_t tcb = snp::encode_tcb(p.snp_tcb, p.product);
  r.current_tcb = r.reported_tcb = r.committed_tcb = r.launch_tcb = tcb;
  r.platform_info = 0x1;  // SMT enabled
  r.flags = 0;            // SIGNING_KEY 0: VCEK; MASK_CHIP_KEY 0
  std::copy(report_data.begin(), report_data.end(), r.report_data.begin());
  r.measurement = guest.measurement;
  r.host_data = guest.host_data;
  Bytes id = crypto::random_bytes(32);
  std::copy(id.begin(), id.end(), r.report_id.begin());
  r.report_id_ma.fill(0xff);  // no migration agent
  switch (p.product) {        // CPUID family/model as v3 reports carry them
    case snp::Product::kMilan:
      r.cpuid_fam_id = 0x19, r.cpuid_mod_id = 0x01, r.cpuid_step = 0x01;
      break;
    case snp::Product::kTurin:
      r.cpuid_fam_id = 0x1a, r.cpuid_mod_id = 0x02, r.cpuid_step = 0x01;
      break;
    default:
      r.cpuid_fam_id = 0x19, r.cpuid_mod_id = 0x11, r.cpuid_step = 0x01;
      break;
  }
  r.chip_id = p.chip_id;
  r.current_version = {0x1c, 0x37, 0x01, 0x00};  // firmware 1.55.28
  r.committed_version = r.current_version;

  Bytes signed_region = snp::serialize_report(r);
  signed_region.resize(snp::kSignedSize);
  Bytes sig =
      COFFER_TRY(pki.vcek_key.sign(signed_region, {.digest = crypto::DigestAlg::kSha384,
                                                   .format = crypto::SignatureFormat::kRaw}));
  r.signature_r = le72(ByteView(sig).first(48));
  r.signature_s = le72(ByteView(sig).subspan(48, 48));
  return snp::serialize_report(r);
}

Json tdx_evidence_json(ByteView quote, ByteView cc_eventlog) {
  Json j = {{"quote", base64_encode(quote)}};
  if (!cc_eventlog.empty()) j["cc_eventlog"] = base64_encode(cc_eventlog);
  return j;
}

Json sgx_evidence_json(ByteView quote) { return {{"quote", base64_encode(quote)}}; }

Json snp_evidence_json(ByteView report, ByteView vcek_der) {
  return {
      {"attestation_report", base64_encode(report)},
      {"cert_chain", Json::array({{{"cert_type", "VCEK"}, {"data", base64_encode(vcek_der)}}})}};
}

}  // namespace coffer::evidence::sim
