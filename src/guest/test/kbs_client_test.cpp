#include "guest/aa/kbs_client.h"

#include <gtest/gtest.h>

#include "guest/aa/sample_attester.h"
#include "guest/test/trustee_fixture.h"
#include "jose/jwt.h"

namespace coffer::guest::aa {
namespace {

using testing::TrusteeFixture;

KbsClientOptions fast_options() {
  KbsClientOptions o;
  o.initial_backoff = std::chrono::milliseconds(0);
  o.max_retries = 2;
  return o;
}

TEST(KbsClientTest, SampleAttestAndGetResource) {
  TrusteeFixture kbs;
  kbs.set_reference_value("sample.svn", Json::array({"1"}));
  kbs.put_resource("default/key/one", "top secret");
  SampleAttester attester;
  KbsClient client(kbs.url(), attester, fast_options());
  EXPECT_FALSE(client.token());
  auto token = client.attest();
  ASSERT_TRUE(token) << token.error().to_string();
  auto claims = jose::jwt_peek_claims(*token);
  ASSERT_TRUE(claims);
  EXPECT_EQ((*claims)["submods"]["cpu0"]["ear.status"], "affirming");
  EXPECT_EQ(client.token(), *token);
  auto value = client.get_resource("default/key/one");
  ASSERT_TRUE(value) << value.error().to_string();
  EXPECT_EQ(to_string(*value), "top secret");
  // The token is reused, and other spellings of the path work.
  auto again = client.get_resource("kbs:///default/key/one");
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_EQ(client.token(), *token);
}

TEST(KbsClientTest, GetResourceAttestsFirst) {
  TrusteeFixture kbs;
  kbs.set_reference_value("sample.svn", Json::array({"1"}));
  kbs.put_resource("r/t/g", "v");
  SampleAttester attester;
  KbsClient client(kbs.url(), attester, fast_options());
  auto value = client.get_resource("/r/t/g");
  ASSERT_TRUE(value) << value.error().to_string();
  EXPECT_EQ(to_string(*value), "v");
  EXPECT_TRUE(client.token());
}

TEST(KbsClientTest, PolicyDenyIsForbiddenWithDetail) {
  TrusteeFixture kbs;  // no reference value: executables is not affirming
  kbs.put_resource("r/t/g", "v");
  SampleAttester attester;
  KbsClient client(kbs.url(), attester, fast_options());
  auto value = client.get_resource("r/t/g");
  ASSERT_FALSE(value);
  EXPECT_EQ(value.error().code, "kbs_forbidden");
  EXPECT_NE(value.error().message.find("PolicyDeny"), std::string::npos) << value.error().message;
  ASSERT_TRUE(client.last_problem());
  EXPECT_EQ(client.last_problem()->status, 403);
  EXPECT_EQ(client.last_problem()->variant, "PolicyDeny");
}

TEST(KbsClientTest, RehandshakesOnceWhenTheKbsRefusesTheToken) {
  auto clock = std::make_shared<ManualClock>(std::chrono::system_clock::now());
  TrusteeFixture kbs("", true, clock);
  kbs.set_reference_value("sample.svn", Json::array({"1"}));
  kbs.put_resource("r/t/g", "v");
  SampleAttester attester;
  KbsClient client(kbs.url(), attester, fast_options());
  auto first = client.attest();
  ASSERT_TRUE(first) << first.error().to_string();
  // The KBS's time moves past the token's expiry; the client's clock does not know.
  clock->advance(std::chrono::hours(1));
  auto value = client.get_resource("r/t/g");
  ASSERT_TRUE(value) << value.error().to_string();
  EXPECT_EQ(to_string(*value), "v");
  EXPECT_NE(client.token(), *first);
}

TEST(KbsClientTest, MissingResourceIsNotFound) {
  TrusteeFixture kbs;
  kbs.set_reference_value("sample.svn", Json::array({"1"}));
  SampleAttester attester;
  KbsClient client(kbs.url(), attester, fast_options());
  auto value = client.get_resource("r/t/missing");
  ASSERT_FALSE(value);
  EXPECT_EQ(value.error().code, "kbs_not_found");
}

TEST(KbsClientTest, UnsupportedTeeIsBadRequest) {
  TrusteeFixture kbs("", /*sample=*/false);
  SampleAttester attester;
  KbsClient client(kbs.url(), attester, fast_options());
  auto token = client.attest();
  ASSERT_FALSE(token);
  EXPECT_EQ(token.error().code, "kbs_bad_request");
  EXPECT_NE(token.error().message.find("UnsupportedTee"), std::string::npos);
}

// Evidence that does not bind the runtime data is refused with the verifier's reason.
class WrongReportDataAttester final : public Attester {
 public:
  [[nodiscard]] std::string_view tee() const override { return "sample"; }
  Result<Json> evidence(ByteView /*report_data*/) override {
    Bytes zero(64, 0);
    return inner_.evidence(zero);
  }
  Status extend_runtime_measurement(std::uint32_t, ByteView, std::string_view) override {
    return ok();
  }
  Result<InitDataBinding> check_init_data(ByteView) override {
    return InitDataBinding::kUnsupported;
  }

 private:
  SampleAttester inner_;
};

TEST(KbsClientTest, UnboundEvidenceIsUnauthorized) {
  TrusteeFixture kbs;
  WrongReportDataAttester attester;
  KbsClient client(kbs.url(), attester, fast_options());
  auto token = client.attest();
  ASSERT_FALSE(token);
  EXPECT_EQ(token.error().code, "kbs_unauthorized");
  EXPECT_NE(token.error().message.find("report_data_mismatch"), std::string::npos)
      << token.error().message;
}

TEST(KbsClientTest, UnreachableAfterBoundedRetries) {
  SampleAttester attester;
  // Port 1 on loopback: connection refused.
  KbsClient client("http://127.0.0.1:1", attester, fast_options());
  auto token = client.attest();
  ASSERT_FALSE(token);
  EXPECT_EQ(token.error().code, "kbs_unreachable");
}

TEST(KbsClientTest, BadResourcePath) {
  SampleAttester attester;
  KbsClient client("http://127.0.0.1:1", attester, fast_options());
  for (const char* p : {"a/b", "a/b/c/d", "a/../c", "a//c", "a/b/.x"}) {
    auto r = client.get_resource(p);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "bad_resource_path") << p;
  }
}

TEST(KbsClientTest, SampleEvidenceRejectsWrongSize) {
  SampleAttester attester;
  Bytes short_rd(48, 0);
  auto ev = attester.evidence(short_rd);
  ASSERT_FALSE(ev);
  EXPECT_EQ(ev.error().code, "bad_report_data");
}

}  // namespace
}  // namespace coffer::guest::aa
