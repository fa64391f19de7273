#include "trustee/rvps/rvps.h"

#include <mutex>

namespace coffer::trustee::rvps {
namespace {

constexpr std::size_t kMaxNameLength = 256;
constexpr std::size_t kMaxValuesPerName = 4096;

Status check_name(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameLength) {
    return make_error("bad_reference_value", "reference value names are 1-256 characters");
  }
  for (char c : name) {
    if (static_cast<unsigned char>(c) < 0x20)
      return make_error("bad_reference_value", "reference value name has control characters");
  }
  return ok();
}

}  // namespace

Result<std::unique_ptr<Rvps>> Rvps::open(storage::Store& store) {
  std::unique_ptr<Rvps> rvps(new Rvps(store));
  auto all = COFFER_TRY(store.all_reference_values());
  for (auto& [name, text] : all) {
    auto values = parse_json(text);
    if (!values || !values->is_array()) {
      return make_error("storage_corrupt",
                        "stored reference value '" + name + "' is not a JSON array");
    }
    rvps->values_[name] = std::move(*values);
  }
  return rvps;
}

Status Rvps::register_message(const Json& message) {
  if (!message.is_object())
    return make_error("bad_reference_value", "RVPS message must be a JSON object");
  auto version = json_string(message, "version");
  if (!version || *version != "0.1.0") {
    return make_error("bad_reference_value", "RVPS message version must be \"0.1.0\"");
  }
  auto type = json_string(message, "type");
  if (!type || *type != "sample") {
    return make_error("bad_reference_value",
                      "unsupported RVPS message type (supported: \"sample\")");
  }
  auto payload_b64 = json_string(message, "payload");
  if (!payload_b64)
    return make_error("bad_reference_value", "RVPS message has no string 'payload'");
  auto payload = base64_decode(*payload_b64);
  if (!payload) return make_error("bad_reference_value", "RVPS payload is not standard base64");
  auto doc = parse_json(to_string(*payload));
  if (!doc || !doc->is_object()) {
    return make_error("bad_reference_value",
                      "RVPS payload must be a JSON object {\"name\": [values...]}");
  }
  for (const auto& [name, values] : doc->items()) {
    COFFER_TRY_STATUS(check_name(name));
    if (!values.is_array())
      return make_error("bad_reference_value", "reference value '" + name + "' must be an array");
  }
  for (const auto& [name, values] : doc->items()) COFFER_TRY_STATUS(set(name, values));
  return ok();
}

Status Rvps::set(const std::string& name, const Json& values) {
  COFFER_TRY_STATUS(check_name(name));
  if (!values.is_array() || values.size() > kMaxValuesPerName) {
    return make_error("bad_reference_value",
                      "reference value '" + name + "' must be an array of at most 4096 values");
  }
  COFFER_TRY_STATUS(store_.put_reference_value(name, values.dump()));
  std::unique_lock lock(mu_);
  values_[name] = values;
  return ok();
}

Json Rvps::query(const std::string& name) const {
  std::shared_lock lock(mu_);
  auto it = values_.find(name);
  return it == values_.end() ? Json::array() : it->second;
}

bool Rvps::contains(const std::string& name) const {
  std::shared_lock lock(mu_);
  return values_.contains(name);
}

}  // namespace coffer::trustee::rvps
