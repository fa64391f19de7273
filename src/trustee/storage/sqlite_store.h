// Store on an embedded SQLite database (WAL, synchronous=FULL). Resources, policies and reference
// values are sealed with AES-256-GCM under the KEK; the row's name (resource path, policy kind and
// id, reference value name) is the associated data, so a ciphertext edited, moved to another row
// or renamed does not decrypt ("storage_corrupt"). The database file and its -wal/-shm are mode
// 0600, in a directory of mode 0700 (created so, refused when open to group or others:
// "insecure_storage_dir").
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>

#include "trustee/storage/store.h"

struct sqlite3;

namespace coffer::trustee::storage {

class SqliteStore final : public Store {
 public:
  // Opens (creating if needed) the database; `kek` is 32 bytes.
  static Result<std::unique_ptr<SqliteStore>> open(const std::filesystem::path& path, Bytes kek);
  ~SqliteStore() override;

  Status put_resource(const std::string& path, ByteView value) override;
  Result<std::optional<Bytes>> get_resource(const std::string& path) const override;
  Status delete_resource(const std::string& path) override;
  Result<std::vector<std::string>> list_resources() const override;
  Status put_policy(const std::string& kind, const std::string& id,
                    const std::string& text) override;
  Result<std::optional<std::string>> get_policy(const std::string& kind,
                                                const std::string& id) const override;
  Status put_reference_value(const std::string& name, const std::string& values_json) override;
  Result<std::optional<std::string>> get_reference_value(const std::string& name) const override;
  Result<std::vector<std::pair<std::string, std::string>>> all_reference_values() const override;

 private:
  SqliteStore(sqlite3* db, Bytes kek);
  Status exec(const char* sql) const;
  // Creates the schema, or brings an older one to the current version.
  Status migrate();
  // The writes, with mu_ held (or during open/migrate).
  Status put_policy_locked(const std::string& kind, const std::string& id, const std::string& text);
  Status put_reference_value_locked(const std::string& name, const std::string& values_json);
  sqlite3* db_;
  Bytes kek_;
  mutable std::mutex mu_;
};

}  // namespace coffer::trustee::storage
