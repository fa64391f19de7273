#include "trustee/storage/sqlite_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/log.h"
#include "crypto/cipher.h"
#include "crypto/random.h"

namespace coffer::trustee::storage {
namespace {

// Resources, policies and reference values are all sealed with AES-256-GCM under the KEK; the
// associated data names the row (see the *_aad functions), so a row edited, moved or renamed in
// the database does not open. Schema version 1 stored policies and reference values in clear
// (columns body / value_json); open() seals them into version 2.
constexpr int kSchemaVersion = 2;
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
  nonce BLOB NOT NULL,
  ciphertext BLOB NOT NULL,
  tag BLOB NOT NULL,
  updated_at INTEGER NOT NULL DEFAULT (strftime('%s','now')),
  PRIMARY KEY (kind, id)
);
CREATE TABLE IF NOT EXISTS reference_values (
  name TEXT PRIMARY KEY,
  nonce BLOB NOT NULL,
  ciphertext BLOB NOT NULL,
  tag BLOB NOT NULL,
  updated_at INTEGER NOT NULL DEFAULT (strftime('%s','now'))
);
)sql";

// Associated data of each sealed row. Resource paths never hold NUL (ResourcePath), so the
// NUL-separated policy and reference value names cannot collide with them or with each other.
std::string policy_aad(const std::string& kind, const std::string& id) {
  return std::string("coffer-policy", 13) + '\0' + kind + '\0' + id;
}
std::string reference_value_aad(const std::string& name) {
  return std::string("coffer-reference-value", 22) + '\0' + name;
}

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
  sqlite3_stmt* stmt() { return stmt_; }
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

struct Sealed {
  Bytes nonce, ciphertext, tag;
};

Result<Sealed> seal(ByteView kek, ByteView plaintext, const std::string& aad) {
  Bytes nonce = crypto::random_bytes(12);
  auto sealed = COFFER_TRY(crypto::aes_gcm_encrypt(kek, nonce, plaintext, as_bytes(aad)));
  return Sealed{std::move(nonce), std::move(sealed.ciphertext), std::move(sealed.tag)};
}

// Opens a sealed row; `what` names it in the error ("storage_corrupt").
Result<Bytes> unseal(ByteView kek, const Sealed& row, const std::string& aad,
                     const std::string& what) {
  auto plain = crypto::aes_gcm_decrypt(kek, row.nonce, row.ciphertext, row.tag, as_bytes(aad));
  if (!plain) {
    return make_error("storage_corrupt", what +
                                             " does not decrypt: wrong key-encryption key or "
                                             "tampered database");
  }
  return std::move(*plain);
}

Sealed sealed_columns(Stmt& st, int first) {
  return Sealed{st.blob(first), st.blob(first + 1), st.blob(first + 2)};
}

std::string policy_name(const std::string& kind, const std::string& id) {
  return kind + " policy '" + id + "'";
}

// The database directory must be the owner's alone: created 0700 when absent, refused when
// group or others have any access (they could read or replace the -wal and -shm files).
Status private_directory(const std::filesystem::path& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      return make_error("storage_error",
                        "cannot create database directory '" + dir.string() + "': " + ec.message());
    }
    if (::chmod(dir.c_str(), 0700) != 0 || ::stat(dir.c_str(), &st) != 0) {
      return make_error("storage_error", "cannot make '" + dir.string() + "' private");
    }
  }
  if (!S_ISDIR(st.st_mode)) {
    return make_error("storage_error", "'" + dir.string() + "' is not a directory");
  }
  if ((st.st_mode & 077) != 0) {
    return make_error("insecure_storage_dir", "database directory '" + dir.string() +
                                                  "' is accessible to group or others: chmod "
                                                  "700 it, or put the database in a private "
                                                  "directory");
  }
  return ok();
}

// Creates the database file 0600 before SQLite opens it (SQLite gives the -wal and -shm files the
// database file's mode); an existing file, -wal or -shm readable by others is made 0600.
Status private_files(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::close(fd);
    return ok();
  }
  if (errno != EEXIST) {
    return make_error("storage_error",
                      "cannot create database '" + path.string() + "': " + std::strerror(errno));
  }
  for (const std::string suffix : {"", "-wal", "-shm"}) {
    std::filesystem::path p = path.string() + suffix;
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) continue;
    if (!S_ISREG(st.st_mode)) {
      return make_error("storage_error", "'" + p.string() + "' is not a regular file");
    }
    if ((st.st_mode & 077) != 0) {
      if (::chmod(p.c_str(), 0600) != 0) {
        return make_error("storage_error", "cannot chmod 600 '" + p.string() + "'");
      }
      spdlog::warn("{} was readable by others: made it mode 0600", p.string());
    }
  }
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
  std::filesystem::path dir = path.parent_path();
  COFFER_TRY_STATUS(private_directory(dir.empty() ? std::filesystem::path(".") : dir));
  COFFER_TRY_STATUS(private_files(path));
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
  COFFER_TRY_STATUS(store->migrate());
  return store;
}

Status SqliteStore::migrate() {
  int v = 0;
  {
    Stmt version(db_, "PRAGMA user_version");
    if (!version.ok() || version.step() != SQLITE_ROW) {
      return version.error("reading schema version");
    }
    v = sqlite3_column_int(version.stmt(), 0);
  }
  if (v > kSchemaVersion) {
    return make_error("storage_error", "the database has schema version " + std::to_string(v) +
                                           ", newer than this coffer-trustee's (" +
                                           std::to_string(kSchemaVersion) + ")");
  }
  if (v == kSchemaVersion) return exec(kSchema);
  bool clear_rows = false;
  {
    Stmt old(db_, "SELECT 1 FROM pragma_table_info('policies') WHERE name = 'body'");
    if (!old.ok()) return old.error("reading schema");
    clear_rows = old.step() == SQLITE_ROW;
  }
  COFFER_TRY_STATUS(exec("BEGIN IMMEDIATE"));
  auto migrated = [&]() -> Status {
    if (clear_rows) {
      COFFER_TRY_STATUS(
          exec("ALTER TABLE policies RENAME TO policies_v1; "
               "ALTER TABLE reference_values RENAME TO reference_values_v1;"));
    }
    COFFER_TRY_STATUS(exec(kSchema));
    if (clear_rows) {
      // Version 1 rows had no integrity protection: they are sealed as found.
      std::size_t n = 0;
      {
        Stmt policies(db_, "SELECT kind, id, body FROM policies_v1");
        if (!policies.ok()) return policies.error("migrating policies");
        int rc;
        while ((rc = policies.step()) == SQLITE_ROW) {
          COFFER_TRY_STATUS(
              put_policy_locked(policies.text(0), policies.text(1), policies.text(2)));
          ++n;
        }
        if (rc != SQLITE_DONE) return policies.error("migrating policies");
        Stmt values(db_, "SELECT name, value_json FROM reference_values_v1");
        if (!values.ok()) return values.error("migrating reference values");
        while ((rc = values.step()) == SQLITE_ROW) {
          COFFER_TRY_STATUS(put_reference_value_locked(values.text(0), values.text(1)));
          ++n;
        }
        if (rc != SQLITE_DONE) return values.error("migrating reference values");
      }  // the statements are finalized before their tables are dropped
      COFFER_TRY_STATUS(exec("DROP TABLE policies_v1; DROP TABLE reference_values_v1;"));
      spdlog::warn(
          "sealed {} policies and reference values stored in clear by an older coffer-trustee; "
          "re-register them if the database may have been altered",
          n);
    }
    return exec("PRAGMA user_version = 2");
  }();
  if (!migrated) {
    (void)exec("ROLLBACK");
    return migrated;
  }
  return exec("COMMIT");
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

Status SqliteStore::put_policy_locked(const std::string& kind, const std::string& id,
                                      const std::string& text) {
  auto sealed = COFFER_TRY(seal(kek_, as_bytes(text), policy_aad(kind, id)));
  Stmt st(db_,
          "INSERT INTO policies(kind, id, nonce, ciphertext, tag) VALUES(?1, ?2, ?3, ?4, ?5) "
          "ON CONFLICT(kind, id) DO UPDATE SET nonce=excluded.nonce, "
          "ciphertext=excluded.ciphertext, tag=excluded.tag, updated_at=strftime('%s','now')");
  if (!st.ok()) return st.error("storing policy");
  st.bind(1, kind);
  st.bind(2, id);
  st.bind(3, ByteView(sealed.nonce));
  st.bind(4, ByteView(sealed.ciphertext));
  st.bind(5, ByteView(sealed.tag));
  return run_write(st, "storing policy");
}

Status SqliteStore::put_policy(const std::string& kind, const std::string& id,
                               const std::string& text) {
  std::lock_guard lock(mu_);
  return put_policy_locked(kind, id, text);
}

Result<std::optional<std::string>> SqliteStore::get_policy(const std::string& kind,
                                                           const std::string& id) const {
  Sealed row;
  {
    std::lock_guard lock(mu_);
    Stmt st(db_, "SELECT nonce, ciphertext, tag FROM policies WHERE kind = ?1 AND id = ?2");
    if (!st.ok()) return st.error("reading policy");
    st.bind(1, kind);
    st.bind(2, id);
    int rc = st.step();
    if (rc == SQLITE_DONE) return std::optional<std::string>{};
    if (rc != SQLITE_ROW) return st.error("reading policy");
    row = sealed_columns(st, 0);
  }
  auto plain = COFFER_TRY(unseal(kek_, row, policy_aad(kind, id), policy_name(kind, id)));
  return std::optional<std::string>(to_string(plain));
}

Status SqliteStore::put_reference_value_locked(const std::string& name,
                                               const std::string& values_json) {
  auto sealed = COFFER_TRY(seal(kek_, as_bytes(values_json), reference_value_aad(name)));
  Stmt st(db_,
          "INSERT INTO reference_values(name, nonce, ciphertext, tag) VALUES(?1, ?2, ?3, ?4) "
          "ON CONFLICT(name) DO UPDATE SET nonce=excluded.nonce, ciphertext=excluded.ciphertext, "
          "tag=excluded.tag, updated_at=strftime('%s','now')");
  if (!st.ok()) return st.error("storing reference value");
  st.bind(1, name);
  st.bind(2, ByteView(sealed.nonce));
  st.bind(3, ByteView(sealed.ciphertext));
  st.bind(4, ByteView(sealed.tag));
  return run_write(st, "storing reference value");
}

Status SqliteStore::put_reference_value(const std::string& name, const std::string& values_json) {
  std::lock_guard lock(mu_);
  return put_reference_value_locked(name, values_json);
}

Result<std::optional<std::string>> SqliteStore::get_reference_value(const std::string& name) const {
  Sealed row;
  {
    std::lock_guard lock(mu_);
    Stmt st(db_, "SELECT nonce, ciphertext, tag FROM reference_values WHERE name = ?1");
    if (!st.ok()) return st.error("reading reference value");
    st.bind(1, name);
    int rc = st.step();
    if (rc == SQLITE_DONE) return std::optional<std::string>{};
    if (rc != SQLITE_ROW) return st.error("reading reference value");
    row = sealed_columns(st, 0);
  }
  auto plain =
      COFFER_TRY(unseal(kek_, row, reference_value_aad(name), "reference value '" + name + "'"));
  return std::optional<std::string>(to_string(plain));
}

Result<std::vector<std::pair<std::string, std::string>>> SqliteStore::all_reference_values() const {
  std::vector<std::pair<std::string, Sealed>> rows;
  {
    std::lock_guard lock(mu_);
    Stmt st(db_, "SELECT name, nonce, ciphertext, tag FROM reference_values ORDER BY name");
    if (!st.ok()) return st.error("listing reference values");
    int rc;
    while ((rc = st.step()) == SQLITE_ROW) rows.emplace_back(st.text(0), sealed_columns(st, 1));
    if (rc != SQLITE_DONE) return st.error("listing reference values");
  }
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(rows.size());
  for (const auto& [name, row] : rows) {
    auto plain =
        COFFER_TRY(unseal(kek_, row, reference_value_aad(name), "reference value '" + name + "'"));
    out.emplace_back(name, to_string(plain));
  }
  return out;
}

}  // namespace coffer::trustee::storage
