#include "runtime/appenclave/key_handover.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>

#include "core/json.h"
#include "core/test/temp_dir.h"
#include "runtime/appenclave/test/sim_platform.h"

namespace coffer::runtime::appenclave {
namespace {

using evidence::sim::QuoteServiceClient;
using evidence::sim::SgxIdentity;

using test::fixed32;
using test::identity;

// One simulated enclave named after its socket in `dir`.
class Enclave : public test::SimEnclave {
 public:
  Enclave(const std::filesystem::path& dir, const std::string& name, const SgxIdentity& id)
      : SimEnclave(dir / (name + ".sock"), id) {}
};

BundleKey sample_key() {
  BundleKey k;
  k.key = Bytes(32, 0x6b);
  k.key[0] = 1;
  k.generation = 0x0102030405060708ULL;
  return k;
}

class KeyHandoverTest : public ::testing::Test {
 protected:
  coffer::testing::TempDir dir_;
  Enclave agent_{dir_.path(), "agent", identity(0xa1)};
  Enclave app_{dir_.path(), "app", identity(0xa2)};
};

TEST_F(KeyHandoverTest, SelfIdentityIsTheEnclavesOwn) {
  auto id = self_identity(app_.qs());
  ASSERT_TRUE(id) << id.error().to_string();
  EXPECT_EQ(id->mr_enclave, fixed32(0xa2));
  EXPECT_EQ(id->mr_signer, fixed32(0x51));
  EXPECT_EQ(id->isv_prod_id, 7);
  EXPECT_EQ(id->isv_svn, 3);
  EXPECT_EQ(id->flags, 0x5U);  // INIT | MODE64BIT

  SgxIdentity dbg = identity(0xa3);
  dbg.flags |= 0x2;
  Enclave debug(dir_.path(), "debug", dbg);
  EXPECT_EQ(self_identity(debug.qs()).value().flags, 0x7U);

  QuoteServiceClient nobody(dir_.path() / "none.sock");
  EXPECT_EQ(self_identity(nobody).error().code, "quote_service_unavailable");
}

TEST_F(KeyHandoverTest, SealedByAgentUnsealedByAppOfTheSameSigner) {
  auto text = seal_bundle_key(agent_.qs(), "bundle-1", sample_key());
  ASSERT_TRUE(text) << text.error().to_string();
  auto doc = parse_json(*text).value();
  EXPECT_EQ(doc["format"], "coffer-efs-sealed-key-v1");
  EXPECT_EQ(doc["policy"], "mrsigner");
  EXPECT_EQ(doc["isv_svn"], 3);
  EXPECT_EQ(doc["key_id"].get<std::string>().size(), 64U);
  // The key is not in the file.
  EXPECT_EQ(text->find(hex_encode(sample_key().key)), std::string::npos);
  EXPECT_EQ(text->find(base64_encode(sample_key().key)), std::string::npos);

  auto key = unseal_bundle_key(app_.qs(), "bundle-1", *text);
  ASSERT_TRUE(key) << key.error().to_string();
  EXPECT_EQ(key->key, sample_key().key);
  EXPECT_EQ(key->generation, sample_key().generation);

  // A random key id each time.
  auto again = seal_bundle_key(agent_.qs(), "bundle-1", sample_key()).value();
  EXPECT_NE(parse_json(again).value()["key_id"], doc["key_id"]);

  // A newer version of the app (higher ISVSVN) still unseals.
  Enclave newer(dir_.path(), "newer", identity(0xa4, 0x51, 7, 4));
  EXPECT_TRUE(unseal_bundle_key(newer.qs(), "bundle-1", *text));

  BundleKey short_key = sample_key();
  short_key.key.resize(31);
  EXPECT_EQ(seal_bundle_key(agent_.qs(), "bundle-1", short_key).error().code, "bad_key");
}

TEST_F(KeyHandoverTest, AnotherSignerOrProductCannotUnseal) {
  auto text = seal_bundle_key(agent_.qs(), "bundle-1", sample_key()).value();
  Enclave other_signer(dir_.path(), "signer", identity(0xa2, 0x52));
  EXPECT_EQ(unseal_bundle_key(other_signer.qs(), "bundle-1", text).error().code, "unseal_failed");
  Enclave other_product(dir_.path(), "product", identity(0xa2, 0x51, 8));
  EXPECT_EQ(unseal_bundle_key(other_product.qs(), "bundle-1", text).error().code, "unseal_failed");
  SgxIdentity dbg = identity(0xa2);
  dbg.flags |= 0x2;
  Enclave debug(dir_.path(), "debug", dbg);
  EXPECT_EQ(unseal_bundle_key(debug.qs(), "bundle-1", text).error().code, "unseal_failed");
}

TEST_F(KeyHandoverTest, AlteredSealedFileOrOtherBundleIsRefused) {
  auto text = seal_bundle_key(agent_.qs(), "bundle-1", sample_key()).value();
  EXPECT_EQ(unseal_bundle_key(app_.qs(), "bundle-2", text).error().code, "unseal_failed");

  Json doc = parse_json(text).value();
  Bytes ct = base64_decode(doc["ciphertext"].get<std::string>()).value();
  for (std::size_t at : {std::size_t{0}, std::size_t{31}, std::size_t{39}, ct.size() - 1}) {
    Bytes t = ct;
    t[at] ^= 1;
    Json d = doc;
    d["ciphertext"] = base64_encode(t);
    EXPECT_EQ(unseal_bundle_key(app_.qs(), "bundle-1", d.dump()).error().code, "unseal_failed")
        << at;
  }
  Json d = doc;
  Bytes nonce = base64_decode(doc["nonce"].get<std::string>()).value();
  nonce[0] ^= 1;
  d["nonce"] = base64_encode(nonce);
  EXPECT_EQ(unseal_bundle_key(app_.qs(), "bundle-1", d.dump()).error().code, "unseal_failed");
  d = doc;
  std::string kid = doc["key_id"];
  kid[0] = kid[0] == '0' ? '1' : '0';
  d["key_id"] = kid;
  EXPECT_EQ(unseal_bundle_key(app_.qs(), "bundle-1", d.dump()).error().code, "unseal_failed");
  // An older SVN in the file is allowed by the platform but gives another key.
  d = doc;
  d["isv_svn"] = 2;
  EXPECT_EQ(unseal_bundle_key(app_.qs(), "bundle-1", d.dump()).error().code, "unseal_failed");
}

TEST_F(KeyHandoverTest, HigherSvnInTheFileIsRefusedByThePlatform) {
  Enclave newer(dir_.path(), "newer", identity(0xa4, 0x51, 7, 4));
  auto text = seal_bundle_key(newer.qs(), "bundle-1", sample_key()).value();
  EXPECT_EQ(parse_json(text).value()["isv_svn"], 4);
  EXPECT_EQ(unseal_bundle_key(app_.qs(), "bundle-1", text).error().code, "svn_too_high");
}

TEST_F(KeyHandoverTest, MalformedSealedFileIsBadSealedKey) {
  Json doc = parse_json(seal_bundle_key(agent_.qs(), "bundle-1", sample_key()).value()).value();
  auto code = [&](const std::string& text) {
    auto r = unseal_bundle_key(app_.qs(), "bundle-1", text);
    return r ? std::string("ok") : r.error().code;
  };
  EXPECT_EQ(code(""), "bad_sealed_key");
  EXPECT_EQ(code("[]"), "bad_sealed_key");
  EXPECT_EQ(code(std::string(5000, ' ') + doc.dump()), "bad_sealed_key");  // too large
  std::string dup = doc.dump();
  dup.insert(1, "\"policy\":\"mrsigner\",");
  EXPECT_EQ(code(dup), "bad_sealed_key");
  auto with = [&](const std::string& name, const Json& value) {
    Json d = doc;
    if (value.is_discarded()) {
      d.erase(name);
    } else {
      d[name] = value;
    }
    return code(d.dump());
  };
  const Json kDrop = Json::value_t::discarded;
  EXPECT_EQ(with("format", "coffer-efs-sealed-key-v2"), "bad_sealed_key");
  EXPECT_EQ(with("format", kDrop), "bad_sealed_key");
  EXPECT_EQ(with("policy", "mrenclave"), "bad_sealed_key");
  EXPECT_EQ(with("isv_svn", -1), "bad_sealed_key");
  EXPECT_EQ(with("isv_svn", 65536), "bad_sealed_key");
  EXPECT_EQ(with("isv_svn", "3"), "bad_sealed_key");
  EXPECT_EQ(with("key_id", "00"), "bad_sealed_key");
  EXPECT_EQ(with("key_id", std::string(64, 'g')), "bad_sealed_key");
  EXPECT_EQ(with("nonce", base64_encode(Bytes(11))), "bad_sealed_key");
  EXPECT_EQ(with("nonce", "!!!"), "bad_sealed_key");
  EXPECT_EQ(with("ciphertext", base64_encode(Bytes(55))), "bad_sealed_key");
  EXPECT_EQ(with("ciphertext", kDrop), "bad_sealed_key");
  EXPECT_EQ(with("extra", 1), "bad_sealed_key");
  EXPECT_EQ(code(doc.dump()), "ok");
}

TEST_F(KeyHandoverTest, LocalAttestationRoundTrip) {
  auto requester = KeyRequester::create(app_.qs(), "bundle-1", fixed32(0xa1));
  ASSERT_TRUE(requester) << requester.error().to_string();
  EXPECT_EQ(requester->request().report.size(), 432U);
  EXPECT_EQ(requester->request().public_key.size(), 65U);
  auto response = answer_key_request(agent_.qs(), "bundle-1", requester->request(), sample_key());
  ASSERT_TRUE(response) << response.error().to_string();
  EXPECT_EQ(response->ciphertext.size(), 12U + 40U + 16U);
  auto key = requester->accept(app_.qs(), *response);
  ASSERT_TRUE(key) << key.error().to_string();
  EXPECT_EQ(key->key, sample_key().key);
  EXPECT_EQ(key->generation, sample_key().generation);
}

TEST_F(KeyHandoverTest, RequestReportForAnotherTargetIsRefused) {
  // The host names another MRENCLAVE: the agent's report key does not verify the MAC.
  auto requester = KeyRequester::create(app_.qs(), "bundle-1", fixed32(0xee)).value();
  EXPECT_EQ(
      answer_key_request(agent_.qs(), "bundle-1", requester.request(), sample_key()).error().code,
      "report_mac_mismatch");
  // A report made for the agent is not accepted by another enclave either.
  auto good = KeyRequester::create(app_.qs(), "bundle-1", fixed32(0xa1)).value();
  Enclave third(dir_.path(), "third", identity(0xa5));
  EXPECT_EQ(answer_key_request(third.qs(), "bundle-1", good.request(), sample_key()).error().code,
            "report_mac_mismatch");
  // The agent's answer verified by someone else than the requester.
  auto response = answer_key_request(agent_.qs(), "bundle-1", good.request(), sample_key()).value();
  EXPECT_EQ(third.qs().verify_report(response.report).error().code, "report_mac_mismatch");
}

TEST_F(KeyHandoverTest, RequesterOfAnotherSignerOrProductOrDebugIsRefused) {
  Enclave other_signer(dir_.path(), "signer", identity(0xa2, 0x52));
  auto r1 = KeyRequester::create(other_signer.qs(), "bundle-1", fixed32(0xa1)).value();
  EXPECT_EQ(answer_key_request(agent_.qs(), "bundle-1", r1.request(), sample_key()).error().code,
            "peer_refused");
  Enclave other_product(dir_.path(), "product", identity(0xa2, 0x51, 8));
  auto r2 = KeyRequester::create(other_product.qs(), "bundle-1", fixed32(0xa1)).value();
  EXPECT_EQ(answer_key_request(agent_.qs(), "bundle-1", r2.request(), sample_key()).error().code,
            "peer_refused");
  SgxIdentity dbg = identity(0xa2);
  dbg.flags |= 0x2;
  Enclave debug(dir_.path(), "debug", dbg);
  auto r3 = KeyRequester::create(debug.qs(), "bundle-1", fixed32(0xa1)).value();
  EXPECT_EQ(answer_key_request(agent_.qs(), "bundle-1", r3.request(), sample_key()).error().code,
            "peer_refused");
  // The app refuses an answer from an enclave of another signer as well.
  Enclave rogue_agent(dir_.path(), "rogue", identity(0xa2, 0x52));
  // The rogue answers with a REPORT for the app (it cannot verify the request: it is not its
  // target, so it forges the answer from scratch with its own quote service).
  KeyRequester r5 = KeyRequester::create(app_.qs(), "bundle-1", fixed32(0xa2)).value();
  KeyResponse forged;
  forged.public_key = r5.request().public_key;
  forged.ciphertext = Bytes(68, 1);
  forged.report = rogue_agent.qs().report(fixed32(0xa2), Bytes(32, 0)).value();
  EXPECT_EQ(r5.accept(app_.qs(), forged).error().code, "peer_refused");
}

TEST_F(KeyHandoverTest, SwappedPublicKeyOrOtherBundleInTransitIsRefused) {
  auto requester = KeyRequester::create(app_.qs(), "bundle-1", fixed32(0xa1)).value();
  // The host replaces the app's public key by its own.
  auto host_key = KeyRequester::create(app_.qs(), "bundle-1", fixed32(0xa1)).value();
  KeyRequest swapped = requester.request();
  swapped.public_key = host_key.request().public_key;
  EXPECT_EQ(answer_key_request(agent_.qs(), "bundle-1", swapped, sample_key()).error().code,
            "peer_refused");
  // The request names another bundle.
  EXPECT_EQ(
      answer_key_request(agent_.qs(), "bundle-2", requester.request(), sample_key()).error().code,
      "peer_refused");
  // The host replaces the agent's public key in the answer.
  auto response =
      answer_key_request(agent_.qs(), "bundle-1", requester.request(), sample_key()).value();
  KeyResponse r = response;
  r.public_key = host_key.request().public_key;
  EXPECT_EQ(requester.accept(app_.qs(), r).error().code, "peer_refused");
  // The answer to another request (another public key) does not open for this one.
  auto other =
      answer_key_request(agent_.qs(), "bundle-1", host_key.request(), sample_key()).value();
  EXPECT_EQ(requester.accept(app_.qs(), other).error().code, "peer_refused");
}

TEST_F(KeyHandoverTest, TamperedResponseOrRequestIsRefused) {
  auto requester = KeyRequester::create(app_.qs(), "bundle-1", fixed32(0xa1)).value();
  auto response =
      answer_key_request(agent_.qs(), "bundle-1", requester.request(), sample_key()).value();
  for (std::size_t at : {std::size_t{0}, std::size_t{12}, std::size_t{67}}) {
    KeyResponse r = response;
    r.ciphertext[at] ^= 1;
    EXPECT_EQ(requester.accept(app_.qs(), r).error().code, "peer_refused") << at;
  }
  for (std::size_t at :
       {std::size_t{64}, std::size_t{128}, std::size_t{320}, std::size_t{400}, std::size_t{431}}) {
    KeyResponse r = response;
    r.report[at] ^= 1;
    EXPECT_EQ(requester.accept(app_.qs(), r).error().code, "report_mac_mismatch") << at;
  }
  KeyResponse r = response;
  r.ciphertext.pop_back();
  EXPECT_EQ(requester.accept(app_.qs(), r).error().code, "bad_key_response");
  r = response;
  r.public_key[0] = 0x02;
  EXPECT_EQ(requester.accept(app_.qs(), r).error().code, "bad_key_response");
  r = response;
  r.public_key[64] ^= 1;  // not on the curve
  EXPECT_EQ(requester.accept(app_.qs(), r).error().code, "bad_key_response");
  r = response;
  r.report.resize(431);
  EXPECT_EQ(requester.accept(app_.qs(), r).error().code, "bad_key_response");

  KeyRequest q = requester.request();
  q.report[320] ^= 1;  // report data
  EXPECT_EQ(answer_key_request(agent_.qs(), "bundle-1", q, sample_key()).error().code,
            "report_mac_mismatch");
  q = requester.request();
  q.report.resize(100);
  EXPECT_EQ(answer_key_request(agent_.qs(), "bundle-1", q, sample_key()).error().code,
            "bad_key_request");
  q = requester.request();
  q.public_key.resize(33);
  EXPECT_EQ(answer_key_request(agent_.qs(), "bundle-1", q, sample_key()).error().code,
            "bad_key_request");
  q = requester.request();
  q.public_key[64] ^= 1;
  EXPECT_EQ(answer_key_request(agent_.qs(), "bundle-1", q, sample_key()).error().code,
            "bad_key_request");
}

}  // namespace
}  // namespace coffer::runtime::appenclave
