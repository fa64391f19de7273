#include "verifier/tdx/aa_eventlog.h"

#include <algorithm>

#include "crypto/digest.h"
#include "verifier/errors.h"

namespace coffer::verifier::tdx {
namespace {

std::unexpected<Error> bad(const std::string& why) {
  return make_error(std::string(code_string(VerifierError::kBadEvidence)), "aa_eventlog: " + why);
}

bool printable_no_space(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// RTMR := SHA-384(RTMR || SHA-384(line)) (TDG.MR.RTMR.EXTEND with the line's digest).
void extend(Bytes& rtmr, std::string_view line) {
  Bytes input = rtmr;
  Bytes d = crypto::sha384(as_bytes(line));
  input.insert(input.end(), d.begin(), d.end());
  rtmr = crypto::sha384(input);
}

std::string init_line(ByteView init) { return "INIT sha384/" + hex_encode(init); }

}  // namespace

Result<AaEventLog> parse_aa_eventlog(std::string_view text) {
  if (text.size() > kMaxAaEventlogBytes)
    return bad("over " + std::to_string(kMaxAaEventlogBytes) + " bytes");
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  if (lines.empty()) return bad("empty");
  if (lines.size() - 1 > kMaxAaEvents)
    return bad("more than " + std::to_string(kMaxAaEvents) + " events");

  // 1. INIT sha384/<hex>
  constexpr std::string_view kInit = "INIT sha384/";
  if (!lines[0].starts_with("INIT ")) return bad("the first line is not the INIT entry");
  if (!lines[0].starts_with(kInit)) return bad("INIT algorithm must be sha384 (RTMRs are SHA-384)");
  auto init = hex_decode(lines[0].substr(kInit.size()));
  if (!init || init->size() != 48) return bad("INIT value must be 48 bytes of hex");
  AaEventLog log;
  log.init = std::move(*init);

  // 2. events: exactly three printable fields separated by single spaces
  for (std::size_t i = 1; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    auto a = line.find(' ');
    auto b = a == std::string_view::npos ? a : line.find(' ', a + 1);
    if (a == std::string_view::npos || b == std::string_view::npos ||
        line.find(' ', b + 1) != std::string_view::npos)
      return bad("event " + std::to_string(i) + " is not \"<domain> <operation> <content>\"");
    AaEvent e{std::string(line.substr(0, a)), std::string(line.substr(a + 1, b - a - 1)),
              std::string(line.substr(b + 1))};
    if (!printable_no_space(e.domain) || !printable_no_space(e.operation) ||
        !printable_no_space(e.content))
      return bad("event " + std::to_string(i) + " has an empty or non-printable field");
    log.events.push_back(std::move(e));
  }
  return log;
}

Bytes replay_aa_eventlog(const AaEventLog& log) {
  Bytes rtmr = log.init;
  extend(rtmr, init_line(log.init));
  for (const auto& e : log.events) extend(rtmr, e.domain + " " + e.operation + " " + e.content);
  return rtmr;
}

Json aa_eventlog_claims(const AaEventLog& log) {
  Json claims = Json::object();
  for (const auto& e : log.events) {
    Json& list = claims[e.domain + "/" + e.operation];
    if (list.is_null()) list = Json::array();
    list.push_back(e.content);
  }
  return claims;
}

}  // namespace coffer::verifier::tdx
