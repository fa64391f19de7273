// The attester side of remote attestation: one Attester per TEE kind produces evidence that binds
// 64 bytes of report data chosen by the caller (the RCAR client puts the SHA-384 of the KBS
// runtime data there), extends runtime measurement registers and checks that the enclave was
// launched with a given init-data digest.
//
// Attesters are chosen explicitly (make_attester("sim-tdx", ...)) or by probing real devices
// (detect_attester); when nothing is found that is an error, never a silent fallback to "sample".
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "core/error.h"
#include "core/json.h"

namespace coffer::guest::aa {

// Size of the report data every attester accepts (TDX REPORTDATA, SNP REPORT_DATA).
inline constexpr std::size_t kReportDataSize = 64;

// Result of an init-data binding check when it does not fail.
enum class InitDataBinding {
  kMatches,      // the TEE's init-data register (MRCONFIGID, HOST_DATA) equals the digest
  kUnsupported,  // this TEE has no such register (sample): nothing was checked
};

class Attester {
 public:
  virtual ~Attester() = default;

  // The KBS protocol TEE name: "sample", "tdx", "snp", "sgx" (sim-tdx reports "tdx").
  [[nodiscard]] virtual std::string_view tee() const = 0;

  // Evidence JSON (tee-evidence.primary_evidence) binding `report_data`, which must be exactly
  // kReportDataSize bytes ("bad_report_data" otherwise).
  virtual Result<Json> evidence(ByteView report_data) = 0;

  // Extends runtime measurement register `index` with a 48-byte SHA-384 `digest` and records the
  // event (`description`) in the TEE's event log. "not_supported" when the TEE has none.
  virtual Status extend_runtime_measurement(std::uint32_t index, ByteView digest,
                                            std::string_view description) = 0;

  // Compares `digest` (the init-data digest, zero-padded by the TEE to its register size) with
  // the TEE's init-data register; "init_data_mismatch" when they differ.
  virtual Result<InitDataBinding> check_init_data(ByteView digest) = 0;
};

struct AttesterOptions {
  // configfs-tsm report directory root (tdx, snp): a fresh entry is created below it per report.
  std::filesystem::path tsm_report_dir = "/sys/kernel/config/tsm/report";
  // An existing report entry to use as is instead of creating one (tests: a prepared directory).
  std::filesystem::path tsm_entry;
  // TDX: the CC event log firmware publishes (sent as cc_eventlog when readable), and the
  // kernel's RTMR extension files (rtmr<N>:sha384).
  std::filesystem::path ccel_path = "/sys/firmware/acpi/tables/data/CCEL";
  std::filesystem::path tdx_measurements_dir = "/sys/class/misc/tdx_guest/measurements";
  // Gramine's attestation pseudo-filesystem (sgx).
  std::filesystem::path gramine_attestation_dir = "/dev/attestation";
  // Unix socket of the simulated TEE's quote service (sim-tdx, sim-snp, sim-sgx).
  std::filesystem::path quote_service_socket;
  // sample: the svn the evidence claims.
  std::string sample_svn = "1";
};

// The TEE names make_attester accepts.
std::vector<std::string> attester_names();

// "sample", "tdx", "snp", "sgx", "sim-tdx", "sim-snp", "sim-sgx", or "auto"/"" for
// detect_attester.
// Errors: "unknown_tee", "tee_not_found" (device or socket missing), the attester's own.
Result<std::unique_ptr<Attester>> make_attester(std::string_view tee,
                                                const AttesterOptions& options = {});

// Probes, in order: configfs-tsm (provider tdx_guest / sev_guest), Gramine /dev/attestation,
// the quote service socket when one is configured. "tee_not_found" when none is present.
Result<std::unique_ptr<Attester>> detect_attester(const AttesterOptions& options = {});

}  // namespace coffer::guest::aa
