// Store on an embedded SQLite database (WAL, synchronous=FULL). Resources are sealed with
// AES-256-GCM under the KEK; the resource path is the associated data, so a ciphertext moved to
// another row does not decrypt.
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
  sqlite3* db_;
  Bytes kek_;
  mutable std::mutex mu_;
};

}  // namespace coffer::trustee::storage
