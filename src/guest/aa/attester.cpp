#include "guest/aa/attester.h"

#include "guest/aa/sample_attester.h"
#include "guest/aa/sgx_attester.h"
#include "guest/aa/sim_attester.h"
#include "guest/aa/tsm_attester.h"

namespace coffer::guest::aa {
namespace {

Result<std::unique_ptr<Attester>> sim(SimAttester::Kind kind, const AttesterOptions& o) {
  if (o.quote_service_socket.empty()) {
    return make_error("tee_not_found",
                      "the simulated TEE needs its quote service socket (--quote-service)");
  }
  std::error_code ec;
  if (!std::filesystem::exists(o.quote_service_socket, ec)) {
    return make_error("tee_not_found",
                      "no quote service socket at " + o.quote_service_socket.string());
  }
  return std::make_unique<SimAttester>(kind, o.quote_service_socket);
}

Result<std::unique_ptr<Attester>> tsm(TsmAttester::Kind kind, const AttesterOptions& o) {
  if (!TsmAttester::probe(kind, o)) {
    return make_error("tee_not_found",
                      std::string("no configfs-tsm report interface with provider ") +
                          (kind == TsmAttester::Kind::kTdx ? "tdx_guest" : "sev_guest") + " at " +
                          (o.tsm_entry.empty() ? o.tsm_report_dir : o.tsm_entry).string());
  }
  return std::make_unique<TsmAttester>(kind, o);
}

}  // namespace

std::vector<std::string> attester_names() {
  return {"tdx", "snp", "sgx", "sim-tdx", "sim-snp", "sim-sgx", "sample"};
}

Result<std::unique_ptr<Attester>> make_attester(std::string_view tee,
                                                const AttesterOptions& options) {
  if (tee == "sample") return std::make_unique<SampleAttester>(options.sample_svn);
  if (tee == "sim-tdx") return sim(SimAttester::Kind::kTdx, options);
  if (tee == "sim-snp") return sim(SimAttester::Kind::kSnp, options);
  if (tee == "sim-sgx") return sim(SimAttester::Kind::kSgx, options);
  if (tee == "tdx") return tsm(TsmAttester::Kind::kTdx, options);
  if (tee == "snp") return tsm(TsmAttester::Kind::kSnp, options);
  if (tee == "sgx") {
    if (!GramineSgxAttester::probe(options)) {
      return make_error("tee_not_found", "no Gramine DCAP attestation interface at " +
                                             options.gramine_attestation_dir.string());
    }
    return std::make_unique<GramineSgxAttester>(options);
  }
  if (tee.empty() || tee == "auto") return detect_attester(options);
  return make_error("unknown_tee",
                    "unknown TEE '" + std::string(tee.substr(0, 32)) +
                        "' (tdx, snp, sgx, sim-tdx, sim-snp, sim-sgx, sample, auto)");
}

Result<std::unique_ptr<Attester>> detect_attester(const AttesterOptions& options) {
  // Real hardware first; the simulated TEE only when its socket was configured; never sample.
  if (TsmAttester::probe(TsmAttester::Kind::kTdx, options))
    return std::make_unique<TsmAttester>(TsmAttester::Kind::kTdx, options);
  if (TsmAttester::probe(TsmAttester::Kind::kSnp, options))
    return std::make_unique<TsmAttester>(TsmAttester::Kind::kSnp, options);
  if (GramineSgxAttester::probe(options)) return std::make_unique<GramineSgxAttester>(options);
  if (!options.quote_service_socket.empty()) return sim(SimAttester::Kind::kTdx, options);
  return make_error("tee_not_found",
                    "no TEE found (configfs-tsm tdx_guest/sev_guest, Gramine /dev/attestation, "
                    "or a simulated TEE quote service); pass --tee explicitly");
}

}  // namespace coffer::guest::aa
