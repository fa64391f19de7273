// Reference Value Provider Service: accepted values per name (e.g. "mr_td" -> ["91eb..."]),
// registered by admins, read by attestation policies through query_reference_value(name).
#pragma once

#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "core/error.h"
#include "core/json.h"
#include "trustee/storage/store.h"

namespace coffer::trustee::rvps {

class Rvps {
 public:
  // Loads every stored value into memory (policies query them on every attestation).
  static Result<std::unique_ptr<Rvps>> open(storage::Store& store);

  // An RVPS message {"version":"0.1.0","type":"sample","payload":"<std base64 of
  // {\"name\":[values...]}>"}; each named list replaces the previous one.
  // Errors: "bad_reference_value" with what is wrong.
  Status register_message(const Json& message);
  Status set(const std::string& name, const Json& values);
  // The accepted values for `name` as a JSON array; [] when none are registered.
  [[nodiscard]] Json query(const std::string& name) const;
  [[nodiscard]] bool contains(const std::string& name) const;

 private:
  explicit Rvps(storage::Store& store) : store_(store) {}
  storage::Store& store_;
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, Json> values_;
};

}  // namespace coffer::trustee::rvps
