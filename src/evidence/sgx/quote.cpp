#include "evidence/sgx/quote.h"

namespace coffer::evidence::sgx {

Result<Quote> parse_quote(ByteView data) {
  ByteReader in(data, "quote_truncated");
  Quote q;
  q.header = COFFER_TRY(read_quote_header(in));
  // Only version 3 is an SGX quote with this layout; v4/v5 are TDX (evidence/tdx).
  if (q.header.version != 3) {
    return make_error("quote_unsupported_version",
                      "SGX quote version " + std::to_string(q.header.version) + ", expected 3");
  }
  if (q.header.att_key_type != kAttestationKeyEcdsaP256) {
    return make_error("quote_unsupported_key_type", "attestation key type " +
                                                        std::to_string(q.header.att_key_type) +
                                                        " (only 2, ECDSA P-256, is defined)");
  }
  if (q.header.tee_type != kTeeTypeSgx) {
    return make_error("quote_unsupported_tee_type", "SGX v3 quotes have ATT_KEY_DATA_0 = 0");
  }
  q.body = COFFER_TRY(read_enclave_report(in));
  auto size = COFFER_TRY(in.u32("signature data length"));
  if (in.remaining() < size) {
    return make_error("quote_truncated", "signature data length " + std::to_string(size) +
                                             " exceeds the " + std::to_string(in.remaining()) +
                                             " bytes left");
  }
  auto sig = COFFER_TRY(in.take(size, "signature data"));
  q.signature_data = COFFER_TRY(parse_signature_data(sig, SignatureLayout::kV3));
  return q;
}

Bytes serialize_quote(const Quote& q) {
  ByteWriter out;
  write_quote_header(out, q.header);
  write_enclave_report(out, q.body);
  Bytes sig = serialize_signature_data(q.signature_data, SignatureLayout::kV3);
  out.u32(static_cast<std::uint32_t>(sig.size()));
  out.put(sig);
  return out.take();
}

}  // namespace coffer::evidence::sgx
