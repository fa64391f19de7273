#include "trustee/kbs/resource_path.h"

#include <vector>

#include "core/bytes.h"

namespace coffer::trustee::kbs {
namespace {

bool segment_char(char c, bool first) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
      c == '-')
    return true;
  return !first && c == '.';
}

}  // namespace

bool valid_segment(std::string_view segment) {
  if (segment.empty() || segment.size() > kMaxSegmentLength) return false;
  for (std::size_t i = 0; i < segment.size(); ++i) {
    if (!segment_char(segment[i], i == 0)) return false;
  }
  return true;
}

Result<ResourcePath> parse_resource_path(std::string_view text) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (parts.size() <= 3) {
    auto slash = text.find('/', start);
    parts.push_back(text.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (parts.size() != 3) {
    return make_error("bad_resource_path",
                      "a resource path has exactly three segments: repo/type/tag");
  }
  for (auto p : parts) {
    if (!valid_segment(p)) {
      return make_error("bad_resource_path",
                        "invalid resource path segment '" + printable_excerpt(p, 40) +
                            "': use 1-128 characters of A-Z a-z 0-9 _ - . (not starting with '.')");
    }
  }
  return ResourcePath{std::string(parts[0]), std::string(parts[1]), std::string(parts[2])};
}

Result<ResourcePath> parse_resource_uri(std::string_view uri) {
  constexpr std::string_view kScheme = "kbs://";
  if (!uri.starts_with(kScheme))
    return make_error("bad_resource_path", "resource URI must start with kbs://");
  auto rest = uri.substr(kScheme.size());
  auto slash = rest.find('/');
  if (slash == std::string_view::npos)
    return make_error("bad_resource_path", "resource URI has no path");
  return parse_resource_path(rest.substr(slash + 1));
}

}  // namespace coffer::trustee::kbs
