// coffer-snapshotter's metadata (docs/kubernetes.md, "The snapshotter"): every snapshot's key,
// parent, kind, labels, times, usage and whether it is a guest-pull placeholder, durable in an
// SQLite database (WAL, synchronous=FULL: a mutation is one transaction, so a crash leaves the
// state before or after it, never half of it). The whole table is also held in memory; every
// mutation writes the database first and changes memory only when the transaction committed.
// Not thread-safe: the service serialises calls.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"

struct sqlite3;

namespace coffer::runtime::snapshotter {

// The numbers of containerd.services.snapshots.v1.Kind.
enum class Kind : std::uint8_t { kView = 1, kActive = 2, kCommitted = 3 };

using Labels = std::map<std::string, std::string>;

struct Snapshot {
  std::int64_t id = 0;  // stable across Commit: names the snapshot's directory
  std::string key;      // the name once committed
  std::string parent;   // the parent's key, "" for none
  Kind kind = Kind::kActive;
  // A placeholder: no files on the host, the enclave pulls the image (labels say which).
  bool guest_pull = false;
  std::int64_t created_ns = 0;
  std::int64_t updated_ns = 0;
  std::int64_t size = 0;  // usage, recorded at Commit for a committed snapshot
  std::int64_t inodes = 0;
  Labels labels;
};

class SnapshotStore {
 public:
  // Opens (creating) the database at `path`. Errors: "store_failed".
  static Result<std::unique_ptr<SnapshotStore>> open(const std::filesystem::path& path);
  ~SnapshotStore();
  SnapshotStore(const SnapshotStore&) = delete;
  SnapshotStore& operator=(const SnapshotStore&) = delete;

  [[nodiscard]] const Snapshot* find(const std::string& key) const;
  [[nodiscard]] std::vector<const Snapshot*> all() const;
  [[nodiscard]] bool has_children(const std::string& key) const;

  // Adds a snapshot (its id assigned here); the key must be new and the parent known.
  Result<Snapshot> insert(Snapshot snapshot);
  // An active snapshot becomes committed under `name`, with `labels` and its usage.
  Status commit(const std::string& key, const std::string& name, const Labels& labels,
                std::int64_t size, std::int64_t inodes, std::int64_t now_ns);
  Status set_labels(const std::string& key, const Labels& labels, std::int64_t now_ns);
  // Removes a snapshot without children.
  Status remove(const std::string& key);

 private:
  explicit SnapshotStore(sqlite3* db);
  Status load();
  Status exec(const char* sql);
  Status write_labels(std::int64_t id, const Labels& labels);

  sqlite3* db_;
  std::map<std::string, Snapshot> by_key_;
};

}  // namespace coffer::runtime::snapshotter
