#include "trustee/as/ear.h"

#include <cstdlib>

namespace coffer::trustee::as {
namespace {

int tier_rank(std::string_view tier) {
  if (tier == "contraindicated") return 3;
  if (tier == "warning") return 2;
  if (tier == "affirming") return 1;
  return 0;
}

}  // namespace

std::string_view trust_tier(int value) {
  int a = std::abs(value);
  if (a <= 1) return "none";
  if (a < 32) return "affirming";
  if (a < 96) return "warning";
  return "contraindicated";
}

Result<Json> trust_vector_from(const Json& policy_result) {
  Json vector = Json::object();
  if (!policy_result.is_object()) return vector;
  for (auto key : kTrustClaims) {
    auto it = policy_result.find(key);
    if (it == policy_result.end()) continue;
    if (!it->is_number_integer()) {
      return make_error("bad_policy_result",
                        "attestation policy claim '" + std::string(key) + "' must be an integer");
    }
    auto v = it->get<std::int64_t>();
    if (v < -127 || v > 127) {
      return make_error("bad_policy_result",
                        "attestation policy claim '" + std::string(key) + "' is outside -127..127");
    }
    vector[std::string(key)] = v;
  }
  return vector;
}

std::string ear_status(const Json& trust_vector) {
  std::string_view worst = "none";
  for (const auto& [k, v] : trust_vector.items()) {
    auto tier = trust_tier(static_cast<int>(v.get<std::int64_t>()));
    if (tier_rank(tier) > tier_rank(worst)) worst = tier;
  }
  return std::string(worst);
}

}  // namespace coffer::trustee::as
