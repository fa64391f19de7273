// SEV-SNP evidence with the report as CoCo's attester serializes it (virtee/sev JSON).
#include <gtest/gtest.h>

#include "core/file.h"
#include "core/test/evidence_files.h"
#include "evidence/snp/report_json.h"
#include "verifier/snp/snp_verifier.h"

namespace coffer::verifier {
namespace {

TimePoint at(const char* t) { return *parse_rfc3339(t); }
Bytes load(const std::string& rel) { return coffer::testing::evidence_bytes(rel); }

snp::SnpVerifier milan_verifier() {
  std::map<evidence::snp::Product, snp::VendorChain> vendors;
  vendors.emplace(evidence::snp::Product::kMilan,
                  *snp::vendor_chain_from_pem(coffer::testing::evidence_text(
                      "snp/amd_roots/trustee/milan_ask_ark_asvk.pem")));
  return snp::SnpVerifier(std::make_shared<const snp::SnpChainVerifier>(vendors, nullptr));
}

Json evidence_for(const Json& report, const char* type, const std::string& cert) {
  return Json{
      {"attestation_report", report},
      {"cert_chain", Json::array({{{"cert_type", type}, {"data", base64_encode(load(cert))}}})}};
}

// The virtee/sev <= 3 shape of the same report.
Json legacy_shape(Json j) {
  j["_author_key_en"] = j["key_info"];
  j.erase("key_info");
  j["_reserved_0"] = 0;
  Json reserved = Json::array();
  for (const char* k : {"cpuid_fam_id", "cpuid_mod_id", "cpuid_step"}) {
    reserved.push_back(j[k].is_null() ? Json(0) : j[k]);
    j.erase(k);
  }
  for (int i = 0; i < 21; ++i) reserved.push_back(0);
  j["_reserved_1"] = reserved;
  for (const char* k : {"current", "committed"}) {
    std::string p(k);
    j[p + "_build"] = j[k]["build"];
    j[p + "_minor"] = j[k]["minor"];
    j[p + "_major"] = j[k]["major"];
    j.erase(k);
  }
  for (const char* k : {"current_tcb", "reported_tcb", "committed_tcb", "launch_tcb"}) {
    j[k].erase("fmc");
    j[k]["_reserved"] = Json::array({0, 0, 0, 0});
  }
  return j;
}

TEST(SnpJsonEvidence, CocoReportObjectVerifies) {
  auto v = milan_verifier();
  Bytes raw = load("snp/go-sev-guest/attestation.bin");
  auto report = *evidence::snp::parse_report(raw);
  Json obj = evidence::snp::report_to_json(report);
  auto back = evidence::snp::report_from_json(obj);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(evidence::snp::serialize_report(*back), raw);
  Bytes rd = {1, 2, 3, 4, 5};
  auto claims = v.verify({evidence_for(obj, "VCEK", "snp/go-sev-guest/vcek.testcer"), rd,
                          std::nullopt, at("2025-01-01T00:00:00Z")});
  ASSERT_TRUE(claims) << claims.error().to_string();
  EXPECT_EQ((*claims)["reported_tcb_snp"], "5");
  // the older serde shape of the same report
  auto legacy = v.verify({evidence_for(legacy_shape(obj), "VCEK", "snp/go-sev-guest/vcek.testcer"),
                          rd, std::nullopt, at("2025-01-01T00:00:00Z")});
  ASSERT_TRUE(legacy) << legacy.error().to_string();
}

TEST(SnpJsonEvidence, V3VlekReportObjectVerifies) {
  auto v = milan_verifier();
  Bytes raw = load("snp/trustee/test-vlek-report.bin");
  auto report = *evidence::snp::parse_report(raw);
  Json obj = evidence::snp::report_to_json(report);
  EXPECT_FALSE(obj["cpuid_fam_id"].is_null());
  auto claims = v.verify({evidence_for(obj, "VLEK", "snp/trustee/test-vlek.der"),
                          ByteView(report.report_data), std::nullopt, at("2025-06-01T00:00:00Z")});
  ASSERT_TRUE(claims) << claims.error().to_string();
  EXPECT_EQ((*claims)["vmpl"], 1);
}

TEST(SnpJsonEvidence, TamperedOrMalformedObjectsAreRejected) {
  auto v = milan_verifier();
  auto report = *evidence::snp::parse_report(load("snp/go-sev-guest/attestation.bin"));
  Json obj = evidence::snp::report_to_json(report);
  Bytes rd = {1, 2, 3, 4, 5};
  Json tampered = obj;
  tampered["measurement"][0] = tampered["measurement"][0].get<int>() ^ 1;
  auto r = v.verify({evidence_for(tampered, "VCEK", "snp/go-sev-guest/vcek.testcer"), rd,
                     std::nullopt, at("2025-01-01T00:00:00Z")});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "report_signature_invalid");
  for (const char* field : {"measurement", "signature", "reported_tcb", "policy"}) {
    Json missing = obj;
    missing.erase(field);
    auto m = v.verify({evidence_for(missing, "VCEK", "snp/go-sev-guest/vcek.testcer"), rd,
                       std::nullopt, at("2025-01-01T00:00:00Z")});
    ASSERT_FALSE(m) << field;
    EXPECT_EQ(m.error().code, "report_json_invalid") << field;
  }
  Json short_array = obj;
  short_array["chip_id"].erase(0);
  EXPECT_EQ(evidence::snp::report_from_json(short_array).error().code, "report_json_invalid");
  Json bad_byte = obj;
  bad_byte["host_data"][0] = 256;
  EXPECT_EQ(evidence::snp::report_from_json(bad_byte).error().code, "report_json_invalid");
  Json number = {{"attestation_report", 5}};
  EXPECT_EQ(v.verify({number, rd, std::nullopt, at("2025-01-01T00:00:00Z")}).error().code,
            "bad_evidence");
}

}  // namespace
}  // namespace coffer::verifier
