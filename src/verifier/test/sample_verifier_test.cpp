#include "verifier/sample/sample_verifier.h"

#include <gtest/gtest.h>

namespace coffer::verifier::sample {
namespace {

TEST(SampleVerifier, AcceptsMatchingReportData) {
  Bytes rd(48, 0xab);
  Json ev = {{"svn", "1"}, {"report_data", base64_encode(rd)}};
  SampleVerifier v;
  auto claims = v.verify({.evidence = ev, .expected_report_data = rd, .now = {}});
  ASSERT_TRUE(claims) << claims.error().to_string();
  EXPECT_EQ((*claims)["svn"], "1");
  EXPECT_EQ((*claims)["report_data"], hex_encode(rd));
}

TEST(SampleVerifier, RejectsMismatchAndMalformed) {
  Bytes rd(48, 0xab);
  Bytes other(48, 0xac);
  SampleVerifier v;
  Json ev = {{"svn", "1"}, {"report_data", base64_encode(other)}};
  EXPECT_EQ(v.verify({.evidence = ev, .expected_report_data = rd, .now = {}}).error().code,
            "report_data_mismatch");
  Json no_rd = {{"svn", "1"}};
  EXPECT_EQ(v.verify({.evidence = no_rd, .expected_report_data = rd, .now = {}}).error().code,
            "bad_evidence");
  Json bad_b64 = {{"svn", "1"}, {"report_data", "!!"}};
  EXPECT_EQ(v.verify({.evidence = bad_b64, .expected_report_data = rd, .now = {}}).error().code,
            "bad_evidence");
  Json not_obj = "x";
  EXPECT_EQ(v.verify({.evidence = not_obj, .expected_report_data = rd, .now = {}}).error().code,
            "bad_evidence");
}

}  // namespace
}  // namespace coffer::verifier::sample
