#include "verifier/tdx/tdx_verifier.h"

#include <algorithm>

#include "verifier/binding.h"
#include "verifier/dcap/claims.h"
#include "verifier/errors.h"
#include "verifier/tdx/aa_eventlog.h"
#include "verifier/tdx/eventlog_claims.h"

namespace coffer::verifier::tdx {
namespace {

namespace etdx = evidence::tdx;

template <typename T>
std::string le_hex(T v) {
  std::uint8_t b[sizeof(T)];
  for (std::size_t i = 0; i < sizeof(T); ++i) b[i] = static_cast<std::uint8_t>(v >> (8 * i));
  return hex_encode(ByteView(b, sizeof(T)));
}

}  // namespace

Json tdx_quote_claims(const etdx::Quote& q) {
  const auto& h = q.header;
  Json header = {{"version", le_hex(h.version)},
                 {"att_key_type", le_hex(h.att_key_type)},
                 {"tee_type", le_hex(h.tee_type)},
                 {"reserved", hex_encode(h.reserved)},
                 {"vendor_id", hex_encode(h.qe_vendor_id)},
                 {"user_data", hex_encode(h.user_data)}};
  const auto& b = q.body;
  Json body = {{"tcb_svn", hex_encode(b.tee_tcb_svn)},
               {"mr_seam", hex_encode(b.mr_seam)},
               {"mrsigner_seam", hex_encode(b.mrsigner_seam)},
               {"seam_attributes", hex_encode(b.seam_attributes)},
               {"td_attributes", hex_encode(b.td_attributes)},
               {"xfam", hex_encode(b.xfam)},
               {"mr_td", hex_encode(b.mr_td)},
               {"mr_config_id", hex_encode(b.mr_config_id)},
               {"mr_owner", hex_encode(b.mr_owner)},
               {"mr_owner_config", hex_encode(b.mr_owner_config)},
               {"rtmr_0", hex_encode(b.rtmr[0])},
               {"rtmr_1", hex_encode(b.rtmr[1])},
               {"rtmr_2", hex_encode(b.rtmr[2])},
               {"rtmr_3", hex_encode(b.rtmr[3])},
               {"report_data", hex_encode(b.report_data)}};
  if (b.tee_tcb_svn2) body["tee_tcb_svn2"] = hex_encode(*b.tee_tcb_svn2);
  if (b.mr_servicetd) body["mr_servicetd"] = hex_encode(*b.mr_servicetd);
  Json quote = {{"header", header}, {"body", body}};
  if (h.version == 5) {
    quote["type"] = le_hex(q.body_type);
    quote["size"] = le_hex(static_cast<std::uint32_t>(q.signed_size() - 54));
  }
  // TDATTRIBUTES bits (Intel TDX Module ABI, "TDATTRIBUTES")
  std::uint64_t attrs = load_le64(b.td_attributes.data());
  Json td_attributes = {{"debug", (attrs & 1) != 0},
                        {"septve_disable", ((attrs >> 28) & 1) != 0},
                        {"protection_keys", ((attrs >> 30) & 1) != 0},
                        {"key_locker", ((attrs >> 31) & 1) != 0},
                        {"perfmon", ((attrs >> 63) & 1) != 0}};
  return Json{{"quote", quote},
              {"td_attributes", td_attributes},
              {"report_data", hex_encode(b.report_data)},
              {"init_data", hex_encode(b.mr_config_id)}};
}

Result<Json> TdxVerifier::verify(const VerifyInput& input) const {
  Bytes raw = COFFER_TRY(decode_evidence_base64(input.evidence, "quote"));
  auto quote = COFFER_TRY(etdx::parse_quote(raw));
  auto result = COFFER_TRY(dcap_->verify_tdx(quote, input.now));
  // freshness: REPORTDATA carries the hash of the KBS nonce and the TEE key
  COFFER_TRY_STATUS(check_binding(quote.body.report_data, input.expected_report_data,
                                  VerifierError::kReportDataMismatch, "REPORTDATA"));
  // configuration: MRCONFIGID carries the init-data digest
  if (input.expected_init_data_digest) {
    COFFER_TRY_STATUS(check_binding(quote.body.mr_config_id, *input.expected_init_data_digest,
                                    VerifierError::kInitDataMismatch, "MRCONFIGID"));
  }
  Json claims = tdx_quote_claims(quote);
  // boot measurements: the CC event log must replay to the RTMRs the quote signs
  if (auto it = input.evidence.find("cc_eventlog");
      it != input.evidence.end() && !it->is_null() &&
      !(it->is_string() && it->get_ref<const std::string&>().empty())) {
    Bytes raw_log = COFFER_TRY(decode_evidence_base64(input.evidence, "cc_eventlog"));
    auto log = COFFER_TRY(etdx::parse_event_log(raw_log));
    auto rtmrs = COFFER_TRY(etdx::replay_rtmrs(log));
    for (std::size_t i = 0; i < rtmrs.size(); ++i) {
      if (rtmrs[i] != quote.body.rtmr[i]) {
        return make_error(VerifierError::kEventlogRtmrMismatch,
                          "the event log replays RTMR" + std::to_string(i) + " to " +
                              hex_encode(rtmrs[i]) + ", the quote has " +
                              hex_encode(quote.body.rtmr[i]));
      }
    }
    claims["uefi_event_logs"] = event_log_claims(log);
  }
  // runtime measurements: the attestation agent's event log must replay to RTMR3
  if (auto it = input.evidence.find("aa_eventlog"); it != input.evidence.end() && !it->is_null()) {
    if (!it->is_string())
      return make_error(VerifierError::kBadEvidence, "aa_eventlog must be a string");
    auto aael = COFFER_TRY(parse_aa_eventlog(it->get_ref<const std::string&>()));
    Bytes rtmr3 = replay_aa_eventlog(aael);
    if (!std::equal(rtmr3.begin(), rtmr3.end(), quote.body.rtmr[3].begin(),
                    quote.body.rtmr[3].end())) {
      return make_error(VerifierError::kAaEventlogRtmrMismatch,
                        "the attestation agent event log replays RTMR3 to " + hex_encode(rtmr3) +
                            ", the quote has " + hex_encode(quote.body.rtmr[3]));
    }
    claims["aael"] = aa_eventlog_claims(aael);
  }
  dcap::add_dcap_claims(result, claims);
  return claims;
}

}  // namespace coffer::verifier::tdx
