#include "guest/aa/sim_attester.h"

#include <algorithm>

namespace coffer::guest::aa {

Result<Json> SimAttester::evidence(ByteView report_data) {
  if (report_data.size() != kReportDataSize)
    return make_error("bad_report_data", "report data must be exactly 64 bytes");
  Json answer = COFFER_TRY(client_.call(
      {{"op", "quote"}, {"tee", std::string(tee())}, {"report_data", base64_encode(report_data)}}));
  auto it = answer.find("evidence");
  if (it == answer.end() || !it->is_object())
    return make_error("quote_service_error", "the quote service answered without evidence");
  return *it;
}

Status SimAttester::extend_runtime_measurement(std::uint32_t index, ByteView digest,
                                               std::string_view description) {
  if (kind_ != Kind::kTdx) {
    return make_error("not_supported", kind_ == Kind::kSnp
                                           ? "SEV-SNP has no runtime measurement registers"
                                           : "SGX has no runtime measurement registers");
  }
  COFFER_TRY(client_.call({{"op", "extend"},
                           {"rtmr", index},
                           {"digest", hex_encode(digest)},
                           {"event", std::string(description)}}));
  return ok();
}

Result<InitDataBinding> SimAttester::check_init_data(ByteView digest) {
  Json m = COFFER_TRY(client_.call({{"op", "measurements"}}));
  std::string field_hex;
  if (kind_ == Kind::kSgx) {
    auto sgx = m.find("sgx");
    if (sgx == m.end() || !sgx->is_object())
      return make_error("quote_service_error", "the quote service has no SGX identity");
    field_hex = sgx->value("config_id", "");
  } else {
    field_hex = m.value(kind_ == Kind::kTdx ? "mr_config_id" : "host_data", "");
  }
  const char* field_name = kind_ == Kind::kTdx   ? "MRCONFIGID"
                           : kind_ == Kind::kSnp ? "HOST_DATA"
                                                 : "CONFIGID";
  auto field = hex_decode(field_hex);
  if (!field) return make_error("quote_service_error", "bad measurements answer");
  Bytes expected(digest.begin(), digest.end());
  expected.resize(std::max(expected.size(), field->size()), 0);
  if (expected != *field) {
    return make_error("init_data_mismatch", std::string(field_name) + " is " + field_hex +
                                                ", not the init-data digest " + hex_encode(digest));
  }
  return InitDataBinding::kMatches;
}

}  // namespace coffer::guest::aa
