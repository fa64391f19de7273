#include "guest/aa/tsm_attester.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "core/file.h"
#include "core/test/evidence_files.h"
#include "evidence/tdx/quote.h"
#include "guest/test/trustee_fixture.h"

namespace coffer::guest::aa {
namespace {

using testing::TempDir;

const std::string kEvidence = std::string(COFFER_SOURCE_DIR) + "/testdata/evidence/";

// A configfs-tsm report entry as the kernel shows it, holding a real TDX quote.
void prepare_entry(const std::filesystem::path& dir, const std::string& provider,
                   bool generation_file = true) {
  auto quote = read_file(kEvidence + "tdx/dcap-qvl/tdx_quote");
  ASSERT_TRUE(quote);
  ASSERT_TRUE(write_file_atomic(dir / "provider", as_bytes(provider + "\n")));
  ASSERT_TRUE(write_file_atomic(dir / "inblob", {}));
  ASSERT_TRUE(write_file_atomic(dir / "outblob", *quote));
  if (generation_file) {
    ASSERT_TRUE(write_file_atomic(dir / "generation", as_bytes("7\n")));
  }
}

TEST(TsmAttester, ReadsTheQuoteFromAPreparedEntry) {
  TempDir dir;
  prepare_entry(dir.path(), "tdx_guest");
  AttesterOptions o;
  o.tsm_entry = dir.path();
  o.ccel_path = dir.path() / "no-ccel";
  auto a = make_attester("tdx", o);
  ASSERT_TRUE(a) << a.error().to_string();
  EXPECT_EQ((*a)->tee(), "tdx");
  Bytes rd(64, 0x42);
  auto ev = (*a)->evidence(rd);
  ASSERT_TRUE(ev) << ev.error().to_string();
  auto quote = base64_decode((*ev)["quote"].get<std::string>());
  ASSERT_TRUE(quote);
  EXPECT_EQ(*quote, coffer::testing::evidence_bytes("tdx/dcap-qvl/tdx_quote"));
  EXPECT_FALSE(ev->contains("cc_eventlog"));
  // The report data went to inblob.
  EXPECT_EQ(*read_file(dir.path() / "inblob"), rd);
  // The init-data check reads MRCONFIGID of the real quote (all zero there).
  EXPECT_EQ((*a)->check_init_data(Bytes(48, 0)), InitDataBinding::kMatches);
  EXPECT_EQ((*a)->check_init_data(Bytes(48, 1)).error().code, "init_data_mismatch");
  EXPECT_EQ((*a)->evidence(Bytes(32, 0)).error().code, "bad_report_data");
}

TEST(TsmAttester, WrongProviderIsNotThisTee) {
  TempDir dir;
  prepare_entry(dir.path(), "sev_guest");
  AttesterOptions o;
  o.tsm_entry = dir.path();
  EXPECT_EQ(make_attester("tdx", o).error().code, "tee_not_found");
  TsmAttester direct(TsmAttester::Kind::kTdx, o);
  EXPECT_EQ(direct.evidence(Bytes(64, 0)).error().code, "tsm_wrong_provider");
}

// Another process using the same report entry, simulated deterministically: `attr` is a FIFO,
// and when the attester opens it the "other process" bumps `generation` before the data flows.
void race_on(const std::filesystem::path& dir, const std::string& attr, bool attester_reads,
             const std::function<void()>& body) {
  auto fifo = dir / attr;
  ::unlink(fifo.c_str());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  Bytes quote = coffer::testing::evidence_bytes("tdx/dcap-qvl/tdx_quote");
  std::thread other([&] {
    // Opening blocks until the attester opens its end.
    int fd = ::open(fifo.c_str(), attester_reads ? O_WRONLY : O_RDONLY);
    if (fd < 0) return;
    EXPECT_TRUE(write_file_atomic(dir / "generation", as_bytes("9\n")));
    if (attester_reads) {
      [[maybe_unused]] auto n = ::write(fd, quote.data(), quote.size());
    } else {
      std::uint8_t buf[128];
      while (::read(fd, buf, sizeof buf) > 0) {
      }
    }
    ::close(fd);
  });
  body();
  other.join();
  ::unlink(fifo.c_str());
}

TEST(TsmAttester, GenerationRaceIsRejected) {
  TempDir dir;
  prepare_entry(dir.path(), "tdx_guest");
  AttesterOptions o;
  o.tsm_entry = dir.path();
  TsmAttester a(TsmAttester::Kind::kTdx, o);
  // Someone writes the entry while we read outblob: generation 7 -> 9 after our write.
  race_on(dir.path(), "outblob", /*attester_reads=*/true, [&] {
    auto ev = a.evidence(Bytes(64, 0));
    ASSERT_FALSE(ev);
    EXPECT_EQ(ev.error().code, "tsm_generation_race");
    EXPECT_NE(ev.error().message.find("while reading outblob"), std::string::npos);
  });
  ASSERT_TRUE(write_file_atomic(dir.path() / "outblob",
                                coffer::testing::evidence_bytes("tdx/dcap-qvl/tdx_quote")));
  ASSERT_TRUE(write_file_atomic(dir.path() / "generation", as_bytes("7\n")));
  // Undisturbed, the same entry works.
  ASSERT_TRUE(write_file_atomic(dir.path() / "inblob", {}));
  EXPECT_TRUE(a.evidence(Bytes(64, 0)));
}

TEST(TsmAttester, SnpCertTableToJson) {
  // One VCEK entry then the terminator.
  Bytes table(48, 0);
  const std::uint8_t vcek[16] = {0x8d, 0x75, 0xda, 0x63, 0x64, 0xe6, 0x64, 0x45,
                                 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd};
  std::copy(vcek, vcek + 16, table.begin());
  store_le32(table.data() + 16, 48);
  store_le32(table.data() + 20, 3);
  table.insert(table.end(), {1, 2, 3});
  auto j = snp_cert_table_to_json(table);
  ASSERT_TRUE(j) << j.error().to_string();
  ASSERT_EQ(j->size(), 1u);
  EXPECT_EQ((*j)[0]["cert_type"], "VCEK");
  EXPECT_EQ((*j)[0]["data"], base64_encode(Bytes{1, 2, 3}));
  store_le32(table.data() + 20, 300);
  EXPECT_EQ(snp_cert_table_to_json(table).error().code, "bad_evidence");
}

}  // namespace
}  // namespace coffer::guest::aa
