#include "trustee/storage/sqlite_store.h"

#include <sqlite3.h>

#include "core/log.h"
#include "crypto/cipher.h"
#include "crypto/random.h"

namespace coffer::trustee::storage {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS resources (
  path TEXT PRIMARY KEY,
  nonce BLOB NOT NULL,
  ciphertext BLOB NOT NULL,
  tag BLOB NOT NULL,
  updated_at INTEGER NOT NULL DEFAULT (strftime('%s','now'))
);
CREATE TABLE IF NOT EXISTS policies (
  kind TEXT NOT NULL,
  id TEXT NOT NULL,
  body TEXT NOT NULL,
  updated_at INTEGER NOT NULL DEFAULT (strftime('%s','now')),
  PRIMARY KEY (kind, id)
);
CREATE TABLE IF NOT EXISTS reference_values (
  name TEXT PRIMARY KEY,
  value_json TEXT NOT NULL,
  updated_at INTEGER NOT NULL DEFAULT (strftime('%s','now'))
);
)sql";

// A prepared statement that finalizes itself.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  [[nodiscard]] bool ok() const { return rc_ == SQLITE_OK; }
  void bind(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void bind(int i, ByteView b) {
    sqlite3_bind_blob(stmt_, i, b.data(), static_cast<int>(b.size()), SQLITE_TRANSIENT);
  }
  int step() { return sqlite3_step(stmt_); }
  std::string text(int col) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }
  Bytes blob(int col) {
    const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, col));
    return p ? Bytes(p, p + sqlite3_column_bytes(stmt_, col)) : Bytes();
  }
  std::unexpected<Error> error(std::string_view what) const {
    return make_error("storage_error", std::string(what) + ": " + sqlite3_errmsg(db_));
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

Status run_write(Stmt& st, std::string_view what) {
  if (!st.ok()) return st.error(what);
  if (st.step() != SQLITE_DONE) return st.error(what);
  return ok();
}

}  // namespace

SqliteStore::SqliteStore(sqlite3* db, Bytes kek) : db_(db), kek_(std::move(kek)) {}

SqliteStore::~SqliteStore() { sqlite3_close_v2(db_); }

Status SqliteStore::exec(const char* sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return make_error("storage_error", "SQLite: " + msg);
  }
  return ok();
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::filesystem::path& path,
                                                       Bytes kek) {
  if (kek.size() != 32) return make_error("bad_key", "storage key-encryption key must be 32 bytes");
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close_v2(db);
    return make_error("storage_error", "cannot open database '" + path.string() + "': " + msg);
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(db, std::move(kek)));
  sqlite3_busy_timeout(db, 5000);
  // WAL keeps readers off the writer's back; FULL makes each commit durable before it returns.
  COFFER_TRY_STATUS(
      store->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"));
  COFFER_TRY_STATUS(store->exec(kSchema));
  return store;
}

Status SqliteStore::put_resource(const std::string& path, ByteView value) {
  Bytes nonce = crypto::random_bytes(12);
  auto sealed = COFFER_TRY(crypto::aes_gcm_encrypt(kek_, nonce, value, as_bytes(path)));
  std::lock_guard lock(mu_);
  Stmt st(db_,
          "INSERT INTO resources(path, nonce, ciphertext, tag) VALUES(?1, ?2, ?3, ?4) "
          "ON CONFLICT(path) DO UPDATE SET nonce=excluded.nonce, ciphertext=excluded.ciphertext, "
          "tag=excluded.tag, updated_at=strftime('%s','now')");
  if (!st.ok()) return st.error("storing resource");
  st.bind(1, path);
  st.bind(2, ByteView(nonce));
  st.bind(3, ByteView(sealed.ciphertext));
  st.bind(4, ByteView(sealed.tag));
  return run_write(st, "storing resource");
}

Result<std::optional<Bytes>> SqliteStore::get_resource(const std::string& path) const {
  Bytes nonce, ct, tag;
  {
    std::lock_guard lock(mu_);
    Stmt st(db_, "SELECT nonce, ciphertext, tag FROM resources WHERE path = ?1");
    if (!st.ok()) return st.error("reading resource");
    st.bind(1, path);
    int rc = st.step();
    if (rc == SQLITE_DONE) return std::optional<Bytes>{};
    if (rc != SQLITE_ROW) return st.error("reading resource");
    nonce = st.blob(0);
    ct = st.blob(1);
    tag = st.blob(2);
  }
  auto plain = crypto::aes_gcm_decrypt(kek_, nonce, ct, tag, as_bytes(path));
  if (!plain) {
    return make_error(
        "storage_corrupt",
        "resource '" + path + "' does not decrypt: wrong key-encryption key or tampered database");
  }
  return std::optional<Bytes>(std::move(*plain));
}

Status SqliteStore::delete_resource(const std::string& path) {
  std::lock_guard lock(mu_);
  Stmt st(db_, "DELETE FROM resources WHERE path = ?1");
  if (!st.ok()) return st.error("deleting resource");
  st.bind(1, path);
  COFFER_TRY_STATUS(run_write(st, "deleting resource"));
  if (sqlite3_changes(db_) == 0) return make_error("not_found", "no resource at '" + path + "'");
  return ok();
}

Result<std::vector<std::string>> SqliteStore::list_resources() const {
  std::lock_guard lock(mu_);
  Stmt st(db_, "SELECT path FROM resources ORDER BY path");
  if (!st.ok()) return st.error("listing resources");
  std::vector<std::string> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) out.push_back(st.text(0));
  if (rc != SQLITE_DONE) return st.error("listing resources");
  return out;
}

Status SqliteStore::put_policy(const std::string& kind, const std::string& id,
                               const std::string& text) {
  std::lock_guard lock(mu_);
  Stmt st(
      db_,
      "INSERT INTO policies(kind, id, body) VALUES(?1, ?2, ?3) "
      "ON CONFLICT(kind, id) DO UPDATE SET body=excluded.body, updated_at=strftime('%s','now')");
  if (!st.ok()) return st.error("storing policy");
  st.bind(1, kind);
  st.bind(2, id);
  st.bind(3, text);
  return run_write(st, "storing policy");
}

Result<std::optional<std::string>> SqliteStore::get_policy(const std::string& kind,
                                                           const std::string& id) const {
  std::lock_guard lock(mu_);
  Stmt st(db_, "SELECT body FROM policies WHERE kind = ?1 AND id = ?2");
  if (!st.ok()) return st.error("reading policy");
  st.bind(1, kind);
  st.bind(2, id);
  int rc = st.step();
  if (rc == SQLITE_DONE) return std::optional<std::string>{};
  if (rc != SQLITE_ROW) return st.error("reading policy");
  return std::optional<std::string>(st.text(0));
}

Status SqliteStore::put_reference_value(const std::string& name, const std::string& values_json) {
  std::lock_guard lock(mu_);
  Stmt st(db_,
          "INSERT INTO reference_values(name, value_json) VALUES(?1, ?2) "
          "ON CONFLICT(name) DO UPDATE SET value_json=excluded.value_json, "
          "updated_at=strftime('%s','now')");
  if (!st.ok()) return st.error("storing reference value");
  st.bind(1, name);
  st.bind(2, values_json);
  return run_write(st, "storing reference value");
}

Result<std::optional<std::string>> SqliteStore::get_reference_value(const std::string& name) const {
  std::lock_guard lock(mu_);
  Stmt st(db_, "SELECT value_json FROM reference_values WHERE name = ?1");
  if (!st.ok()) return st.error("reading reference value");
  st.bind(1, name);
  int rc = st.step();
  if (rc == SQLITE_DONE) return std::optional<std::string>{};
  if (rc != SQLITE_ROW) return st.error("reading reference value");
  return std::optional<std::string>(st.text(0));
}

Result<std::vector<std::pair<std::string, std::string>>> SqliteStore::all_reference_values() const {
  std::lock_guard lock(mu_);
  Stmt st(db_, "SELECT name, value_json FROM reference_values ORDER BY name");
  if (!st.ok()) return st.error("listing reference values");
  std::vector<std::pair<std::string, std::string>> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) out.emplace_back(st.text(0), st.text(1));
  if (rc != SQLITE_DONE) return st.error("listing reference values");
  return out;
}

}  // namespace coffer::trustee::storage
