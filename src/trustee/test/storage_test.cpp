#include "trustee/storage/sqlite_store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "core/file.h"
#include "crypto/random.h"
#include "trustee/kms/key_file.h"
#include "trustee/rvps/rvps.h"
#include "trustee/test/test_util.h"

namespace coffer::trustee::storage {
namespace {

using testing::TempDir;

TEST(SqliteStore, ResourcesPersistAcrossReopenAndAreEncryptedAtRest) {
  TempDir dir;
  auto db = dir.path() / "t.db";
  Bytes kek = crypto::random_bytes(32);
  {
    auto store = SqliteStore::open(db, kek);
    ASSERT_TRUE(store) << store.error().to_string();
    ASSERT_TRUE((*store)->put_resource("default/key/1", as_bytes("top-secret-value")));
    ASSERT_TRUE((*store)->put_resource("default/key/1", as_bytes("top-secret-value-2")));
    ASSERT_TRUE((*store)->put_policy("resource", "default", "package policy"));
    ASSERT_TRUE((*store)->put_reference_value("svn", "[\"1\"]"));
  }
  auto store = SqliteStore::open(db, kek);
  ASSERT_TRUE(store);
  auto v = (*store)->get_resource("default/key/1");
  ASSERT_TRUE(v && *v);
  EXPECT_EQ(to_string(**v), "top-secret-value-2");
  EXPECT_EQ(*(*store)->get_policy("resource", "default"),
            std::optional<std::string>("package policy"));
  EXPECT_EQ(*(*store)->get_reference_value("svn"), std::optional<std::string>("[\"1\"]"));
  EXPECT_FALSE(*(*store)->get_resource("default/key/2"));
  // Nothing of the plaintext is in the database file.
  auto raw = read_file(db);
  ASSERT_TRUE(raw);
  std::string text = to_string(*raw);
  EXPECT_EQ(text.find("top-secret-value"), std::string::npos);
}

TEST(SqliteStore, WrongKekAndMovedCiphertextFailClosed) {
  TempDir dir;
  auto db = dir.path() / "t.db";
  Bytes kek = crypto::random_bytes(32);
  {
    auto store = *SqliteStore::open(db, kek);
    ASSERT_TRUE(store->put_resource("a/b/c", as_bytes("one")));
    ASSERT_TRUE(store->put_resource("a/b/d", as_bytes("two")));
  }
  auto wrong = *SqliteStore::open(db, crypto::random_bytes(32));
  EXPECT_EQ(wrong->get_resource("a/b/c").error().code, "storage_corrupt");
  // Swap the ciphertexts of two rows behind the store's back: the path is the AAD.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(raw,
                   "UPDATE resources SET nonce=(SELECT nonce FROM resources WHERE path='a/b/d'), "
                   "ciphertext=(SELECT ciphertext FROM resources WHERE path='a/b/d'), "
                   "tag=(SELECT tag FROM resources WHERE path='a/b/d') WHERE path='a/b/c'",
                   nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(raw);
  auto store = *SqliteStore::open(db, kek);
  EXPECT_EQ(store->get_resource("a/b/c").error().code, "storage_corrupt");
  EXPECT_EQ(to_string(**store->get_resource("a/b/d")), "two");
}

TEST(SqliteStore, DeleteAndList) {
  TempDir dir;
  auto store = *SqliteStore::open(dir.path() / "t.db", crypto::random_bytes(32));
  ASSERT_TRUE(store->put_resource("r/t/1", as_bytes("x")));
  ASSERT_TRUE(store->put_resource("r/t/2", as_bytes("y")));
  EXPECT_EQ(*store->list_resources(), (std::vector<std::string>{"r/t/1", "r/t/2"}));
  ASSERT_TRUE(store->delete_resource("r/t/1"));
  EXPECT_EQ(store->delete_resource("r/t/1").error().code, "not_found");
  EXPECT_EQ(*store->list_resources(), (std::vector<std::string>{"r/t/2"}));
}

TEST(KeyFile, CreatedWithMode0600AndReloaded) {
  TempDir dir;
  auto path = dir.path() / "kek";
  auto k1 = kms::load_or_create_kek(path);
  ASSERT_TRUE(k1);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(*kms::load_or_create_kek(path), *k1);
  ::chmod(path.c_str(), 0644);
  EXPECT_EQ(kms::load_or_create_kek(path).error().code, "insecure_key_file");
  ::chmod(path.c_str(), 0600);
  ASSERT_TRUE(write_file_atomic(path, Bytes(31, 1), 0600));
  EXPECT_EQ(kms::load_or_create_kek(path).error().code, "bad_key_file");
}

TEST(Rvps, RegistersMessagesAndPersists) {
  TempDir dir;
  auto store = *SqliteStore::open(dir.path() / "t.db", crypto::random_bytes(32));
  auto rvps = *rvps::Rvps::open(*store);
  std::string payload = R"({"sample.svn":["1","2"],"tdx.mr_td":["abcd"]})";
  Json msg = {
      {"version", "0.1.0"}, {"type", "sample"}, {"payload", base64_encode(as_bytes(payload))}};
  ASSERT_TRUE(rvps->register_message(msg));
  EXPECT_EQ(rvps->query("sample.svn"), Json::array({"1", "2"}));
  EXPECT_EQ(rvps->query("unknown"), Json::array());
  auto reopened = *rvps::Rvps::open(*store);
  EXPECT_EQ(reopened->query("tdx.mr_td"), Json::array({"abcd"}));

  Json bad_version = msg;
  bad_version["version"] = "9";
  EXPECT_EQ(rvps->register_message(bad_version).error().code, "bad_reference_value");
  Json bad_payload = msg;
  bad_payload["payload"] = base64_encode(as_bytes(R"({"x":"not-an-array"})"));
  EXPECT_EQ(rvps->register_message(bad_payload).error().code, "bad_reference_value");
  Json not_b64 = msg;
  not_b64["payload"] = "%%%";
  EXPECT_EQ(rvps->register_message(not_b64).error().code, "bad_reference_value");
  // A rejected message changes nothing.
  EXPECT_FALSE(rvps->contains("x"));
}

}  // namespace
}  // namespace coffer::trustee::storage
