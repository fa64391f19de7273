// The "tdx" and "snp" attesters on Linux configfs-tsm (Documentation/ABI/testing/configfs-tsm):
// a report entry directory under /sys/kernel/config/tsm/report whose `provider` names the TEE
// ("tdx_guest", "sev_guest"); the report data is written to `inblob`, the quote / report read
// from `outblob` (and the SNP certificate table from `auxblob`). Every write bumps `generation`:
// if it moves by more than our own write, or while we read, another writer raced us and the
// evidence might not carry our report data, so it is refused ("tsm_generation_race").
#pragma once

#include <filesystem>
#include <string>

#include "guest/aa/attester.h"

namespace coffer::guest::aa {

class TsmAttester final : public Attester {
 public:
  enum class Kind { kTdx, kSnp };
  TsmAttester(Kind kind, AttesterOptions options) : kind_(kind), options_(std::move(options)) {}

  // Whether the configfs-tsm report interface of `kind` looks present.
  static bool probe(Kind kind, const AttesterOptions& options);

  [[nodiscard]] std::string_view tee() const override {
    return kind_ == Kind::kTdx ? "tdx" : "snp";
  }
  Result<Json> evidence(ByteView report_data) override;
  Status extend_runtime_measurement(std::uint32_t index, ByteView digest,
                                    std::string_view description) override;
  Result<InitDataBinding> check_init_data(ByteView digest) override;

  struct Report {
    Bytes outblob;
    Bytes auxblob;
  };
  // One configfs-tsm round trip (exposed for tests). Errors: "tee_not_found", "tsm_wrong_provider",
  // "tsm_generation_race", "tsm_io_error".
  Result<Report> report(ByteView report_data);

 private:
  Kind kind_;
  AttesterOptions options_;
};

// The SNP extended-report certificate table (GUID, offset, length entries; SEV-SNP GHCB spec,
// "SNP Extended Guest Request") as KBS cert_chain entries [{"cert_type": "VCEK", "data": b64}].
Result<Json> snp_cert_table_to_json(ByteView table);

}  // namespace coffer::guest::aa
