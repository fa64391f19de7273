#include <gtest/gtest.h>

#include "core/file.h"
#include "core/test/evidence_files.h"
#include "evidence/snp/report.h"

namespace coffer::evidence::snp {
namespace {

TEST(SnpReport, ParsesGoSevGuestMilanV2) {
  Bytes raw = coffer::testing::evidence_bytes("snp/go-sev-guest/attestation.bin");
  auto r = parse_report(raw);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->version, 2u);
  EXPECT_EQ(hex_encode(r->measurement),
            "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0c"
            "f2e4872b01");
  EXPECT_EQ(r->reported_tcb, 0x4405000000000002u);
  auto tcb = decode_tcb(r->reported_tcb, Product::kMilan);
  EXPECT_EQ(tcb, (TcbVersion{0, 2, 0, 5, 68}));
  EXPECT_EQ(encode_tcb(tcb, Product::kMilan), r->reported_tcb);
  EXPECT_EQ(r->policy, 0xb0000u);
  EXPECT_TRUE(r->debug_allowed());
  EXPECT_EQ(hex_encode(ByteView(r->report_data).first(6)), "010203040500");
  EXPECT_EQ(hex_encode(ByteView(r->chip_id).first(4)), "3ac3fe21");
  EXPECT_EQ(hex_encode(ByteView(r->chip_id).last(4)), "8b006b5d");
  EXPECT_EQ(r->product_from_cpuid(), Product::kUnknown);
  EXPECT_EQ(serialize_report(*r), raw);
}

TEST(SnpReport, ParsesTrusteeReportsAndRoundTrips) {
  for (const char* f : {"trustee/test-report.bin", "trustee/test-vlek-report.bin"}) {
    Bytes raw = coffer::testing::evidence_bytes(std::string("snp/") + f);
    auto r = parse_report(raw);
    ASSERT_TRUE(r) << f << ": " << r.error().to_string();
    EXPECT_EQ(serialize_report(*r), raw) << f;
  }
  auto vlek = parse_report(coffer::testing::evidence_bytes("snp/trustee/test-vlek-report.bin"));
  EXPECT_EQ(vlek->version, 3u);
  EXPECT_EQ(vlek->vmpl, 1u);
  EXPECT_EQ(vlek->signing_key(), 1u);
  EXPECT_EQ(vlek->product_from_cpuid(), Product::kMilan);
}

TEST(SnpReport, TurinTcbEncoding) {
  TcbVersion t{1, 2, 3, 4, 5};
  std::uint64_t raw = encode_tcb(t, Product::kTurin);
  EXPECT_EQ(raw, 0x0500000004030201u);
  EXPECT_EQ(decode_tcb(raw, Product::kTurin), t);
}

TEST(SnpReport, RejectsBadSizesVersionsAndAlgorithms) {
  Bytes raw = coffer::testing::evidence_bytes("snp/go-sev-guest/attestation.bin");
  for (std::size_t n = 0; n < raw.size(); n += 37) {
    EXPECT_EQ(parse_report(ByteView(raw).first(n)).error().code, "report_truncated");
  }
  Bytes longer = raw;
  longer.push_back(0);
  EXPECT_EQ(parse_report(longer).error().code, "report_size_mismatch");
  Bytes m = raw;
  m[0] = 1;
  EXPECT_EQ(parse_report(m).error().code, "report_unsupported_version");
  m[0] = 6;
  EXPECT_EQ(parse_report(m).error().code, "report_unsupported_version");
  m = raw;
  m[0x34] = 2;
  EXPECT_EQ(parse_report(m).error().code, "report_unsupported_signature_algo");
}

}  // namespace
}  // namespace coffer::evidence::snp
