#include "crypto/der.h"

#include <gtest/gtest.h>

namespace coffer::crypto {
namespace {

TEST(Der, ReadsSequenceOfOidAndInteger) {
  // SEQUENCE { OID 1.2.840.113741.1.13.1.2.17, INTEGER 300 }
  Bytes fixed = *hex_decode(
      "3011060b2a864886f84d010d010211020201"
      "2c");
  DerReader outer(fixed);
  auto seq = outer.expect(der_tag::kSequence);
  ASSERT_TRUE(seq) << seq.error().to_string();
  DerReader inner(*seq);
  auto oid = inner.expect(der_tag::kOid);
  ASSERT_TRUE(oid);
  EXPECT_EQ(*der_oid_to_string(*oid), "1.2.840.113741.1.13.1.2.17");
  auto i = inner.expect(der_tag::kInteger);
  ASSERT_TRUE(i);
  EXPECT_EQ(*der_to_uint(*i), 300u);
  EXPECT_TRUE(inner.empty());
  EXPECT_TRUE(outer.empty());
}

TEST(Der, RejectsTruncatedAndWrongTags) {
  Bytes fixed = *hex_decode(
      "3011060b2a864886f84d010d010211020201"
      "2c");
  for (std::size_t n = 0; n < fixed.size(); ++n) {
    DerReader r(ByteView(fixed).first(n));
    EXPECT_FALSE(r.expect(der_tag::kSequence)) << n;
  }
  DerReader r(fixed);
  EXPECT_EQ(r.expect(der_tag::kInteger).error().code, "bad_der");
  Bytes neg = {0x80};
  EXPECT_FALSE(der_to_uint(neg));
  Bytes big = {0x01, 0, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_FALSE(der_to_uint(big));
  Bytes lead = {0x00, 0xff};
  EXPECT_EQ(*der_to_uint(lead), 255u);
}

}  // namespace
}  // namespace coffer::crypto
