#include <gtest/gtest.h>

#include "core/file.h"
#include "core/test/evidence_files.h"
#include "crypto/digest.h"
#include "evidence/tdx/ccel.h"
#include "evidence/tdx/quote.h"

namespace coffer::evidence::tdx {
namespace {

Bytes load(const std::string& rel) { return coffer::testing::evidence_bytes(rel); }

TEST(Ccel, ParsesTrusteeTdShimLog) {
  auto log = parse_event_log(load("tdx/trustee/CCEL_data"));
  ASSERT_TRUE(log) << log.error().to_string();
  ASSERT_EQ(log->algorithms.size(), 1u);
  EXPECT_EQ(log->algorithms[0].alg, kTpmAlgSha384);
  EXPECT_EQ(log->algorithms[0].size, 48);
  EXPECT_EQ(to_string(log->vendor_info), "td-shim");
  ASSERT_EQ(log->events.size(), 5u);
  EXPECT_EQ(log->events[0].mr_index, 1u);
  EXPECT_EQ(event_type_name(log->events[0].type), "EV_PLATFORM_CONFIG_FLAGS");
  EXPECT_EQ(event_type_name(log->events[3].type), "EV_EFI_PLATFORM_FIRMWARE_BLOB2");
}

// Replay values checked independently (a few lines of Python over the same file). The log does not
// come from the TD of tdx_quote_4.dat (Trustee decodes the two together but never replays them):
// its RTMRs differ, which the TDX verifier must report as eventlog_rtmr_mismatch.
TEST(Ccel, ReplayGivesRtmr0And1) {
  auto log = parse_event_log(load("tdx/trustee/CCEL_data"));
  ASSERT_TRUE(log);
  auto rtmrs = replay_rtmrs(*log);
  ASSERT_TRUE(rtmrs) << rtmrs.error().to_string();
  EXPECT_EQ(hex_encode((*rtmrs)[0]),
            "2dc712306a963eadb894ad47dbaa17df44814151555aee11cbb843becca88950ffd079664902e6f22c66f7"
            "c8213543f4");
  EXPECT_EQ(hex_encode((*rtmrs)[1]),
            "0fa3be56af61208bbd179dc7b124988eb929319154663c539d6f46445ecac2fec287075047ff7bd192282"
            "9fec28cd3cf");
  EXPECT_EQ((*rtmrs)[2], Fixed<48>{});
  EXPECT_EQ((*rtmrs)[3], Fixed<48>{});
  auto quote = parse_quote(load("tdx/trustee/tdx_quote_4.dat"));
  ASSERT_TRUE(quote);
  EXPECT_NE((*rtmrs)[0], quote->body.rtmr[0]);
}

TEST(Ccel, SerializeRoundTripsTheRecords) {
  auto log = parse_event_log(load("tdx/trustee/CCEL_data"));
  ASSERT_TRUE(log);
  Bytes bytes = serialize_event_log(*log);
  auto again = parse_event_log(bytes);
  ASSERT_TRUE(again) << again.error().to_string();
  ASSERT_EQ(again->events.size(), log->events.size());
  for (std::size_t i = 0; i < log->events.size(); ++i) {
    EXPECT_EQ(again->events[i].data, log->events[i].data);
    EXPECT_EQ(again->events[i].digests[0].digest, log->events[i].digests[0].digest);
  }
}

TEST(Ccel, TruncatedAndInconsistentLogsAreRejected) {
  Bytes raw = load("tdx/trustee/CCEL_data");
  auto log = parse_event_log(raw);
  ASSERT_TRUE(log);
  Bytes exact = serialize_event_log(*log);
  // cut inside the last record
  Bytes cut(exact.begin(), exact.end() - 10);
  EXPECT_EQ(parse_event_log(cut).error().code, "eventlog_truncated");
  // the header must be the Spec ID event
  Bytes bad = exact;
  bad[0x20] = 'X';
  EXPECT_EQ(parse_event_log(bad).error().code, "eventlog_invalid");
  // a record digest with an algorithm the header does not declare
  Bytes alg = exact;
  alg[0x48 + 12] = 0x0B;
  EXPECT_EQ(parse_event_log(alg).error().code, "eventlog_invalid");
  EXPECT_FALSE(parse_event_log(Bytes{}));
}

TEST(Ccel, WriterTracksRtmrsAndParsesBack) {
  EventLogWriter w;
  w.append(0, kEvEfiAction, to_bytes("firmware"), to_bytes("firmware"));
  w.append(1, kEvIpl, to_bytes("kernel"), to_bytes("kernel image bytes"));
  w.append(2, kEvEventTag, to_bytes("initrd"), to_bytes("initrd bytes"));
  Bytes serialized = w.serialize();
  serialized.resize(serialized.size() + 64, 0xFF);  // the ACPI area's fill
  auto log = parse_event_log(serialized);
  ASSERT_TRUE(log) << log.error().to_string();
  EXPECT_EQ(log->events.size(), 3u);
  auto rtmrs = replay_rtmrs(*log);
  ASSERT_TRUE(rtmrs);
  EXPECT_EQ(*rtmrs, w.rtmrs());
  Fixed<48> expected{};
  extend_rtmr(expected, crypto::sha384(to_bytes("kernel image bytes")));
  EXPECT_EQ(w.rtmrs()[1], expected);
  EXPECT_EQ(w.rtmrs()[3], Fixed<48>{});
}

}  // namespace
}  // namespace coffer::evidence::tdx
