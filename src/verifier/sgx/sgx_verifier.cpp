#include "verifier/sgx/sgx_verifier.h"

#include "verifier/binding.h"
#include "verifier/dcap/claims.h"
#include "verifier/errors.h"

namespace coffer::verifier::sgx {
namespace {

std::string le16_hex(std::uint16_t v) {
  std::uint8_t b[2];
  store_le16(b, v);
  return hex_encode(b);
}

}  // namespace

Json sgx_quote_claims(const evidence::sgx::Quote& q) {
  const auto& h = q.header;
  std::uint8_t tee[4];
  store_le32(tee, h.tee_type);
  Json header = {{"version", le16_hex(h.version)},
                 {"att_key_type", le16_hex(h.att_key_type)},
                 {"att_key_data_0", hex_encode(tee)},
                 {"qe_svn", hex_encode(ByteView(h.reserved).first(2))},
                 {"pce_svn", hex_encode(ByteView(h.reserved).last(2))},
                 {"vendor_id", hex_encode(h.qe_vendor_id)},
                 {"user_data", hex_encode(h.user_data)}};
  const auto& b = q.body;
  std::uint8_t misc[4];
  store_le32(misc, b.misc_select);
  Json body = {{"cpu_svn", hex_encode(b.cpu_svn)},
               {"misc_select", hex_encode(misc)},
               {"reserved1", hex_encode(b.reserved1)},
               {"isv_ext_prod_id", hex_encode(b.isv_ext_prod_id)},
               {"attributes.flags", hex_encode(b.attributes_flags)},
               {"attributes.xfrm", hex_encode(b.attributes_xfrm)},
               {"mr_enclave", hex_encode(b.mr_enclave)},
               {"reserved2", hex_encode(b.reserved2)},
               {"mr_signer", hex_encode(b.mr_signer)},
               {"reserved3", hex_encode(b.reserved3)},
               {"config_id", hex_encode(b.config_id)},
               {"isv_prod_id", le16_hex(b.isv_prod_id)},
               {"isv_svn", le16_hex(b.isv_svn)},
               {"config_svn", le16_hex(b.config_svn)},
               {"reserved4", hex_encode(b.reserved4)},
               {"isv_family_id", hex_encode(b.isv_family_id)},
               {"report_data", hex_encode(b.report_data)}};
  // SGX ATTRIBUTES.DEBUG is bit 1 of the flags (Intel SDM Vol. 3D, SECS ATTRIBUTES): a debug
  // enclave's memory can be read by the host, so policies need it as a plain boolean.
  return Json{{"header", header},
              {"body", body},
              {"debug", (b.attributes_flags[0] & 0x02) != 0},
              {"report_data", hex_encode(b.report_data)},
              {"init_data", hex_encode(b.config_id)}};
}

Result<Json> SgxVerifier::verify(const VerifyInput& input) const {
  Bytes raw = COFFER_TRY(decode_evidence_base64(input.evidence, "quote"));
  auto quote = COFFER_TRY(evidence::sgx::parse_quote(raw));
  auto result = COFFER_TRY(dcap_->verify_sgx(quote, input.now));
  // freshness: the enclave's REPORTDATA carries the hash of the nonce and its key
  COFFER_TRY_STATUS(check_binding(quote.body.report_data, input.expected_report_data,
                                  VerifierError::kReportDataMismatch, "REPORTDATA"));
  // configuration: CONFIGID carries the init-data digest
  if (input.expected_init_data_digest) {
    COFFER_TRY_STATUS(check_binding(quote.body.config_id, *input.expected_init_data_digest,
                                    VerifierError::kInitDataMismatch, "CONFIGID"));
  }
  Json claims = sgx_quote_claims(quote);
  dcap::add_dcap_claims(result, claims);
  return claims;
}

}  // namespace coffer::verifier::sgx
