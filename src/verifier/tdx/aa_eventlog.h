// CoCo's Attestation Agent Event Log (AAEL) as TDX evidence carries it ("aa_eventlog"): text,
// first line "INIT sha384/<hex RTMR3 before the AA's first event>", then one
// "<domain> <operation> <content>" line per event. The AA extends every line, INIT included, into
// RTMR3 as SHA-384 of the line; the verifier replays them from the INIT value and compares with
// the quote's RTMR3 (the form CoCo's AA writes and Trustee's verifier replays).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "core/error.h"
#include "core/json.h"

namespace coffer::verifier::tdx {

inline constexpr std::size_t kMaxAaEventlogBytes = 4 * 1024 * 1024;
inline constexpr std::size_t kMaxAaEvents = 16 * 1024;

struct AaEvent {
  std::string domain;
  std::string operation;
  std::string content;
};

struct AaEventLog {
  Bytes init;  // 48 bytes (sha384)
  std::vector<AaEvent> events;
};

// "bad_evidence" for a malformed log: no INIT line, an algorithm other than sha384 (RTMRs are
// SHA-384), a bad hex value, an event line without exactly three space-separated fields, a field
// with non-printable bytes, too large or too many events.
Result<AaEventLog> parse_aa_eventlog(std::string_view text);

// RTMR3 as the AA's extensions leave it.
Bytes replay_aa_eventlog(const AaEventLog& log);

// The claim `aael`: {"<domain>/<operation>": ["<content>", ...]} in log order, as Trustee's.
Json aa_eventlog_claims(const AaEventLog& log);

}  // namespace coffer::verifier::tdx
