// The attestation agent (AA) facade: one attester, one KBS client with its token cache, and the
// runtime-measurement event log (CoCo's Attestation Agent Event Log, AAEL). Thread-safe.
//
// Event log (AAEL, guest-components attestation-agent eventlog spec, in the form CoCo's AA writes
// and Trustee's verifier replays): a text log whose first line is
// "INIT sha384/<hex RTMR3 before the first event>" and each further line
// "<domain> <operation> <content>". Every line, INIT included, is extended into RTMR3 as SHA-384
// of the line (without the newline), so RTMR3 = replay from the INIT value. The log travels with
// every TDX evidence the AA produces (to the KBS and to workloads) as the evidence member
// "aa_eventlog", as CoCo's TDX attester sends it, so the verifier replays it against the quote's
// RTMR3 and can appraise what ran.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "core/error.h"
#include "core/json.h"
#include "guest/aa/attester.h"
#include "guest/aa/kbs_client.h"
#include "guest/config.h"

namespace coffer::guest {

// The runtime measurement register AA events go to (TDX RTMR3; CoCo's AAEL uses the same).
inline constexpr std::uint32_t kAaEventRegister = 3;
// Bounds: a field of an event, and the number of events kept (the log is sent with evidence).
inline constexpr std::size_t kMaxEventFieldBytes = 4096;
inline constexpr std::size_t kMaxEvents = 4096;

// One runtime measurement event (CoCo AAEL: domain, operation, content). Each field is printable
// ASCII without spaces (the AAEL line format), at most kMaxEventFieldBytes ("bad_event").
struct MeasurementEvent {
  std::string domain;     // a URI, e.g. "coffer.dev/agent" or "github.com/confidential-containers"
  std::string operation;  // "PullImage", "CreateContainer"
  std::string content;    // compact JSON without spaces, e.g. {"image":"x","digest":"sha256:..."}

  [[nodiscard]] std::string line() const { return domain + " " + operation + " " + content; }
  bool operator==(const MeasurementEvent&) const = default;
};

// The AAEL INIT line and the whole text for `events` starting from `init` (the register's value
// when logging started).
std::string aa_event_log_init_line(ByteView init);
std::string aa_event_log_text(ByteView init, const std::vector<MeasurementEvent>& events);

class AttestationAgent {
 public:
  // The KBS URL and certificate come from `config`; kbs_options.init_data_toml is set from the
  // config's init-data when it has one. With a kbs_cert_pem and no kbs_options.ca_file the
  // certificate is written to a private temporary file for the HTTP client.
  AttestationAgent(std::unique_ptr<aa::Attester> attester, const GuestConfig& config,
                   aa::KbsClientOptions kbs_options = {});
  ~AttestationAgent();
  AttestationAgent(const AttestationAgent&) = delete;
  AttestationAgent& operator=(const AttestationAgent&) = delete;

  [[nodiscard]] std::string_view tee() const;
  // A valid KBS attestation token (cached until shortly before exp, then attests again).
  // "no_kbs" without a KBS URL.
  Result<std::string> token();
  // Evidence binding SHA-384(runtime_data) (padded to 64 bytes), with the event log
  // ("aa_eventlog") once the first event was recorded (TDX).
  Result<Json> evidence(ByteView runtime_data);
  // Extends RTMR3 with SHA-384(event.line()) and appends the event to the log, atomically with
  // respect to evidence(); the first call reads RTMR3 from a quote and extends the INIT entry.
  // "bad_event", "event_log_full"; "not_supported" on TEEs without runtime registers (SNP,
  // sample): nothing is recorded there, callers decide whether that is acceptable.
  Status extend(const MeasurementEvent& event);
  [[nodiscard]] std::vector<MeasurementEvent> event_log() const;
  // The AAEL text as sent with evidence.
  [[nodiscard]] std::string event_log_text() const;
  // kbs:///repo/type/tag or repo/type/tag, attesting when needed. "no_kbs" without a KBS URL.
  Result<Bytes> get_resource(std::string_view uri);

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace coffer::guest
