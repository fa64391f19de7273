#include "evidence/tdx/quote.h"

namespace coffer::evidence::tdx {

Result<TdReport> read_td_report(ByteReader& in, std::uint16_t body_type) {
  TdReport r;
  r.tee_tcb_svn = COFFER_TRY(in.fixed<16>("TEE_TCB_SVN"));
  r.mr_seam = COFFER_TRY(in.fixed<48>("MRSEAM"));
  r.mrsigner_seam = COFFER_TRY(in.fixed<48>("MRSIGNERSEAM"));
  r.seam_attributes = COFFER_TRY(in.fixed<8>("SEAMATTRIBUTES"));
  r.td_attributes = COFFER_TRY(in.fixed<8>("TDATTRIBUTES"));
  r.xfam = COFFER_TRY(in.fixed<8>("XFAM"));
  r.mr_td = COFFER_TRY(in.fixed<48>("MRTD"));
  r.mr_config_id = COFFER_TRY(in.fixed<48>("MRCONFIGID"));
  r.mr_owner = COFFER_TRY(in.fixed<48>("MROWNER"));
  r.mr_owner_config = COFFER_TRY(in.fixed<48>("MROWNERCONFIG"));
  for (auto& rtmr : r.rtmr) rtmr = COFFER_TRY(in.fixed<48>("RTMR"));
  r.report_data = COFFER_TRY(in.fixed<64>("REPORTDATA"));
  if (body_type == kBodyTypeTdx15) {
    r.tee_tcb_svn2 = COFFER_TRY(in.fixed<16>("TEE_TCB_SVN_2"));
    r.mr_servicetd = COFFER_TRY(in.fixed<48>("MRSERVICETD"));
  }
  return r;
}

void write_td_report(ByteWriter& out, const TdReport& r) {
  out.put(r.tee_tcb_svn);
  out.put(r.mr_seam);
  out.put(r.mrsigner_seam);
  out.put(r.seam_attributes);
  out.put(r.td_attributes);
  out.put(r.xfam);
  out.put(r.mr_td);
  out.put(r.mr_config_id);
  out.put(r.mr_owner);
  out.put(r.mr_owner_config);
  for (const auto& rtmr : r.rtmr) out.put(rtmr);
  out.put(r.report_data);
  if (r.tee_tcb_svn2 && r.mr_servicetd) {
    out.put(*r.tee_tcb_svn2);
    out.put(*r.mr_servicetd);
  }
}

std::size_t Quote::signed_size() const {
  std::size_t body = body_type == kBodyTypeTdx15 ? kTdReport15Size : kTdReport10Size;
  return sgx::kQuoteHeaderSize + (header.version == 5 ? 6 : 0) + body;
}

Result<Quote> parse_quote(ByteView data) {
  ByteReader in(data, "quote_truncated");
  Quote q;
  q.header = COFFER_TRY(sgx::read_quote_header(in));
  // Versions 4 and 5 are the TDX quote formats; 3 is SGX (evidence/sgx).
  if (q.header.version != 4 && q.header.version != 5) {
    return make_error(
        "quote_unsupported_version",
        "TDX quote version " + std::to_string(q.header.version) + ", expected 4 or 5");
  }
  if (q.header.att_key_type != sgx::kAttestationKeyEcdsaP256) {
    return make_error("quote_unsupported_key_type", "attestation key type " +
                                                        std::to_string(q.header.att_key_type) +
                                                        " (only 2, ECDSA P-256, is defined)");
  }
  if (q.header.tee_type != sgx::kTeeTypeTdx) {
    return make_error("quote_unsupported_tee_type",
                      "TEE type " + std::to_string(q.header.tee_type) + ", expected 0x81 (TDX)");
  }
  if (q.header.version == 5) {
    // v5: body descriptor at 0x30 (TDX DCAP Quoting Library API, A.4 "Quote Body Descriptor").
    q.body_type = COFFER_TRY(in.u16("body type"));
    auto body_size = COFFER_TRY(in.u32("body size"));
    if (q.body_type != kBodyTypeTdx10 && q.body_type != kBodyTypeTdx15) {
      return make_error("quote_unsupported_body_type",
                        "v5 body type " + std::to_string(q.body_type) + " (TDX needs 2 or 3)");
    }
    std::size_t expected = q.body_type == kBodyTypeTdx15 ? kTdReport15Size : kTdReport10Size;
    if (body_size != expected) {
      return make_error("quote_body_size_mismatch",
                        "body type " + std::to_string(q.body_type) + " has size " +
                            std::to_string(expected) + ", quote says " + std::to_string(body_size));
    }
  }
  q.body = COFFER_TRY(read_td_report(in, q.body_type));
  auto size = COFFER_TRY(in.u32("signature data length"));
  if (in.remaining() < size) {
    return make_error("quote_truncated", "signature data length " + std::to_string(size) +
                                             " exceeds the " + std::to_string(in.remaining()) +
                                             " bytes left");
  }
  auto sig = COFFER_TRY(in.take(size, "signature data"));
  q.signature_data = COFFER_TRY(sgx::parse_signature_data(sig, sgx::SignatureLayout::kV4));
  return q;
}

Bytes serialize_signed_region(const Quote& q) {
  ByteWriter out;
  sgx::write_quote_header(out, q.header);
  if (q.header.version == 5) {
    out.u16(q.body_type);
    out.u32(static_cast<std::uint32_t>(q.body_type == kBodyTypeTdx15 ? kTdReport15Size
                                                                     : kTdReport10Size));
  }
  write_td_report(out, q.body);
  return out.take();
}

Bytes serialize_quote(const Quote& q) {
  Bytes out = serialize_signed_region(q);
  Bytes sig = sgx::serialize_signature_data(q.signature_data, sgx::SignatureLayout::kV4);
  ByteWriter w;
  w.put(out);
  w.u32(static_cast<std::uint32_t>(sig.size()));
  w.put(sig);
  return w.take();
}

}  // namespace coffer::evidence::tdx
