#include <gtest/gtest.h>
#include <sys/stat.h>

#include "core/file.h"
#include "crypto/digest.h"
#include "evidence/sim/measure.h"
#include "evidence/sim/quote_service.h"
#include "evidence/sim/sim_tee.h"
#include "evidence/sim/test/sim_test_util.h"
#include "evidence/snp/report.h"
#include "evidence/tdx/ccel.h"
#include "evidence/tdx/quote.h"
#include "verifier/dcap/collateral_source.h"
#include "verifier/dcap/dcap_verifier.h"
#include "verifier/snp/snp_verifier.h"
#include "verifier/tdx/tdx_verifier.h"

namespace coffer::evidence::sim {
namespace {

using testing::shared_pki;
using testing::TempDir;

const std::string kEvidence = std::string(COFFER_SOURCE_DIR) + "/testdata/evidence/";

Bytes report_data_of(std::uint8_t fill) { return Bytes(64, fill); }

TdMeasurements sample_td() {
  TdMeasurements td;
  td.mr_td.fill(0x11);
  for (std::size_t i = 0; i < 4; ++i) td.rtmr[i].fill(static_cast<std::uint8_t>(0x20 + i));
  td.mr_config_id.fill(0x33);
  return td;
}

std::shared_ptr<const verifier::dcap::DcapVerifier> sim_dcap(const std::filesystem::path& dir,
                                                             const crypto::Certificate& root) {
  auto source = std::make_shared<verifier::dcap::DirectoryCollateralSource>(
      verifier::dcap::DirectoryCollateralSource::split_layout(dir / "intel" / "collateral"));
  return std::make_shared<const verifier::dcap::DcapVerifier>(
      std::vector<crypto::Certificate>{root}, source);
}

TEST(SimPki, WritesKeysPrivatelyAndRefusesOverwrite) {
  TempDir dir;
  ASSERT_TRUE(write_sim_pki(shared_pki(), dir.path()));
  for (const char* key : {"intel/root_ca.key", "intel/pck.key", "intel/qe_attestation.key",
                          "intel/tcb_signing.key", "amd/ark.key", "amd/ask.key", "amd/vcek.key"}) {
    struct stat st {};
    ASSERT_EQ(::stat((dir.path() / key).c_str(), &st), 0) << key;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << key;
  }
  auto again = write_sim_pki(shared_pki(), dir.path());
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, "already_exists");
  EXPECT_TRUE(write_sim_pki(shared_pki(), dir.path(), /*force=*/true));
  auto loaded = load_sim_pki(dir.path());
  ASSERT_TRUE(loaded) << loaded.error().to_string();
  EXPECT_TRUE(loaded->attestation_key.same_public(shared_pki().attestation_key));
  EXPECT_EQ(loaded->platform.chip_id, shared_pki().platform.chip_id);
  EXPECT_EQ(loaded->vcek.der(), shared_pki().vcek.der());
  EXPECT_FALSE(loaded->amd_crl.empty());
  EXPECT_EQ(loaded->amd_crl, shared_pki().amd_crl);
}

// The sim PKI's AMD-like CRL (amd/crl/<product>.crl) is what the SNP verifier's crl_dir reads:
// signed by the sim ARK, current, revoking nothing, so revocation is checked for sim reports.
TEST(SimSnp, CrlDirectoryIsCheckedBySnpVerifier) {
  TempDir dir;
  ASSERT_TRUE(write_sim_pki(shared_pki(), dir.path()));
  auto chain = verifier::snp::vendor_chain_from_pem(shared_pki().amd_vendor_chain_pem());
  ASSERT_TRUE(chain) << chain.error().to_string();
  std::map<snp::Product, verifier::snp::VendorChain> vendors{{snp::Product::kGenoa, *chain}};
  verifier::snp::SnpChainVerifier v(
      vendors, nullptr,
      {.trust_configured_arks = true,
       .crl_source = std::make_shared<verifier::snp::DirectoryCrlSource>(
           (dir.path() / "amd" / "crl").string())});
  auto report = make_snp_report(shared_pki(), {}, report_data_of(0));
  ASSERT_TRUE(report);
  auto parsed = snp::parse_report(*report);
  ASSERT_TRUE(parsed);
  auto r =
      v.verify(*parsed, verifier::snp::Vek{verifier::snp::VekType::kVcek, shared_pki().vcek.der()},
               std::chrono::system_clock::now());
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_TRUE(r->crl_checked);
}

TEST(SimTdx, QuoteRoundTripsByteIdenticalLikeRealQuotes) {
  auto quote = make_tdx_quote(shared_pki(), sample_td(), report_data_of(0xab));
  ASSERT_TRUE(quote) << quote.error().to_string();
  auto parsed = tdx::parse_quote(*quote);
  ASSERT_TRUE(parsed) << parsed.error().to_string();
  EXPECT_EQ(tdx::serialize_quote(*parsed), *quote);
  EXPECT_EQ(parsed->header.version, 4);
  EXPECT_EQ(parsed->body.mr_td, sample_td().mr_td);
  EXPECT_FALSE(parsed->body.debug());
  // Hardware layout: MRTD at 0xB8, RTMR0 at 0x178, REPORTDATA at 0x238, sig data length at 0x278.
  EXPECT_EQ((*quote)[0xB8], 0x11);
  EXPECT_EQ((*quote)[0x178], 0x20);
  EXPECT_EQ((*quote)[0x238], 0xab);
  EXPECT_EQ(load_le32(quote->data() + 0x278), quote->size() - 0x27C);
  // The same structural check on a real quote.
  auto real = read_file(kEvidence + "tdx/go-tdx-guest/tdx_prod_quote_SPR_E4.dat");
  ASSERT_TRUE(real);
  auto real_parsed = tdx::parse_quote(*real);
  ASSERT_TRUE(real_parsed);
  Bytes reserialized = tdx::serialize_quote(*real_parsed);
  EXPECT_TRUE(std::equal(reserialized.begin(), reserialized.end(), real->begin()));
}

TEST(SimTdx, AcceptedByDcapWithSimRootRejectedWithIntelRoot) {
  TempDir dir;
  ASSERT_TRUE(write_sim_pki(shared_pki(), dir.path()));
  auto quote = make_tdx_quote(shared_pki(), sample_td(), report_data_of(0));
  ASSERT_TRUE(quote);
  auto parsed = tdx::parse_quote(*quote);
  ASSERT_TRUE(parsed);
  auto now = std::chrono::system_clock::now();
  auto ok = sim_dcap(dir.path(), shared_pki().root_ca)->verify_tdx(*parsed, now);
  ASSERT_TRUE(ok) << ok.error().to_string();
  ASSERT_TRUE(ok->tcb);
  EXPECT_EQ(ok->tcb->status, verifier::dcap::TcbStatus::kUpToDate);
  EXPECT_TRUE(ok->crls_checked);
  EXPECT_EQ(ok->pck_ca, "platform");

  auto intel = verifier::dcap::DcapVerifier::with_intel_root(
      std::make_shared<verifier::dcap::DirectoryCollateralSource>(
          verifier::dcap::DirectoryCollateralSource::split_layout(dir.path() / "intel" /
                                                                  "collateral")));
  auto refused = intel.verify_tdx(*parsed, now);
  ASSERT_FALSE(refused);

  // A flipped byte of the signed region is refused.
  Bytes tampered = *quote;
  tampered[0xB8] ^= 1;
  auto tp = tdx::parse_quote(tampered);
  ASSERT_TRUE(tp);
  EXPECT_FALSE(sim_dcap(dir.path(), shared_pki().root_ca)->verify_tdx(*tp, now));
}

TEST(SimTdx, VerifierClaimsBindReportDataAndInitData) {
  TempDir dir;
  ASSERT_TRUE(write_sim_pki(shared_pki(), dir.path()));
  verifier::tdx::TdxVerifier v(sim_dcap(dir.path(), shared_pki().root_ca));
  Bytes rd(48, 0x5a);
  Bytes padded = rd;
  padded.resize(64, 0);
  auto td = sample_td();
  auto quote = make_tdx_quote(shared_pki(), td, padded);
  ASSERT_TRUE(quote);
  Json evidence = tdx_evidence_json(*quote, {});
  Bytes init(td.mr_config_id.begin(), td.mr_config_id.end());
  auto now = std::chrono::system_clock::now();
  auto claims = v.verify({evidence, rd, ByteView(init), now});
  ASSERT_TRUE(claims) << claims.error().to_string();
  EXPECT_EQ((*claims)["quote"]["body"]["mr_td"], hex_encode(td.mr_td));
  EXPECT_NE((*claims)["tee_root"], "intel");
  Bytes wrong_init(48, 0x34);
  auto bad = v.verify({evidence, rd, ByteView(wrong_init), now});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, "init_data_mismatch");
  Bytes wrong_rd(48, 0);
  bad = v.verify({evidence, wrong_rd, std::nullopt, now});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, "report_data_mismatch");
}

TEST(SimSnp, ReportRoundTripsAndVerifiesAgainstSimVcek) {
  SnpGuest guest;
  guest.measurement.fill(0x44);
  guest.host_data.fill(0x55);
  auto report = make_snp_report(shared_pki(), guest, report_data_of(0x66));
  ASSERT_TRUE(report) << report.error().to_string();
  ASSERT_EQ(report->size(), snp::kReportSize);
  auto parsed = snp::parse_report(*report);
  ASSERT_TRUE(parsed) << parsed.error().to_string();
  EXPECT_EQ(snp::serialize_report(*parsed), *report);
  EXPECT_EQ(parsed->version, 3u);
  EXPECT_EQ(parsed->product_from_cpuid(), snp::Product::kGenoa);
  EXPECT_FALSE(parsed->debug_allowed());
  EXPECT_EQ((*report)[0x90], 0x44);  // MEASUREMENT
  EXPECT_EQ((*report)[0xC0], 0x55);  // HOST_DATA
  // The VCEK's key verifies the signature over bytes 0x000-0x29F.
  Bytes sig;
  for (const auto* part : {&parsed->signature_r, &parsed->signature_s}) {
    Bytes be(part->rbegin() + 24, part->rend());
    sig.insert(sig.end(), be.begin(), be.end());
  }
  Bytes signed_region(report->begin(), report->begin() + snp::kSignedSize);
  auto key = shared_pki().vcek.public_key();
  ASSERT_TRUE(key);
  EXPECT_TRUE(
      key->verify(signed_region, sig,
                  {.digest = crypto::DigestAlg::kSha384, .format = crypto::SignatureFormat::kRaw}));
  auto tcb = verifier::snp::read_vek_extensions(shared_pki().vcek, snp::Product::kGenoa);
  ASSERT_TRUE(tcb) << tcb.error().to_string();
  EXPECT_EQ(tcb->tcb, shared_pki().platform.snp_tcb);
  ASSERT_TRUE(tcb->hw_id);
  EXPECT_TRUE(std::equal(tcb->hw_id->begin(), tcb->hw_id->end(), parsed->chip_id.begin()));
}

TEST(SimSnp, VendorChainIsRefusedWithoutTrustingTheSimArk) {
  // The AMD-pinned chain verifier never accepts the sim ARK.
  auto chain = verifier::snp::vendor_chain_from_pem(shared_pki().amd_vendor_chain_pem());
  ASSERT_TRUE(chain) << chain.error().to_string();
  std::map<snp::Product, verifier::snp::VendorChain> vendors{{snp::Product::kGenoa, *chain}};
  verifier::snp::SnpChainVerifier v(vendors, nullptr);
  auto report = make_snp_report(shared_pki(), {}, report_data_of(0));
  ASSERT_TRUE(report);
  auto parsed = snp::parse_report(*report);
  ASSERT_TRUE(parsed);
  auto r =
      v.verify(*parsed, verifier::snp::Vek{verifier::snp::VekType::kVcek, shared_pki().vcek.der()},
               std::chrono::system_clock::now());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "ark_untrusted");
}

TEST(Measure, ProcessEnclaveMeasurementsAndEventLogReplay) {
  TempDir dir;
  ASSERT_TRUE(write_file_atomic(dir.path() / "agent", as_bytes("agent binary")));
  ASSERT_TRUE(write_file_atomic(dir.path() / "rootfs.manifest", as_bytes("manifest")));
  EnclaveComponents c;
  c.agent = dir.path() / "agent";
  c.rootfs_manifest = dir.path() / "rootfs.manifest";
  c.init_data = "algorithm = \"sha384\"\nversion = \"0.1.0\"\n[data]\n";
  auto m = measure_enclave(c);
  ASSERT_TRUE(m) << m.error().to_string();
  Bytes digest = crypto::sha384(as_bytes(*c.init_data));
  EXPECT_TRUE(std::equal(digest.begin(), digest.end(), m->mr_config_id.begin()));
  EXPECT_FALSE(m->host_data_fits);
  // Same inputs, same values; a changed agent changes MRTD and RTMR1 only.
  auto again = measure_enclave(c);
  EXPECT_EQ(again->mr_td, m->mr_td);
  ASSERT_TRUE(write_file_atomic(dir.path() / "agent", as_bytes("agent binary 2")));
  auto changed = measure_enclave(c);
  EXPECT_NE(changed->mr_td, m->mr_td);
  EXPECT_NE(changed->rtmrs()[1], m->rtmrs()[1]);
  EXPECT_EQ(changed->rtmrs()[2], m->rtmrs()[2]);
  // The event log replays to the RTMRs.
  auto log = tdx::parse_event_log(m->event_log.serialize());
  ASSERT_TRUE(log) << log.error().to_string();
  auto replayed = tdx::replay_rtmrs(*log);
  ASSERT_TRUE(replayed);
  EXPECT_EQ(*replayed, m->rtmrs());
  auto rv = m->reference_values();
  EXPECT_EQ(rv["tdx.mr_td"], hex_encode(m->mr_td));
  EXPECT_EQ(rv["tdx.rtmr_1"], hex_encode(m->rtmrs()[1]));
  // The agent's digest given by the caller (the launcher hashed those bytes while staging them)
  // measures the same as the file; a digest of another size is refused.
  auto file_digest = read_file(dir.path() / "agent", 1024);
  ASSERT_TRUE(file_digest);
  EnclaveComponents given = c;
  given.agent.reset();
  given.agent_sha384 = crypto::sha384(*file_digest);
  auto from_digest = measure_enclave(given);
  ASSERT_TRUE(from_digest) << from_digest.error().to_string();
  EXPECT_EQ(from_digest->mr_td, changed->mr_td);
  EXPECT_EQ(from_digest->mr_enclave, changed->mr_enclave);
  EXPECT_EQ(from_digest->rtmrs(), changed->rtmrs());
  given.agent_sha384 = crypto::sha256(*file_digest);
  EXPECT_EQ(measure_enclave(given).error().code, "bad_enclave");
  // A missing component is an error.
  c.rootfs_manifest.reset();
  EXPECT_EQ(measure_enclave(c).error().code, "bad_enclave");
}

TEST(QuoteService, AnswersQuotesExtensionsAndRefusesBadRequests) {
  TempDir dir;
  ASSERT_TRUE(write_file_atomic(dir.path() / "agent", as_bytes("a")));
  ASSERT_TRUE(write_file_atomic(dir.path() / "m", as_bytes("m")));
  EnclaveComponents c{.agent = dir.path() / "agent", .rootfs_manifest = dir.path() / "m"};
  c.init_data = "algorithm = \"sha256\"\n";
  auto m = measure_enclave(c);
  ASSERT_TRUE(m);
  QuoteService service(shared_pki(), *m, {.socket_path = dir.path() / "qs.sock"});
  ASSERT_TRUE(service.start());
  QuoteServiceClient client(dir.path() / "qs.sock");

  auto q = client.call({{"op", "quote"}, {"report_data", base64_encode(report_data_of(7))}});
  ASSERT_TRUE(q) << q.error().to_string();
  auto raw = base64_decode((*q)["evidence"]["quote"].get<std::string>());
  auto parsed = tdx::parse_quote(*raw);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->body.mr_td, m->mr_td);
  EXPECT_EQ(parsed->body.report_data[0], 7);

  auto snp_q = client.call(
      {{"op", "quote"}, {"tee", "snp"}, {"report_data", base64_encode(report_data_of(8))}});
  ASSERT_TRUE(snp_q) << snp_q.error().to_string();
  EXPECT_TRUE((*snp_q)["evidence"].contains("cert_chain"));

  Bytes event = crypto::sha384(as_bytes("runtime event"));
  auto ext = client.call(
      {{"op", "extend"}, {"rtmr", 3}, {"digest", hex_encode(event)}, {"event", "container image"}});
  ASSERT_TRUE(ext) << ext.error().to_string();
  Fixed<48> expected{};
  tdx::extend_rtmr(expected, event);
  EXPECT_EQ((*ext)["rtmr"], hex_encode(expected));
  // The next quote carries RTMR3 and an event log that replays to it.
  q = client.call({{"op", "quote"}, {"report_data", base64_encode(report_data_of(9))}});
  ASSERT_TRUE(q);
  parsed = tdx::parse_quote(*base64_decode((*q)["evidence"]["quote"].get<std::string>()));
  EXPECT_EQ(parsed->body.rtmr[3], expected);
  auto log =
      tdx::parse_event_log(*base64_decode((*q)["evidence"]["cc_eventlog"].get<std::string>()));
  ASSERT_TRUE(log);
  auto replayed = tdx::replay_rtmrs(*log);
  ASSERT_TRUE(replayed);
  EXPECT_EQ(*replayed, parsed->body.rtmr);

  for (const Json& bad :
       {Json::array(), Json{{"op", 1}}, Json{{"op", "nope"}}, Json{{"op", "quote"}},
        Json{{"op", "quote"}, {"report_data", "***"}},
        Json{{"op", "quote"}, {"report_data", base64_encode(Bytes(63, 0))}},
        Json{{"op", "quote"}, {"tee", "sgx"}, {"report_data", base64_encode(report_data_of(0))}},
        Json{{"op", "extend"}, {"rtmr", 0}, {"digest", hex_encode(event)}},
        Json{{"op", "extend"}, {"rtmr", 3}, {"digest", "00"}}}) {
    auto r = client.call(bad);
    ASSERT_FALSE(r) << bad.dump();
    EXPECT_TRUE(r.error().code == "bad_request" || r.error().code == "unsupported")
        << r.error().code;
  }
  // Garbage and an oversized line get an error answer; the service keeps serving.
  {
    QuoteServiceClient raw_client(dir.path() / "qs.sock");
    auto r = raw_client.call(Json(std::string(70 * 1024, 'x')));
    EXPECT_FALSE(r);
  }
  auto m2 = client.call({{"op", "measurements"}});
  ASSERT_TRUE(m2) << m2.error().to_string();
  EXPECT_EQ((*m2)["mr_td"], hex_encode(m->mr_td));
  service.stop();
  EXPECT_EQ(client.call({{"op", "measurements"}}).error().code, "quote_service_unavailable");
}

}  // namespace
}  // namespace coffer::evidence::sim
