// The typed error codes of the verifiers: each table gives every enumerator one distinct
// snake_case wire string, and those strings are the ones clients already match on.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "verifier/dcap/errors.h"
#include "verifier/errors.h"
#include "verifier/snp/errors.h"

namespace coffer::verifier {
namespace {

template <typename Table>
void expect_distinct_snake_case(const Table& table) {
  std::set<std::string_view> seen;
  for (const auto& entry : table) {
    EXPECT_TRUE(seen.insert(entry.name).second) << "duplicate code " << entry.name;
    EXPECT_EQ(entry.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_"), std::string::npos)
        << entry.name;
  }
}

TEST(VerifierErrorCodes, TablesHoldDistinctSnakeCaseCodes) {
  expect_distinct_snake_case(dcap::kDcapErrorNames);
  expect_distinct_snake_case(snp::kSnpErrorNames);
  expect_distinct_snake_case(kVerifierErrorNames);
}

TEST(VerifierErrorCodes, WireStringsAreUnchanged) {
  EXPECT_EQ(dcap::code_string(dcap::DcapError::kQuoteUnsupportedQeVendor),
            "quote_unsupported_qe_vendor");
  EXPECT_EQ(dcap::code_string(dcap::DcapError::kTcbSigningCertRevoked), "tcb_signing_cert_revoked");
  EXPECT_EQ(dcap::code_string(dcap::DcapError::kCollateralFetchFailed), "collateral_fetch_failed");
  EXPECT_EQ(dcap::code_string(dcap::DcapError::kTdxModuleTcbLevelNotFound),
            "tdx_module_tcb_level_not_found");
  EXPECT_EQ(snp::code_string(snp::SnpError::kReportUnsigned), "report_unsigned");
  EXPECT_EQ(code_string(VerifierError::kReportDataMismatch), "report_data_mismatch");
  EXPECT_EQ(code_string(VerifierError::kInitDataMismatch), "init_data_mismatch");
  EXPECT_EQ(snp::code_string(snp::SnpError::kCrlUnavailable), "crl_unavailable");
  EXPECT_EQ(snp::code_string(snp::SnpError::kReportSignatureInvalid), "report_signature_invalid");
}

TEST(VerifierErrorCodes, MakeAndMatchTypedErrors) {
  auto e = make_error(snp::SnpError::kCrlUnavailable, "no CRL");
  EXPECT_EQ(e.error(), (Error{"crl_unavailable", "no CRL"}));
  EXPECT_TRUE(has_code(e.error(), snp::SnpError::kCrlUnavailable));
  EXPECT_FALSE(has_code(e.error(), snp::SnpError::kCrlFetchFailed));
  // a code from another module with a similar meaning is not the same code
  EXPECT_FALSE(has_code(Error{"crl_fetch_failed", ""}, snp::SnpError::kCrlUnavailable));
  // untyped codes still work
  EXPECT_EQ(make_error("bad_evidence", "x").error().code, "bad_evidence");
}

}  // namespace
}  // namespace coffer::verifier
