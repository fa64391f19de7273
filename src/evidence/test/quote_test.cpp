#include <gtest/gtest.h>

#include "core/file.h"
#include "evidence/sgx/quote.h"
#include "evidence/tdx/quote.h"

namespace coffer::evidence {
namespace {

const std::string kEvidence = std::string(COFFER_SOURCE_DIR) + "/testdata/evidence/";

Bytes load(const std::string& rel) {
  auto b = read_file(kEvidence + rel);
  EXPECT_TRUE(b) << rel;
  return b ? *b : Bytes{};
}

std::string hex(ByteView b) { return hex_encode(b); }

struct TdxCase {
  const char* file;
  std::uint16_t version;
  std::uint16_t body_type;
  std::size_t trailing;
  bool trailing_zeros;
};

void PrintTo(const TdxCase& c, std::ostream* os) { *os << c.file; }

class TdxQuotes : public ::testing::TestWithParam<TdxCase> {};

TEST_P(TdxQuotes, ParseAndSerializeRoundTrip) {
  const auto& c = GetParam();
  Bytes raw = load(c.file);
  auto q = tdx::parse_quote(raw);
  ASSERT_TRUE(q) << q.error().to_string();
  EXPECT_EQ(q->header.version, c.version);
  EXPECT_EQ(q->body_type, c.body_type);
  Bytes out = tdx::serialize_quote(*q);
  ASSERT_EQ(out.size() + c.trailing, raw.size());
  EXPECT_TRUE(std::equal(out.begin(), out.end(), raw.begin()));
  if (c.trailing_zeros) {
    for (std::size_t i = out.size(); i < raw.size(); ++i) EXPECT_EQ(raw[i], 0) << i;
  }
  Bytes signed_region = tdx::serialize_signed_region(*q);
  EXPECT_EQ(signed_region.size(), q->signed_size());
  EXPECT_TRUE(std::equal(signed_region.begin(), signed_region.end(), raw.begin()));
}

INSTANTIATE_TEST_SUITE_P(
    RealQuotes, TdxQuotes,
    ::testing::Values(TdxCase{"tdx/dcap-qvl/tdx_quote", 4, 2, 70, true},
                      TdxCase{"tdx/trustee/tdx_quote_4.dat", 4, 2, 0, true},
                      TdxCase{"tdx/go-tdx-guest/tdx_prod_quote_SPR_E4.dat", 4, 2, 39, false},
                      TdxCase{"tdx/go-tdx-guest/quote_v5_sample.dat", 5, 3, 0, true},
                      TdxCase{"tdx/trustee/tdx_quote_5.dat", 5, 3, 0, true},
                      TdxCase{"tdx/trustee/td-quote.bin", 4, 2, 70, true},
                      TdxCase{"tdx/trustee/tdx_quote_6.dat", 4, 2, 70, true},
                      TdxCase{"tdx/go-tdx-guest/ccel/cos-113-tdx-quote.dat", 4, 2, 3065, true}));

TEST(TdxQuote, FieldsAtSpecOffsets) {
  Bytes raw = load("tdx/trustee/tdx_quote_4.dat");
  auto q = tdx::parse_quote(raw);
  ASSERT_TRUE(q);
  EXPECT_EQ(hex(q->body.mr_td),
            "705ee9381b8633a9fbe532b52345e8433343d2868959f57889d84ca377c395b689cac1599ccea1b7d4204"
            "83a9ce5f031");
  EXPECT_TRUE(std::equal(q->body.mr_td.begin(), q->body.mr_td.end(), raw.begin() + 0xB8));
  EXPECT_TRUE(std::equal(q->body.rtmr[3].begin(), q->body.rtmr[3].end(), raw.begin() + 0x208));
  EXPECT_TRUE(
      std::equal(q->body.report_data.begin(), q->body.report_data.end(), raw.begin() + 0x238));
  EXPECT_TRUE(q->body.debug());
  EXPECT_EQ(q->header.qe_vendor_id, sgx::kIntelQeVendorId);
  EXPECT_EQ(q->signature_data.qe.certification_data_type, sgx::kCertDataPckChain);
  EXPECT_TRUE(std::equal(q->signature_data.attestation_key.begin(),
                         q->signature_data.attestation_key.end(), raw.begin() + 0x2BC));
}

TEST(TdxQuote, V5Tdx15BodyHasServiceTdFields) {
  auto q = tdx::parse_quote(load("tdx/go-tdx-guest/quote_v5_sample.dat"));
  ASSERT_TRUE(q);
  EXPECT_TRUE(q->body.tee_tcb_svn2.has_value());
  EXPECT_TRUE(q->body.mr_servicetd.has_value());
  EXPECT_EQ(q->signed_size(), 48u + 6u + 648u);
}

TEST(TdxQuote, ListedMutationsAreRejectedWithSpecificErrors) {
  Bytes raw = load("tdx/go-tdx-guest/tdx_prod_quote_SPR_E4.dat");
  auto m = raw;
  m[0x00] = 3;
  EXPECT_EQ(tdx::parse_quote(m).error().code, "quote_unsupported_version");
  m = raw;
  m[0x278] = 0x10;
  EXPECT_EQ(tdx::parse_quote(m).error().code, "quote_signature_data_size_mismatch");
  m = raw;
  m[0x02] = 3;
  EXPECT_EQ(tdx::parse_quote(m).error().code, "quote_unsupported_key_type");
  m = raw;
  m[0x04] = 0;
  EXPECT_EQ(tdx::parse_quote(m).error().code, "quote_unsupported_tee_type");
  m = raw;
  m[0x2FC] = 5;  // certification data type 6 -> 5
  EXPECT_EQ(tdx::parse_quote(m).error().code, "quote_unsupported_certification_data");
}

TEST(TdxQuote, V5BodyDescriptorChecked) {
  Bytes raw = load("tdx/go-tdx-guest/quote_v5_sample.dat");
  auto m = raw;
  m[0x30] = 1;
  EXPECT_EQ(tdx::parse_quote(m).error().code, "quote_unsupported_body_type");
  m = raw;
  m[0x32] ^= 0x01;
  EXPECT_EQ(tdx::parse_quote(m).error().code, "quote_body_size_mismatch");
}

TEST(TdxQuote, EveryTruncationIsRejected) {
  Bytes raw = load("tdx/go-tdx-guest/tdx_prod_quote_SPR_E4.dat");
  std::size_t end = raw.size() - 39;
  for (std::size_t n = 0; n < end; n += (n < 0x400 ? 1 : 13)) {
    auto r = tdx::parse_quote(ByteView(raw).first(n));
    ASSERT_FALSE(r) << n;
    EXPECT_TRUE(r.error().code == "quote_truncated" ||
                r.error().code == "quote_signature_data_size_mismatch")
        << n << " " << r.error().code;
  }
  EXPECT_TRUE(tdx::parse_quote(ByteView(raw).first(end)));
}

TEST(SgxQuote, ParsesV3AndRoundTrips) {
  for (const char* f : {"sgx/dcap-qvl/sgx_quote", "sgx/trustee/occlum_quote.dat"}) {
    Bytes raw = load(f);
    auto q = sgx::parse_quote(raw);
    ASSERT_TRUE(q) << f << ": " << q.error().to_string();
    Bytes out = sgx::serialize_quote(*q);
    ASSERT_LE(out.size(), raw.size());
    EXPECT_TRUE(std::equal(out.begin(), out.end(), raw.begin())) << f;
  }
  auto q = sgx::parse_quote(load("sgx/dcap-qvl/sgx_quote"));
  EXPECT_EQ(hex(q->body.mr_enclave),
            "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb");
  EXPECT_EQ(to_string(ByteView(q->body.report_data).first(13)), "Hello, world!");
  auto occlum = sgx::parse_quote(load("sgx/trustee/occlum_quote.dat"));
  EXPECT_EQ(hex(occlum->body.mr_enclave),
            "8f173e4613ff05c52aaf04162d234edae8c9977eae47eb2299ae16a553011c68");
  EXPECT_EQ(occlum->qe_svn(), 8);
  EXPECT_EQ(occlum->pce_svn(), 13);
}

TEST(SgxQuote, RejectsTdxAndTruncated) {
  EXPECT_EQ(sgx::parse_quote(load("tdx/trustee/tdx_quote_4.dat")).error().code,
            "quote_unsupported_version");
  EXPECT_EQ(tdx::parse_quote(load("sgx/dcap-qvl/sgx_quote")).error().code,
            "quote_unsupported_version");
  Bytes raw = load("sgx/dcap-qvl/sgx_quote");
  for (std::size_t n = 0; n < 0x700; n += 3) EXPECT_FALSE(sgx::parse_quote(ByteView(raw).first(n)));
}

}  // namespace
}  // namespace coffer::evidence
