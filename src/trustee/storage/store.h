// Persistent state of the trustee: resources (secrets), policies and reference values.
// Implementations make every write one transaction: after a crash a key holds its old value or
// its new one, never a mix.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/error.h"

namespace coffer::trustee::storage {

class Store {
 public:
  virtual ~Store() = default;

  // Resources, keyed by "repo/type/tag". Values are secrets: implementations encrypt at rest.
  virtual Status put_resource(const std::string& path, ByteView value) = 0;
  // nullopt when absent.
  virtual Result<std::optional<Bytes>> get_resource(const std::string& path) const = 0;
  // "not_found" when absent.
  virtual Status delete_resource(const std::string& path) = 0;
  virtual Result<std::vector<std::string>> list_resources() const = 0;

  // Policies by kind ("resource", "attestation") and id ("default", "default_cpu", ...).
  virtual Status put_policy(const std::string& kind, const std::string& id,
                            const std::string& text) = 0;
  virtual Result<std::optional<std::string>> get_policy(const std::string& kind,
                                                        const std::string& id) const = 0;

  // Reference values: name -> JSON array text of accepted values.
  virtual Status put_reference_value(const std::string& name, const std::string& values_json) = 0;
  virtual Result<std::optional<std::string>> get_reference_value(const std::string& name) const = 0;
  virtual Result<std::vector<std::pair<std::string, std::string>>> all_reference_values() const = 0;
};

}  // namespace coffer::trustee::storage
