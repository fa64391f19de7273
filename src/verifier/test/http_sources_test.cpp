// The Intel PCS/PCCS and AMD KDS collateral sources against a local HTTP server that serves the
// evidence files (loopback, port 0); request counts prove the caches.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <thread>

#include "core/file.h"
#include "evidence/tdx/quote.h"
#include "net/http_server.h"
#include "verifier/dcap/dcap_verifier.h"
#include "verifier/dcap/pcs_source.h"
#include "verifier/snp/kds_source.h"
#include "verifier/snp/snp_verifier.h"

namespace coffer::verifier {
namespace {

const std::string kEvidence = std::string(COFFER_SOURCE_DIR) + "/testdata/evidence/";
const std::string kGoTdx = kEvidence + "tdx/go-tdx-guest/";

TimePoint at(const char* t) { return *parse_rfc3339(t); }
Bytes load(const std::string& path) { return *read_file(path); }
std::string text(const std::string& path) { return *read_text_file(path); }

std::string percent_encode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "%" + hex_encode(ByteView(&c, 1));
    }
  }
  return out;
}

class FakeVendorServer {
 public:
  FakeVendorServer() {
    net::HttpServerConfig config;
    config.sockets = {"127.0.0.1:0"};
    config.worker_threads = 4;  // a gated request holds one
    server_ = std::make_unique<net::HttpServer>(
        config, [this](const net::Request& r) { return handle(r); });
    EXPECT_TRUE(server_->start());
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(server_->bound_ports()[0]);
  }
  int count(const std::string& prefix) const {
    std::lock_guard lock(mutex_);
    int n = 0;
    for (const auto& t : targets_) n += t.rfind(prefix, 0) == 0 ? 1 : 0;
    return n;
  }
  int total() const {
    std::lock_guard lock(mutex_);
    return static_cast<int>(targets_.size());
  }
  void stop() {
    release();
    server_->stop();
  }

  // Requests for `target` wait in the handler until release().
  void gate(const std::string& target) {
    std::lock_guard lock(mutex_);
    gated_ = target;
  }
  // Blocks until `n` requests for the gated target have arrived.
  void wait_for_gated(int n) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return gated_arrivals_ >= n; });
  }
  void release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }

 private:
  net::Response handle(const net::Request& r) {
    {
      std::unique_lock lock(mutex_);
      targets_.push_back(r.target);
      if (!gated_.empty() && r.target == gated_) {
        ++gated_arrivals_;
        changed_.notify_all();
        changed_.wait(lock, [&] { return released_; });
      }
    }
    std::string chain = percent_encode(text(kGoTdx + "tcb_info_issuer_chain.pem"));
    auto with = [](net::Response resp, const char* name, const std::string& value) {
      resp.headers.set(name, value);
      return resp;
    };
    const std::string& t = r.target;
    if (t == "/tdx/certification/v4/tcb?fmspc=50806f000000") {
      return with(net::Response::text(200, text(kGoTdx + "sample_tcbInfo_response")),
                  "TCB-Info-Issuer-Chain", chain);
    }
    if (t == "/tdx/certification/v4/qe/identity") {
      return with(net::Response::text(200, text(kGoTdx + "sample_qeIdentity_response")),
                  "SGX-Enclave-Identity-Issuer-Chain", chain);
    }
    if (t.rfind("/sgx/certification/v4/pckcrl?ca=", 0) == 0) {
      return with(net::Response::text(200, text(kGoTdx + "pckcrl")), "SGX-PCK-CRL-Issuer-Chain",
                  percent_encode(text(kGoTdx + "pck_crl_issuer_chain.pem")));
    }
    if (t == "/sgx/certification/v4/rootcacrl") {
      return net::Response::bytes(200, to_string(load(kGoTdx + "rootcrl.der")));
    }
    if (t.rfind("/vcek/v1/Milan/3ac3fe21", 0) == 0 &&
        t.find("?blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=68") != std::string::npos) {
      return net::Response::bytes(200,
                                  to_string(load(kEvidence + "snp/go-sev-guest/vcek.testcer")));
    }
    if (t == "/vcek/v1/Milan/crl") {
      return net::Response::bytes(200, to_string(load(kGoTdx + "rootcrl.der")));  // any DER
    }
    return net::Response::text(404, "not found");
  }

  std::unique_ptr<net::HttpServer> server_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> targets_;
  std::string gated_;
  int gated_arrivals_ = 0;
  bool released_ = false;
};

// Waits for a result that must not depend on a blocked download; the bound only turns a stall
// into a failure instead of a hung test.
template <typename T>
bool completes(std::future<T>& f) {
  return f.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
}

std::filesystem::path temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             (name + "-" + std::to_string(::getpid()) + "-" +
              std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  std::filesystem::create_directories(dir);
  return dir;
}

TEST(PercentDecode, IssuerChainHeaders) {
  EXPECT_EQ(*dcap::percent_decode("-----BEGIN%20CERT%0A+x%2B"), "-----BEGIN CERT\n+x+");
  EXPECT_FALSE(dcap::percent_decode("%4"));
  EXPECT_FALSE(dcap::percent_decode("%zz"));
}

TEST(PcsCollateralSource, VerifiesFromPccsAndCachesUntilNextUpdate) {
  FakeVendorServer server;
  auto clock = std::make_shared<ManualClock>(at("2023-07-01T01:00:00Z"));
  auto dir = temp_dir("coffer-pcs");
  dcap::PcsOptions options;
  options.base_url = server.url() + "/";
  options.cache_dir = dir;
  options.clock = clock;
  auto source = std::make_shared<dcap::PcsCollateralSource>(options);
  dcap::DcapVerifier verifier = dcap::DcapVerifier::with_intel_root(source);
  auto quote = *evidence::tdx::parse_quote(load(kEvidence + "tdx/trustee/tdx_quote_4.dat"));

  auto r = verifier.verify_tdx(quote, clock->now());
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_TRUE(r->tcb);
  EXPECT_EQ(dcap::tcb_status_name(r->tcb->status), "UpToDate");
  EXPECT_TRUE(r->crls_checked);
  EXPECT_EQ(server.total(), 4);
  EXPECT_EQ(source->requests_made(), 4u);
  // cached: no request for the same documents before their nextUpdate
  ASSERT_TRUE(verifier.verify_tdx(quote, clock->now()));
  EXPECT_EQ(server.total(), 4);

  // past the QE identity's nextUpdate (2023-07-08) and the PCK CRL's: fetched again
  clock->set(at("2023-07-10T00:00:00Z"));
  auto late = verifier.verify_tdx(quote, clock->now());
  EXPECT_EQ(server.count("/tdx/certification/v4/qe/identity"), 2);
  EXPECT_EQ(server.count("/sgx/certification/v4/pckcrl"), 2);
  EXPECT_EQ(server.count("/tdx/certification/v4/tcb"), 1);  // valid until 2023-07-18
  ASSERT_FALSE(late);  // the server has nothing newer: the verifier reports the expiry
  EXPECT_NE(late.error().code.find("expired"), std::string::npos) << late.error().code;

  // on-disk cache: a new source works with the server gone
  server.stop();
  options.clock = std::make_shared<ManualClock>(at("2023-07-01T01:00:00Z"));
  auto offline = std::make_shared<dcap::PcsCollateralSource>(options);
  auto from_disk =
      dcap::DcapVerifier::with_intel_root(offline).verify_tdx(quote, at("2023-07-01T01:00:00Z"));
  ASSERT_TRUE(from_disk) << from_disk.error().to_string();
  EXPECT_EQ(offline->requests_made(), 0u);
  std::filesystem::remove_all(dir);
}

TEST(PcsCollateralSource, UnknownFmspcIsUnavailable) {
  FakeVendorServer server;
  dcap::PcsOptions options;
  options.base_url = server.url();
  dcap::PcsCollateralSource source(options);
  auto r = source.fetch({dcap::TeeKind::kTdx, Bytes{1, 2, 3, 4, 5, 6}, "platform"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "collateral_fetch_failed");
}

// A download that hangs (a slow PCS) holds up only the callers that need the same document: a
// verification needing other documents completes meanwhile, and a second caller for the hanging
// document waits for that one download instead of making another.
TEST(PcsCollateralSource, ASlowDownloadHoldsUpOnlyItsOwnDocument) {
  FakeVendorServer server;
  const std::string slow = "/tdx/certification/v4/tcb?fmspc=010203040506";
  server.gate(slow);
  dcap::PcsOptions options;
  options.base_url = server.url();
  options.clock = std::make_shared<ManualClock>(at("2023-07-01T01:00:00Z"));
  auto source = std::make_shared<dcap::PcsCollateralSource>(options);
  dcap::CollateralRequest unknown{dcap::TeeKind::kTdx, Bytes{1, 2, 3, 4, 5, 6}, "platform"};
  auto first = std::async(std::launch::async, [&] { return source->fetch(unknown); });
  server.wait_for_gated(1);

  // another document: the verification completes while the slow download hangs
  auto quote = *evidence::tdx::parse_quote(load(kEvidence + "tdx/trustee/tdx_quote_4.dat"));
  auto other = std::async(std::launch::async, [&] {
    return dcap::DcapVerifier::with_intel_root(source).verify_tdx(quote,
                                                                  at("2023-07-01T01:00:00Z"));
  });
  bool other_done = completes(other);
  EXPECT_TRUE(other_done) << "a fetch of another document waited for the slow one";

  // the same document: the second caller joins the download in flight
  auto second = std::async(std::launch::async, [&] { return source->fetch(unknown); });
  source->wait_for_joined_fetches(1);
  server.release();
  auto a = first.get();
  auto b = second.get();
  ASSERT_FALSE(a);
  ASSERT_FALSE(b);
  EXPECT_EQ(a.error().code, "collateral_fetch_failed");
  EXPECT_EQ(b.error(), a.error());
  EXPECT_EQ(server.count(slow), 1);
  auto verified = other.get();
  ASSERT_TRUE(verified) << verified.error().to_string();
}

std::shared_ptr<const snp::SnpChainVerifier> kds_chain(std::shared_ptr<const snp::VekSource> src) {
  std::map<evidence::snp::Product, snp::VendorChain> vendors;
  vendors.emplace(evidence::snp::Product::kMilan,
                  *snp::vendor_chain_from_pem(
                      text(kEvidence + "snp/amd_roots/trustee/milan_ask_ark_asvk.pem")));
  return std::make_shared<const snp::SnpChainVerifier>(vendors, std::move(src));
}

TEST(KdsVekSource, FetchesEachVcekOnceEvenConcurrently) {
  FakeVendorServer server;
  auto dir = temp_dir("coffer-kds");
  snp::KdsOptions options;
  options.base_url = server.url();
  options.cache_dir = dir;
  auto kds = std::make_shared<snp::KdsVekSource>(options);
  auto report = *evidence::snp::parse_report(load(kEvidence + "snp/go-sev-guest/attestation.bin"));
  EXPECT_EQ(snp::kds_vcek_path(evidence::snp::Product::kMilan, report).rfind("vcek/v1/Milan/", 0),
            0u);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      // v2 reports carry no CPUID: every configured product is tried, Milan answers
      auto chain = kds_chain(kds);
      for (int i = 0; i < 3; ++i) {
        if (chain->verify(report, std::nullopt, at("2025-01-01T00:00:00Z"))) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 12);
  EXPECT_EQ(server.count("/vcek/v1/Milan/"), 1);
  EXPECT_EQ(kds->requests_made(), 1u);

  // a TCB KDS does not know: 404, remembered as well
  auto other = report;
  other.reported_tcb ^= 1;
  for (int i = 0; i < 3; ++i) {
    auto r = kds->fetch(evidence::snp::Product::kMilan, other);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "vek_unavailable");
  }
  EXPECT_EQ(server.count("/vcek/v1/Milan/"), 2);

  // the disk cache serves a new source without KDS
  server.stop();
  auto again = std::make_shared<snp::KdsVekSource>(options);
  ASSERT_TRUE(kds_chain(again)->verify(report, std::nullopt, at("2025-01-01T00:00:00Z")));
  EXPECT_EQ(again->requests_made(), 0u);
  std::filesystem::remove_all(dir);
}

TEST(KdsVekSource, CrlIsCachedRefreshedWhenOldAndKeptWhileKdsIsDown) {
  FakeVendorServer server;
  auto dir = temp_dir("coffer-kds-crl");
  snp::KdsOptions options;
  options.base_url = server.url();
  options.cache_dir = dir;
  auto kds = std::make_shared<snp::KdsVekSource>(options);
  Bytes expected = load(kGoTdx + "rootcrl.der");
  for (int i = 0; i < 3; ++i) {
    auto crl = kds->fetch_crl(evidence::snp::Product::kMilan);
    ASSERT_TRUE(crl) << crl.error().to_string();
    EXPECT_EQ(*crl, expected);
  }
  EXPECT_EQ(server.count("/vcek/v1/Milan/crl"), 1);
  // AMD publishes a CRL per product: KDS answering 404 is an error, not "no CRL"
  auto none = kds->fetch_crl(evidence::snp::Product::kGenoa);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, "amd_crl_not_found");
  EXPECT_EQ(none.error().message, "KDS answered 404 for the Genoa CRL");

  // past crl_max_age the CRL is fetched again; while KDS is down the last one is used (the
  // verifier still checks its nextUpdate)
  options.crl_max_age = std::chrono::seconds(0);
  auto eager = std::make_shared<snp::KdsVekSource>(options);
  ASSERT_TRUE(eager->fetch_crl(evidence::snp::Product::kMilan));
  ASSERT_TRUE(eager->fetch_crl(evidence::snp::Product::kMilan));
  EXPECT_EQ(server.count("/vcek/v1/Milan/crl"), 3);
  server.stop();
  auto stale = eager->fetch_crl(evidence::snp::Product::kMilan);
  ASSERT_TRUE(stale) << stale.error().to_string();
  EXPECT_EQ(*stale, expected);
  std::filesystem::remove_all(dir);
}

TEST(KdsVekSource, ASlowDownloadHoldsUpOnlyItsOwnKey) {
  FakeVendorServer server;
  snp::KdsOptions options;
  options.base_url = server.url();
  auto kds = std::make_shared<snp::KdsVekSource>(options);
  auto report = *evidence::snp::parse_report(load(kEvidence + "snp/go-sev-guest/attestation.bin"));
  auto unknown = report;
  unknown.reported_tcb ^= 1;  // a TCB KDS answers 404 for, once released
  const std::string slow = "/" + snp::kds_vcek_path(evidence::snp::Product::kMilan, unknown);
  server.gate(slow);
  auto first = std::async(std::launch::async,
                          [&] { return kds->fetch(evidence::snp::Product::kMilan, unknown); });
  server.wait_for_gated(1);

  // another key (the report's own VCEK, then the CRL) completes while that download hangs
  auto other = std::async(std::launch::async, [&] {
    auto verified = kds_chain(kds)->verify(report, std::nullopt, at("2025-01-01T00:00:00Z"));
    return verified && kds->fetch_crl(evidence::snp::Product::kMilan);
  });
  bool other_done = completes(other);
  EXPECT_TRUE(other_done) << "a fetch of another key waited for the slow one";

  // the same key: the second caller joins the download in flight
  auto second = std::async(std::launch::async,
                           [&] { return kds->fetch(evidence::snp::Product::kMilan, unknown); });
  kds->wait_for_joined_fetches(1);
  server.release();
  auto a = first.get();
  auto b = second.get();
  ASSERT_FALSE(a);
  ASSERT_FALSE(b);
  EXPECT_EQ(a.error().code, "vek_unavailable");
  EXPECT_EQ(b.error().code, "vek_unavailable");
  EXPECT_EQ(server.count(slow), 1);
  EXPECT_TRUE(other.get());
}

}  // namespace
}  // namespace coffer::verifier
