#include "trustee/as/ear.h"

#include <algorithm>
#include <cstdlib>
#include <utility>
#include <vector>

#include "core/bytes.h"

namespace coffer::trustee::as {
namespace {

int tier_rank(std::string_view tier) {
  if (tier == "contraindicated") return 3;
  if (tier == "warning") return 2;
  if (tier == "affirming") return 1;
  return 0;
}

constexpr std::size_t kMaxReasonsPerClaim = 16;
constexpr std::size_t kMaxReasonBytes = 200;

struct Meaning {
  std::string_view claim;
  int value;
  std::string_view words;
};

// draft-ietf-rats-ar4si section 2.3: the values the draft names, in its terms.
constexpr Meaning kMeanings[] = {
    {"instance-identity", 2, "recognized instance, not compromised"},
    {"instance-identity", 96, "instance not trustworthy"},
    {"instance-identity", 97, "unrecognized instance"},
    {"configuration", 2, "approved configuration"},
    {"configuration", 32, "configuration with known vulnerabilities"},
    {"configuration", 36, "unsupportable configuration"},
    {"configuration", 96, "contraindicated configuration"},
    {"executables", 2, "approved run-time executables"},
    {"executables", 3, "approved boot executables"},
    {"executables", 32, "executables with known vulnerabilities"},
    {"executables", 33, "unrecognized run-time executables"},
    {"executables", 96, "contraindicated run-time executables"},
    {"executables", 97, "unrecognized or contraindicated boot executables"},
    {"file-system", 2, "approved file system"},
    {"file-system", 32, "unrecognized file system"},
    {"file-system", 96, "contraindicated file system"},
    {"hardware", 2, "genuine hardware"},
    {"hardware", 32, "hardware or firmware with known vulnerabilities"},
    {"hardware", 96, "contraindicated hardware or firmware"},
    {"hardware", 97, "unrecognized hardware or firmware"},
    {"runtime-opaque", 2, "memory encrypted"},
    {"runtime-opaque", 32, "memory isolated, not encrypted"},
    {"runtime-opaque", 96, "memory visible to others"},
    {"storage-opaque", 2, "secrets encrypted with hardware-protected keys"},
    {"storage-opaque", 32, "secrets encrypted with software keys"},
    {"storage-opaque", 96, "secrets not encrypted"},
    {"sourced-data", 2, "data from trusted sources"},
    {"sourced-data", 32, "data from untrusted sources"},
    {"sourced-data", 96, "data from contraindicated sources"},
};

// The same value for every claim (draft section 2.3.2).
std::string_view common_meaning(int value) {
  switch (value) {
    case 0:
      return "no claim";
    case 1:
      return "the verifier could not appraise it";
    case -1:
      return "verifier malfunction";
    case 99:
      return "cryptographic validation of the evidence failed";
    default:
      return "";
  }
}

// Reason text as the attestation service stored it (already printable ASCII) is kept as is;
// anything else is quoted safely (never escaped twice).
std::string printable(const std::string& text) {
  bool plain = text.size() <= kMaxReasonBytes &&
               std::ranges::all_of(text, [](char ch) { return ch >= 0x20 && ch < 0x7f; });
  return plain ? text : printable_excerpt(text, kMaxReasonBytes);
}

// One submod's non-affirming claims, worst first.
void describe_submod(const Json& submod, std::vector<std::string>& out) {
  auto tv = submod.find("ear.trustworthiness-vector");
  if (tv == submod.end() || !tv->is_object()) return;
  const Json* reasons = nullptr;
  if (auto pc = submod.find("ear.veraison.policy-claims"); pc != submod.end() && pc->is_object()) {
    if (auto r = pc->find("reasons"); r != pc->end() && r->is_object()) reasons = &*r;
  }
  std::vector<std::pair<std::string_view, int>> bad;
  for (auto claim : kTrustClaims) {
    auto it = tv->find(claim);
    if (it == tv->end() || !it->is_number_integer()) continue;
    int v = static_cast<int>(it->get<std::int64_t>());
    if (tier_rank(trust_tier(v)) >= tier_rank("warning")) bad.emplace_back(claim, v);
  }
  std::ranges::stable_sort(bad, [](const auto& a, const auto& b) {
    return tier_rank(trust_tier(a.second)) > tier_rank(trust_tier(b.second));
  });
  for (const auto& [claim, v] : bad) {
    std::string why;
    if (reasons != nullptr) {
      if (auto r = reasons->find(claim); r != reasons->end() && r->is_array()) {
        for (const auto& text : *r) {
          if (!text.is_string()) continue;
          if (!why.empty()) why += ", ";
          why += printable(text.get<std::string>());
        }
      }
    }
    if (why.empty()) {
      why = std::string(ar4si_meaning(claim, v));
      if (why.empty()) why = std::string(trust_tier(v));
    }
    out.push_back(std::string(claim) + " " + std::to_string(v) + ": " + why);
  }
}

}  // namespace

std::string_view ar4si_meaning(std::string_view claim, int value) {
  for (const auto& m : kMeanings) {
    if (m.claim == claim && m.value == value) return m.words;
  }
  return common_meaning(value);
}

Json policy_reasons_from(const Json& policy_result) {
  Json out = Json::object();
  if (!policy_result.is_object()) return out;
  auto r = policy_result.find("reasons");
  if (r == policy_result.end() || !r->is_object()) return out;
  for (auto claim : kTrustClaims) {
    auto it = r->find(claim);
    if (it == r->end() || !it->is_array()) continue;
    Json list = Json::array();
    for (const auto& text : *it) {
      if (list.size() == kMaxReasonsPerClaim) break;
      if (text.is_string())
        list.push_back(printable_excerpt(text.get<std::string>(), kMaxReasonBytes));
    }
    if (!list.empty()) out[std::string(claim)] = std::move(list);
  }
  return out;
}

std::string describe_appraisal(const Json& claims) {
  if (!claims.is_object()) return "";
  auto submods = claims.find("submods");
  if (submods == claims.end() || !submods->is_object()) return "";
  bool name_them = submods->size() != 1 || !submods->contains("cpu0");
  std::string text;
  for (const auto& [name, submod] : submods->items()) {
    if (!submod.is_object()) continue;
    std::vector<std::string> parts;
    describe_submod(submod, parts);
    for (const auto& p : parts) {
      if (!text.empty()) text += "; ";
      if (name_them) text += printable_excerpt(name, 64) + ": ";
      text += p;
    }
  }
  return text;
}

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
