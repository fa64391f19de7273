#include "crypto/x509.h"

#include <gtest/gtest.h>

#include "core/file.h"
#include "core/test/evidence_files.h"

namespace coffer::crypto {
namespace {

const std::string kEvidence = std::string(COFFER_SOURCE_DIR) + "/testdata/evidence/";

TEST(X509, IntelRootIsSelfSignedAndPinned) {
  auto der = read_file(kEvidence + "intel_roots/Intel_SGX_Root_CA.der");
  ASSERT_TRUE(der);
  auto root = Certificate::from_der(*der);
  ASSERT_TRUE(root) << root.error().to_string();
  EXPECT_EQ(root->subject_common_name(), "Intel SGX Root CA");
  EXPECT_TRUE(root->self_issued());
  EXPECT_TRUE(root->is_ca());
  EXPECT_EQ(hex_encode(root->sha256_fingerprint()),
            "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3");
  EXPECT_TRUE(root->verify_signed_by(*root->public_key()));
  auto pem =
      Certificate::from_pem(coffer::testing::evidence_text("intel_roots/Intel_SGX_Root_CA.pem"));
  ASSERT_TRUE(pem);
  EXPECT_EQ(pem->der(), *der);
}

TEST(X509, TcbSigningChainAndCrl) {
  const std::string dir = kEvidence + "sgx/dcap-qvl/sgx_quote_collateral.split/";
  auto chain = Certificate::chain_from_pem(*read_text_file(dir + "tcb_info_issuer_chain.pem"));
  ASSERT_TRUE(chain) << chain.error().to_string();
  ASSERT_EQ(chain->size(), 2u);
  const auto& signer = (*chain)[0];
  const auto& root = (*chain)[1];
  EXPECT_TRUE(signer.verify_signed_by(*root.public_key()));
  EXPECT_EQ(signer.verify_signed_by(*signer.public_key()).error().code, "cert_signature_invalid");
  auto at = *parse_rfc3339("2025-07-01T00:00:00Z");
  EXPECT_TRUE(signer.check_validity(at));
  EXPECT_EQ(signer.check_validity(*parse_rfc3339("2070-01-01T00:00:00Z")).error().code,
            "cert_expired");
  EXPECT_EQ(signer.check_validity(*parse_rfc3339("2000-01-01T00:00:00Z")).error().code,
            "cert_not_yet_valid");

  auto crl = Crl::parse_any(*read_file(dir + "root_ca_crl.der"));
  ASSERT_TRUE(crl) << crl.error().to_string();
  EXPECT_TRUE(crl->verify_signed_by(*root.public_key()));
  EXPECT_EQ(crl->verify_signed_by(*signer.public_key()).error().code, "crl_signature_invalid");
  EXPECT_FALSE(crl->is_revoked(signer.serial()));
  EXPECT_TRUE(crl->next_update().has_value());
}

TEST(X509, RejectsMutatedAndTruncated) {
  auto der = coffer::testing::evidence_bytes("intel_roots/Intel_SGX_Root_CA.der");
  EXPECT_EQ(Certificate::from_der(ByteView(der).first(der.size() - 1)).error().code,
            "bad_certificate");
  auto mutated = der;
  mutated[der.size() - 10] ^= 0x01;  // inside the signature
  auto cert = Certificate::from_der(mutated);
  ASSERT_TRUE(cert);
  auto root = *Certificate::from_der(der);
  EXPECT_EQ(cert->verify_signed_by(*root.public_key()).error().code, "cert_signature_invalid");
  EXPECT_EQ(Certificate::chain_from_pem("garbage").error().code, "bad_certificate");
}

}  // namespace
}  // namespace coffer::crypto
