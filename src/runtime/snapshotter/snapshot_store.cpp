#include "runtime/snapshotter/snapshot_store.h"

#include <sqlite3.h>

#include <utility>

namespace coffer::runtime::snapshotter {
namespace {

// parent_id names the parent row; the key of a committed snapshot is its name.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS snapshots (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL UNIQUE,
  parent_id INTEGER REFERENCES snapshots(id),
  kind INTEGER NOT NULL CHECK (kind IN (1, 2, 3)),
  guest_pull INTEGER NOT NULL,
  created_ns INTEGER NOT NULL,
  updated_ns INTEGER NOT NULL,
  size INTEGER NOT NULL DEFAULT 0,
  inodes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS labels (
  snapshot_id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (snapshot_id, key)
);
)sql";

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  [[nodiscard]] bool ok() const { return rc_ == SQLITE_OK; }
  void bind(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void bind(int i, std::int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void bind_null(int i) { sqlite3_bind_null(stmt_, i); }
  int step() { return sqlite3_step(stmt_); }
  std::string text(int col) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p != nullptr ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
                        : std::string();
  }
  std::int64_t integer(int col) { return sqlite3_column_int64(stmt_, col); }
  bool is_null(int col) { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

std::unexpected<Error> db_error(sqlite3* db, std::string_view what) {
  return make_error("store_failed", std::string(what) + ": " + sqlite3_errmsg(db));
}

// A transaction rolled back unless committed.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) {
    ok_ = sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK;
  }
  ~Transaction() {
    if (ok_ && !done_) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  Status begun() const {
    if (!ok_) {
      return db_error(db_, "begin transaction");
    }
    return ok();
  }
  Status commit() {
    if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
      return db_error(db_, "commit");
    }
    done_ = true;
    return ok();
  }

 private:
  sqlite3* db_;
  bool ok_ = false;
  bool done_ = false;
};

}  // namespace

SnapshotStore::SnapshotStore(sqlite3* db) : db_(db) {}
SnapshotStore::~SnapshotStore() { sqlite3_close_v2(db_); }

Result<std::unique_ptr<SnapshotStore>> SnapshotStore::open(const std::filesystem::path& path) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  std::unique_ptr<SnapshotStore> store(new SnapshotStore(db));
  if (rc != SQLITE_OK) {
    return make_error("store_failed", "cannot open " + path.string() + ": " + sqlite3_errstr(rc));
  }
  COFFER_TRY_STATUS(store->exec("PRAGMA journal_mode=WAL"));
  COFFER_TRY_STATUS(store->exec("PRAGMA synchronous=FULL"));
  COFFER_TRY_STATUS(store->exec("PRAGMA foreign_keys=ON"));
  sqlite3_busy_timeout(db, 5000);
  COFFER_TRY_STATUS(store->exec(kSchema));
  COFFER_TRY_STATUS(store->load());
  return store;
}

Status SnapshotStore::exec(const char* sql) {
  if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return db_error(db_, "database setup");
  }
  return ok();
}

Status SnapshotStore::load() {
  std::map<std::int64_t, std::int64_t> parent_of;
  std::map<std::int64_t, std::string> key_of;
  std::map<std::string, Snapshot> loaded;
  {
    Stmt s(db_,
           "SELECT id, key, parent_id, kind, guest_pull, created_ns, updated_ns, size, "
           "inodes FROM snapshots");
    if (!s.ok()) {
      return db_error(db_, "load snapshots");
    }
    int rc = 0;
    while ((rc = s.step()) == SQLITE_ROW) {
      Snapshot snap;
      snap.id = s.integer(0);
      snap.key = s.text(1);
      if (!s.is_null(2)) {
        parent_of[snap.id] = s.integer(2);
      }
      snap.kind = static_cast<Kind>(s.integer(3));
      snap.guest_pull = s.integer(4) != 0;
      snap.created_ns = s.integer(5);
      snap.updated_ns = s.integer(6);
      snap.size = s.integer(7);
      snap.inodes = s.integer(8);
      key_of[snap.id] = snap.key;
      loaded[snap.key] = std::move(snap);
    }
    if (rc != SQLITE_DONE) {
      return db_error(db_, "load snapshots");
    }
  }
  for (auto& [key, snap] : loaded) {
    if (auto it = parent_of.find(snap.id); it != parent_of.end()) {
      snap.parent = key_of.at(it->second);  // the foreign key keeps the parent row
    }
  }
  Stmt s(db_,
         "SELECT s.key, l.key, l.value FROM labels l JOIN snapshots s ON s.id = l.snapshot_id");
  if (!s.ok()) {
    return db_error(db_, "load labels");
  }
  int rc = 0;
  while ((rc = s.step()) == SQLITE_ROW) {
    loaded.at(s.text(0)).labels[s.text(1)] = s.text(2);
  }
  if (rc != SQLITE_DONE) {
    return db_error(db_, "load labels");
  }
  by_key_ = std::move(loaded);
  return ok();
}

const Snapshot* SnapshotStore::find(const std::string& key) const {
  auto it = by_key_.find(key);
  return it == by_key_.end() ? nullptr : &it->second;
}

std::vector<const Snapshot*> SnapshotStore::all() const {
  std::vector<const Snapshot*> out;
  out.reserve(by_key_.size());
  for (const auto& [key, snap] : by_key_) {
    out.push_back(&snap);
  }
  return out;
}

bool SnapshotStore::has_children(const std::string& key) const {
  for (const auto& [unused, snap] : by_key_) {
    if (snap.parent == key) {
      return true;
    }
  }
  return false;
}

Status SnapshotStore::write_labels(std::int64_t id, const Labels& labels) {
  Stmt del(db_, "DELETE FROM labels WHERE snapshot_id = ?");
  del.bind(1, id);
  if (!del.ok() || del.step() != SQLITE_DONE) {
    return db_error(db_, "write labels");
  }
  for (const auto& [key, value] : labels) {
    Stmt ins(db_, "INSERT INTO labels (snapshot_id, key, value) VALUES (?, ?, ?)");
    ins.bind(1, id);
    ins.bind(2, key);
    ins.bind(3, value);
    if (!ins.ok() || ins.step() != SQLITE_DONE) {
      return db_error(db_, "write labels");
    }
  }
  return ok();
}

Result<Snapshot> SnapshotStore::insert(Snapshot snapshot) {
  const Snapshot* parent = snapshot.parent.empty() ? nullptr : find(snapshot.parent);
  if (!snapshot.parent.empty() && parent == nullptr) {
    return make_error("store_failed", "insert: unknown parent");
  }
  Transaction tx(db_);
  COFFER_TRY_STATUS(tx.begun());
  Stmt s(db_,
         "INSERT INTO snapshots (key, parent_id, kind, guest_pull, created_ns, updated_ns, size, "
         "inodes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  s.bind(1, snapshot.key);
  if (parent != nullptr) {
    s.bind(2, parent->id);
  } else {
    s.bind_null(2);
  }
  s.bind(3, static_cast<std::int64_t>(snapshot.kind));
  s.bind(4, static_cast<std::int64_t>(snapshot.guest_pull ? 1 : 0));
  s.bind(5, snapshot.created_ns);
  s.bind(6, snapshot.updated_ns);
  s.bind(7, snapshot.size);
  s.bind(8, snapshot.inodes);
  if (!s.ok() || s.step() != SQLITE_DONE) {
    return db_error(db_, "insert snapshot");
  }
  snapshot.id = sqlite3_last_insert_rowid(db_);
  COFFER_TRY_STATUS(write_labels(snapshot.id, snapshot.labels));
  COFFER_TRY_STATUS(tx.commit());
  by_key_[snapshot.key] = snapshot;
  return snapshot;
}

Status SnapshotStore::commit(const std::string& key, const std::string& name, const Labels& labels,
                             std::int64_t size, std::int64_t inodes, std::int64_t now_ns) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) {
    return make_error("store_failed", "commit: unknown key");
  }
  Transaction tx(db_);
  COFFER_TRY_STATUS(tx.begun());
  Stmt s(
      db_,
      "UPDATE snapshots SET key = ?, kind = 3, size = ?, inodes = ?, updated_ns = ? WHERE id = ?");
  s.bind(1, name);
  s.bind(2, size);
  s.bind(3, inodes);
  s.bind(4, now_ns);
  s.bind(5, it->second.id);
  if (!s.ok() || s.step() != SQLITE_DONE) {
    return db_error(db_, "commit snapshot");
  }
  COFFER_TRY_STATUS(write_labels(it->second.id, labels));
  COFFER_TRY_STATUS(tx.commit());
  Snapshot snap = std::move(it->second);
  by_key_.erase(it);
  snap.key = name;
  snap.kind = Kind::kCommitted;
  snap.size = size;
  snap.inodes = inodes;
  snap.updated_ns = now_ns;
  snap.labels = labels;
  by_key_[name] = std::move(snap);
  return ok();
}

Status SnapshotStore::set_labels(const std::string& key, const Labels& labels,
                                 std::int64_t now_ns) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) {
    return make_error("store_failed", "update: unknown key");
  }
  Transaction tx(db_);
  COFFER_TRY_STATUS(tx.begun());
  Stmt s(db_, "UPDATE snapshots SET updated_ns = ? WHERE id = ?");
  s.bind(1, now_ns);
  s.bind(2, it->second.id);
  if (!s.ok() || s.step() != SQLITE_DONE) {
    return db_error(db_, "update snapshot");
  }
  COFFER_TRY_STATUS(write_labels(it->second.id, labels));
  COFFER_TRY_STATUS(tx.commit());
  it->second.labels = labels;
  it->second.updated_ns = now_ns;
  return ok();
}

Status SnapshotStore::remove(const std::string& key) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) {
    return make_error("store_failed", "remove: unknown key");
  }
  Transaction tx(db_);
  COFFER_TRY_STATUS(tx.begun());
  Stmt s(db_, "DELETE FROM snapshots WHERE id = ?");
  s.bind(1, it->second.id);
  if (!s.ok() || s.step() != SQLITE_DONE) {
    return db_error(db_, "remove snapshot");
  }
  COFFER_TRY_STATUS(tx.commit());
  by_key_.erase(it);
  return ok();
}

}  // namespace coffer::runtime::snapshotter
