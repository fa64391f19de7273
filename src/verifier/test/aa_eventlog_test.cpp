// The attestation agent event log (AAEL) parser and replay, with hostile inputs.
#include "verifier/tdx/aa_eventlog.h"

#include <gtest/gtest.h>

#include "crypto/digest.h"

namespace coffer::verifier::tdx {
namespace {

const std::string kZero(96, '0');

Bytes extend(Bytes rtmr, const std::string& line) {
  Bytes d = crypto::sha384(as_bytes(line));
  rtmr.insert(rtmr.end(), d.begin(), d.end());
  return crypto::sha384(rtmr);
}

TEST(AaEventlog, ParsesReplaysAndGivesClaims) {
  const std::string text = "INIT sha384/" + kZero +
                           "\ngithub.com/confidential-containers PullImage {\"image\":\"a\"}\n"
                           "coffer.dev/agent CreateContainer c1\n"
                           "github.com/confidential-containers PullImage {\"image\":\"b\"}\n";
  auto log = parse_aa_eventlog(text);
  ASSERT_TRUE(log) << log.error().to_string();
  ASSERT_EQ(log->events.size(), 3U);
  Bytes rtmr(48, 0);
  rtmr = extend(rtmr, "INIT sha384/" + kZero);
  rtmr = extend(rtmr, "github.com/confidential-containers PullImage {\"image\":\"a\"}");
  rtmr = extend(rtmr, "coffer.dev/agent CreateContainer c1");
  rtmr = extend(rtmr, "github.com/confidential-containers PullImage {\"image\":\"b\"}");
  EXPECT_EQ(replay_aa_eventlog(*log), rtmr);
  Json claims = aa_eventlog_claims(*log);
  EXPECT_EQ(claims["github.com/confidential-containers/PullImage"],
            Json::array({"{\"image\":\"a\"}", "{\"image\":\"b\"}"}));
  EXPECT_EQ(claims["coffer.dev/agent/CreateContainer"], Json::array({"c1"}));
}

TEST(AaEventlog, NonZeroInitValueIsTheReplayStart) {
  const std::string init(96, 'a');
  auto log = parse_aa_eventlog("INIT sha384/" + init);
  ASSERT_TRUE(log);
  EXPECT_EQ(replay_aa_eventlog(*log), extend(*hex_decode(init), "INIT sha384/" + init));
}

TEST(AaEventlog, MalformedIsBadEvidence) {
  for (const std::string& bad : {
           std::string(""),
           std::string("d op c\n"),
           "INIT/sha384 " + kZero,                 // the spec document's spelling
           "INIT sha256/" + std::string(64, '0'),  // RTMRs are SHA-384
           "INIT sha384/" + std::string(94, '0'),  // short
           "INIT sha384/" + std::string(95, '0') + "g",
           "INIT sha384/" + kZero + "\nonly two",
           "INIT sha384/" + kZero + "\na b c d",
           "INIT sha384/" + kZero + "\na  c",
           "INIT sha384/" + kZero + "\n\na b c",  // empty line
           "INIT sha384/" + kZero + "\na b c\x01",
           "INIT sha384/" + kZero + "\na b c\r",
           "INIT sha384/" + kZero + std::string(kMaxAaEventlogBytes, '\n'),
       }) {
    auto r = parse_aa_eventlog(bad);
    ASSERT_FALSE(r) << printable_excerpt(bad, 80);
    EXPECT_EQ(r.error().code, "bad_evidence");
  }
}

}  // namespace
}  // namespace coffer::verifier::tdx
