#include "evidence/sgx/signature_data.h"

namespace coffer::evidence::sgx {
namespace {

constexpr const char* kMismatch = "quote_signature_data_size_mismatch";

Result<Bytes> read_sized16(ByteReader& in, std::string_view what) {
  auto n = COFFER_TRY(in.u16(what));
  auto v = COFFER_TRY(in.take(n, what));
  return Bytes(v.begin(), v.end());
}

// QE report, its signature, QE authentication data and the nested certification data
// (Quote Library API, "QE Report Certification Data").
Result<QeReportCertificationData> read_qe_certification(ByteReader& in) {
  QeReportCertificationData qe;
  qe.qe_report = COFFER_TRY(read_enclave_report(in));
  qe.qe_report_signature = COFFER_TRY(in.fixed<64>("QE report signature"));
  qe.qe_auth_data = COFFER_TRY(read_sized16(in, "QE authentication data"));
  qe.certification_data_type = COFFER_TRY(in.u16("certification data type"));
  auto size = COFFER_TRY(in.u32("certification data size"));
  auto data = COFFER_TRY(in.take(size, "certification data"));
  qe.certification_data.assign(data.begin(), data.end());
  return qe;
}

void write_qe_certification(ByteWriter& out, const QeReportCertificationData& qe) {
  write_enclave_report(out, qe.qe_report);
  out.put(qe.qe_report_signature);
  out.u16(static_cast<std::uint16_t>(qe.qe_auth_data.size()));
  out.put(qe.qe_auth_data);
  out.u16(qe.certification_data_type);
  out.u32(static_cast<std::uint32_t>(qe.certification_data.size()));
  out.put(qe.certification_data);
}

}  // namespace

Result<QuoteHeader> read_quote_header(ByteReader& in) {
  QuoteHeader h;
  h.version = COFFER_TRY(in.u16("header version"));
  h.att_key_type = COFFER_TRY(in.u16("header attestation key type"));
  h.tee_type = COFFER_TRY(in.u32("header TEE type"));
  h.reserved = COFFER_TRY(in.fixed<4>("header reserved"));
  h.qe_vendor_id = COFFER_TRY(in.fixed<16>("header QE vendor ID"));
  h.user_data = COFFER_TRY(in.fixed<20>("header user data"));
  return h;
}

void write_quote_header(ByteWriter& out, const QuoteHeader& h) {
  out.u16(h.version);
  out.u16(h.att_key_type);
  out.u32(h.tee_type);
  out.put(h.reserved);
  out.put(h.qe_vendor_id);
  out.put(h.user_data);
}

Result<QuoteSignatureData> parse_signature_data(ByteView data, SignatureLayout layout) {
  // Every read is bounded by the declared signature data length: running out means the inner
  // sizes and the outer length disagree.
  ByteReader in(data, kMismatch);
  QuoteSignatureData sig;
  sig.signature = COFFER_TRY(in.fixed<64>("quote signature"));
  sig.attestation_key = COFFER_TRY(in.fixed<64>("attestation key"));
  if (layout == SignatureLayout::kV3) {
    sig.qe = COFFER_TRY(read_qe_certification(in));
  } else {
    auto type = COFFER_TRY(in.u16("certification data type"));
    if (type != kCertDataQeReport) {
      return make_error(
          "quote_unsupported_certification_data",
          "v4/v5 quotes must carry certification data type 6, found " + std::to_string(type));
    }
    auto size = COFFER_TRY(in.u32("certification data size"));
    auto inner = COFFER_TRY(in.take(size, "QE report certification data"));
    ByteReader qe_in(inner, kMismatch);
    sig.qe = COFFER_TRY(read_qe_certification(qe_in));
    if (qe_in.remaining() != 0) {
      return make_error(kMismatch, "QE report certification data has " +
                                       std::to_string(qe_in.remaining()) + " unexplained bytes");
    }
  }
  if (sig.qe.certification_data_type != kCertDataPckChain) {
    return make_error("quote_unsupported_certification_data",
                      "expected a PCK certificate chain (type 5), found type " +
                          std::to_string(sig.qe.certification_data_type));
  }
  if (in.remaining() != 0) {
    return make_error(kMismatch, "signature data has " + std::to_string(in.remaining()) +
                                     " bytes beyond its certification data");
  }
  return sig;
}

Bytes serialize_signature_data(const QuoteSignatureData& sig, SignatureLayout layout) {
  ByteWriter out;
  out.put(sig.signature);
  out.put(sig.attestation_key);
  if (layout == SignatureLayout::kV3) {
    write_qe_certification(out, sig.qe);
  } else {
    ByteWriter inner;
    write_qe_certification(inner, sig.qe);
    Bytes b = inner.take();
    out.u16(kCertDataQeReport);
    out.u32(static_cast<std::uint32_t>(b.size()));
    out.put(b);
  }
  return out.take();
}

}  // namespace coffer::evidence::sgx
