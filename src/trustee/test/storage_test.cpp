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

void exec_raw(const std::filesystem::path& db, const char* sql) {
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(raw, sql, nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "") << sql;
  sqlite3_free(err);
  sqlite3_close(raw);
}

// Policies and reference values are sealed like resources (AES-256-GCM under the KEK, bound to
// their kind and name): a row edited, moved or renamed in SQLite directly is refused on read.
TEST(SqliteStore, TamperedPoliciesAndReferenceValuesAreRefused) {
  TempDir dir;
  auto db = dir.path() / "t.db";
  Bytes kek = crypto::random_bytes(32);
  {
    auto store = *SqliteStore::open(db, kek);
    ASSERT_TRUE(store->put_policy("attestation", "default_cpu", "package policy # strict"));
    ASSERT_TRUE(store->put_policy("attestation", "lenient", "package policy # lenient"));
    ASSERT_TRUE(store->put_policy("resource", "default", "package policy # resource"));
    ASSERT_TRUE(store->put_reference_value("tdx.mr_td", R"(["aa11"])"));
    ASSERT_TRUE(store->put_reference_value("tdx.rtmr_0", R"(["bb22"])"));
    ASSERT_TRUE(store->put_reference_value("tdx.rtmr_1", R"(["cc33"])"));
  }
  auto text =
      to_string(*read_file(db)) + to_string(read_file(dir.path() / "t.db-wal").value_or(Bytes{}));
  EXPECT_EQ(text.find("# strict"), std::string::npos);
  EXPECT_EQ(text.find("aa11"), std::string::npos);

  // the lenient policy's sealed row copied over the default one
  exec_raw(db,
           "UPDATE policies SET nonce=(SELECT nonce FROM policies WHERE id='lenient'), "
           "ciphertext=(SELECT ciphertext FROM policies WHERE id='lenient'), "
           "tag=(SELECT tag FROM policies WHERE id='lenient') WHERE id='default_cpu'");
  // a reference value renamed; another one's ciphertext changed
  exec_raw(db, "DELETE FROM reference_values WHERE name='tdx.rtmr_1'");
  exec_raw(db, "UPDATE reference_values SET name='tdx.rtmr_1' WHERE name='tdx.rtmr_0'");
  exec_raw(db,
           "UPDATE reference_values SET ciphertext=zeroblob(length(ciphertext)) "
           "WHERE name='tdx.mr_td'");
  // the resource policy's row moved to the attestation kind
  exec_raw(db, "UPDATE policies SET kind='attestation', id='moved' WHERE kind='resource'");

  auto store = *SqliteStore::open(db, kek);
  auto p = store->get_policy("attestation", "default_cpu");
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, "storage_corrupt");
  EXPECT_EQ(p.error().message,
            "attestation policy 'default_cpu' does not decrypt: wrong key-encryption key or "
            "tampered database");
  EXPECT_EQ(store->get_policy("attestation", "moved").error().code, "storage_corrupt");
  EXPECT_EQ(*store->get_policy("attestation", "lenient"),
            std::optional<std::string>("package policy # lenient"));
  auto rv = store->get_reference_value("tdx.rtmr_1");
  ASSERT_FALSE(rv);
  EXPECT_EQ(rv.error().code, "storage_corrupt");
  EXPECT_EQ(rv.error().message,
            "reference value 'tdx.rtmr_1' does not decrypt: wrong key-encryption key or tampered "
            "database");
  EXPECT_EQ(store->get_reference_value("tdx.mr_td").error().code, "storage_corrupt");
  EXPECT_EQ(store->all_reference_values().error().code, "storage_corrupt");
  // the RVPS does not start on a tampered table
  EXPECT_EQ(rvps::Rvps::open(*store).error().code, "storage_corrupt");
  // a wrong KEK is refused the same way
  auto wrong = *SqliteStore::open(db, crypto::random_bytes(32));
  EXPECT_EQ(wrong->get_policy("attestation", "lenient").error().code, "storage_corrupt");
}

// A database of schema version 1 (policies and reference values in clear) is sealed on open.
TEST(SqliteStore, ClearRowsOfSchemaVersion1AreSealedOnOpen) {
  TempDir dir;
  auto db = dir.path() / "t.db";
  exec_raw(db,
           "CREATE TABLE policies (kind TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, "
           "updated_at INTEGER, PRIMARY KEY (kind, id));"
           "CREATE TABLE reference_values (name TEXT PRIMARY KEY, value_json TEXT NOT NULL, "
           "updated_at INTEGER);"
           "INSERT INTO policies(kind, id, body) VALUES('resource', 'default', 'package old');"
           "INSERT INTO reference_values(name, value_json) VALUES('tdx.mr_td', '[\"aa\"]');");
  ASSERT_EQ(::chmod(db.c_str(), 0600), 0);
  Bytes kek = crypto::random_bytes(32);
  {
    auto store = SqliteStore::open(db, kek);
    ASSERT_TRUE(store) << store.error().to_string();
    EXPECT_EQ(*(*store)->get_policy("resource", "default"),
              std::optional<std::string>("package old"));
    EXPECT_EQ(*(*store)->get_reference_value("tdx.mr_td"), std::optional<std::string>(R"(["aa"])"));
  }
  exec_raw(db, "UPDATE reference_values SET name='tdx.rtmr_0'");
  auto store = *SqliteStore::open(db, kek);
  EXPECT_EQ(store->get_reference_value("tdx.rtmr_0").error().code, "storage_corrupt");
}

// trustee.db and its -wal/-shm files are 0600, in a directory only the owner can enter.
TEST(SqliteStore, DatabaseFilesArePrivate) {
  TempDir dir;
  auto state = dir.path() / "state";
  auto db = state / "trustee.db";
  {
    auto store = SqliteStore::open(db, crypto::random_bytes(32));
    ASSERT_TRUE(store) << store.error().to_string();
    ASSERT_TRUE((*store)->put_resource("a/b/c", as_bytes("x")));
    auto mode = [](const std::filesystem::path& p) {
      struct stat st {};
      EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
      return st.st_mode & 0777;
    };
    EXPECT_EQ(mode(state), 0700u);
    EXPECT_EQ(mode(db), 0600u);
    EXPECT_EQ(mode(state / "trustee.db-wal"), 0600u);
    EXPECT_EQ(mode(state / "trustee.db-shm"), 0600u);
  }
  // an existing database readable by others is made private when opened
  ASSERT_EQ(::chmod(db.c_str(), 0644), 0);
  {
    auto store = SqliteStore::open(db, crypto::random_bytes(32));
    ASSERT_TRUE(store) << store.error().to_string();
    struct stat st {};
    ASSERT_EQ(::stat(db.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
  }
  // a directory others can enter is refused
  auto open_dir = dir.path() / "shared";
  std::filesystem::create_directories(open_dir);
  ASSERT_EQ(::chmod(open_dir.c_str(), 0755), 0);
  auto refused = SqliteStore::open(open_dir / "trustee.db", crypto::random_bytes(32));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, "insecure_storage_dir");
  EXPECT_FALSE(std::filesystem::exists(open_dir / "trustee.db"));
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
