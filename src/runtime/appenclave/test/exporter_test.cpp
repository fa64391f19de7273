// EfsBundleExporter (the agent enclave's ExportBundle / HandOverKey) against real simulated quote
// services: what it writes opens with the key the app enclave gets, and nothing else does.
#include "runtime/appenclave/exporter.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "core/file.h"
#include "core/json.h"
#include "core/test/temp_dir.h"
#include "runtime/appenclave/test/sim_platform.h"
#include "runtime/efs/filesystem.h"

namespace coffer::runtime::appenclave {
namespace {

namespace fs = std::filesystem;

using test::identity;
using Platform = test::SimEnclave;

class ExporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(rootfs_ / "etc");
    fs::create_directories(storage_);
    std::ofstream(rootfs_ / "etc/marker") << "exporter-plaintext-marker\n";
    fs::create_symlink("marker", rootfs_ / "etc/link");
  }
  agent::BundleExport request(std::string id, std::string mode) {
    return agent::BundleExport{
        std::move(id), rootfs_,
        Json{{"process", {{"args", {"/bin/true"}}}}, {"root", {{"path", "rootfs"}}}},
        std::move(mode)};
  }

  coffer::testing::TempDir dir_;
  fs::path rootfs_ = dir_.path() / "rootfs";
  fs::path storage_ = dir_.path() / "storage";
  Platform agent_{dir_.path() / "agent.sock", identity(0xa1, 0x51)};
  Platform app_{dir_.path() / "app.sock", identity(0xa2, 0x51)};
  Platform other_{dir_.path() / "other.sock", identity(0xa2, 0x52)};  // another signer
  EfsBundleExporter exporter_{storage_, agent_.socket()};
};

TEST_F(ExporterTest, SealedBundleOpensWithTheKeyTheAppEnclaveUnseals) {
  auto done = exporter_.export_bundle(request("b1", "seal"));
  ASSERT_TRUE(done) << done.error().to_string();
  EXPECT_EQ(done->files, 2U);  // the marker and config.json
  struct stat st {};
  ASSERT_EQ(::stat((storage_ / "b1").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700U);
  auto text = read_text_file(EfsBundleExporter::sealed_key_file(storage_, "b1"), 4096);
  ASSERT_TRUE(text);
  auto key = unseal_bundle_key(app_.qs(), "b1", *text);
  ASSERT_TRUE(key) << key.error().to_string();
  EXPECT_EQ(key->generation, done->generation);
  efs::OpenOptions o;
  o.min_generation = key->generation;
  auto fs = efs::Filesystem::open(EfsBundleExporter::efs_dir(storage_, "b1"), key->key, o);
  ASSERT_TRUE(fs) << fs.error().to_string();
  auto marker = (*fs)->read_all("/rootfs/etc/marker");
  ASSERT_TRUE(marker);
  EXPECT_EQ(std::string(marker->begin(), marker->end()), "exporter-plaintext-marker\n");
  EXPECT_EQ((*fs)->readlink("/rootfs/etc/link").value(), "marker");
  auto config = (*fs)->read_all("/config.json");
  ASSERT_TRUE(config);
  auto parsed = parse_json(std::string(config->begin(), config->end()));
  ASSERT_TRUE(parsed);
  EXPECT_EQ((*parsed)["process"]["args"][0], "/bin/true");
  // an enclave of another signer cannot unseal it; the sealed key is not handed over locally
  EXPECT_EQ(unseal_bundle_key(other_.qs(), "b1", *text).error().code, kUnsealFailed);
  auto req = KeyRequester::create(app_.qs(), "b1", identity(0xa1, 0x51).mr_enclave);
  ASSERT_TRUE(req);
  EXPECT_EQ(exporter_.hand_over_key({"b1", req->request().report, req->request().public_key})
                .error()
                .code,
            "bundle_not_found");
}

TEST_F(ExporterTest, LocalKeyIsHandedOverOnceAndSurvivesARefusedRequest) {
  auto done = exporter_.export_bundle(request("b2", "local"));
  ASSERT_TRUE(done) << done.error().to_string();
  EXPECT_FALSE(fs::exists(EfsBundleExporter::sealed_key_file(storage_, "b2")));
  const auto agent_mr = identity(0xa1, 0x51).mr_enclave;
  // another signer's request is refused and does not use the key up
  auto bad = KeyRequester::create(other_.qs(), "b2", agent_mr);
  ASSERT_TRUE(bad);
  EXPECT_EQ(exporter_.hand_over_key({"b2", bad->request().report, bad->request().public_key})
                .error()
                .code,
            kPeerRefused);
  auto good = KeyRequester::create(app_.qs(), "b2", agent_mr);
  ASSERT_TRUE(good);
  auto answer = exporter_.hand_over_key({"b2", good->request().report, good->request().public_key});
  ASSERT_TRUE(answer) << answer.error().to_string();
  auto key =
      good->accept(app_.qs(), KeyResponse{answer->report, answer->public_key, answer->ciphertext});
  ASSERT_TRUE(key) << key.error().to_string();
  EXPECT_EQ(key->generation, done->generation);
  EXPECT_TRUE(efs::Filesystem::open(EfsBundleExporter::efs_dir(storage_, "b2"), key->key));
  // once only
  auto again = KeyRequester::create(app_.qs(), "b2", agent_mr);
  ASSERT_TRUE(again);
  EXPECT_EQ(exporter_.hand_over_key({"b2", again->request().report, again->request().public_key})
                .error()
                .code,
            "bundle_not_found");
}

TEST_F(ExporterTest, ExistingBundleIsRefusedAndAFailedExportLeavesNothing) {
  ASSERT_TRUE(exporter_.export_bundle(request("b3", "seal")));
  EXPECT_EQ(exporter_.export_bundle(request("b3", "seal")).error().code, "bundle_exists");
  // a rootfs with a fifo cannot be exported: the half-made bundle goes
  ASSERT_EQ(::mkfifo((rootfs_ / "fifo").c_str(), 0600), 0);
  EXPECT_EQ(exporter_.export_bundle(request("b4", "seal")).error().code, efs::kUnsupported);
  EXPECT_FALSE(fs::exists(storage_ / "b4"));
  EXPECT_EQ(exporter_.export_bundle(request("b5", "plain")).error().code, "bad_request");
  EXPECT_FALSE(fs::exists(storage_ / "b5"));
}

TEST_F(ExporterTest, SealingNeedsTheEnclavesQuoteService) {
  EfsBundleExporter orphan(storage_, dir_.path() / "no-such.sock");
  auto r = orphan.export_bundle(request("b6", "seal"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "quote_service_unavailable");
  EXPECT_FALSE(fs::exists(storage_ / "b6"));
}

}  // namespace
}  // namespace coffer::runtime::appenclave
