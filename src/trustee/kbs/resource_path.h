// Resource paths "repo/type/tag" as the KBS protocol names secrets (kbs:///repo/type/tag).
#pragma once

#include <string>
#include <string_view>

#include "core/error.h"

namespace coffer::trustee::kbs {

struct ResourcePath {
  std::string repo;
  std::string type;
  std::string tag;
  [[nodiscard]] std::string str() const { return repo + "/" + type + "/" + tag; }
};

constexpr std::size_t kMaxSegmentLength = 128;

// Each segment must match [A-Za-z0-9_-][A-Za-z0-9_.-]* and be at most kMaxSegmentLength long;
// anything else, including percent-encoding and "..", is "bad_resource_path".
bool valid_segment(std::string_view segment);
// Parses "repo/type/tag" (exactly three segments).
Result<ResourcePath> parse_resource_path(std::string_view text);
// Parses "kbs:///repo/type/tag" (and "kbs://host/repo/type/tag", ignoring host).
Result<ResourcePath> parse_resource_uri(std::string_view uri);

}  // namespace coffer::trustee::kbs
