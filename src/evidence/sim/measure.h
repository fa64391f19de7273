// The simulated TEE's measurement model (docs/simulated-tee.md). What an enclave will report is
// a pure function of what the launcher loads, so `coffer sim measure` can print reference values
// before anything runs:
//
//   component digest  D(c) = SHA-384(bytes of c)
//   MRTD (SNP MEASUREMENT) = SHA-384("coffer-sim-mrtd-v1" || kind || for each component in
//                            order: u8 tag || u32le length of name || name || D(c))
//     process enclave: tag 1 agent executable, tag 2 root filesystem manifest
//     VM:              tag 3 kernel, tag 4 initrd, tag 5 command line (UTF-8 bytes)
//   SGX MRENCLAVE = SHA-256("coffer-sim-mrenclave-v1" || kind || the same component records)
//                   (process enclaves only; MRSIGNER etc. come from the image's signature)
//   MRCONFIGID / HOST_DATA / SGX CONFIGID = init-data digest (its `algorithm`, default sha384),
//                   zero-padded
//   RTMRs start at zero and are extended as on TDX, RTMR := SHA-384(RTMR || digest); the
//   launcher extends and logs (CCEL, EV_EVENT_TAG records):
//     RTMR0 <- SHA-384("coffer-sim-firmware-v1")            (the simulated virtual firmware)
//     RTMR1 <- D(agent executable) | D(kernel)
//     RTMR2 <- D(rootfs manifest)  | D(command line), then D(initrd)
//     RTMR3    left to the enclave at run time (attestation agent extensions)
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/error.h"
#include "core/json.h"
#include "evidence/byte_reader.h"
#include "evidence/tdx/ccel.h"

namespace coffer::evidence::sim {

enum class EnclaveKind { kProcess, kVm };

struct EnclaveComponents {
  EnclaveKind kind = EnclaveKind::kProcess;
  // process
  std::optional<std::filesystem::path> agent;
  std::optional<std::filesystem::path> rootfs_manifest;
  // The agent file's SHA-384 when the caller already hashed exactly those bytes (the process
  // launcher hashes the agent once while staging it): the file is then not read again.
  std::optional<Bytes> agent_sha384;
  // vm
  std::optional<std::filesystem::path> kernel;
  std::optional<std::filesystem::path> initrd;
  std::optional<std::string> cmdline;
  // CoCo init-data TOML (its text, exactly as handed to the enclave), if any.
  std::optional<std::string> init_data;
};

struct LaunchMeasurements {
  Fixed<48> mr_td{};              // = SNP MEASUREMENT
  Fixed<48> mr_config_id{};       // init-data digest, zero-padded (zero without init-data)
  Fixed<32> host_data{};          // init-data digest for SNP (must be sha256 to fit)
  Fixed<32> mr_enclave{};         // SGX MRENCLAVE
  Fixed<64> config_id{};          // SGX CONFIGID: init-data digest, zero-padded
  bool host_data_fits = true;     // false when the init-data digest is longer than 32 bytes
  tdx::EventLogWriter event_log;  // RTMR0-2 launch events

  [[nodiscard]] const tdx::Rtmrs& rtmrs() const { return event_log.rtmrs(); }
  // Reference values as the attestation policies name them and encoded as the claims carry
  // them: tdx.mr_td, tdx.rtmr_0..3, tdx.mr_config_id (hex); snp.measurement, snp.host_data
  // (standard base64, as Trustee's SNP claims).
  [[nodiscard]] Json reference_values() const;
};

// Reads the components and computes what the enclave will report. Errors: "bad_enclave" (a
// component missing for the kind), the file errors, "bad_init_data".
Result<LaunchMeasurements> measure_enclave(const EnclaveComponents& components);

// The digest CoCo init-data binds: SHA-256/384/512 (by its `algorithm`, default sha384) of the
// TOML text as given.
Result<Bytes> init_data_digest(std::string_view toml_text);

}  // namespace coffer::evidence::sim
