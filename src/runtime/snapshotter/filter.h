// containerd's filter syntax (github.com/containerd/containerd/filters) as Walk/List sends it,
// e.g. `labels."containerd.io/snapshot.ref"==sha256:...,parent=="k8s.io/3/..."`: a filter is
// comma-separated selectors that all must match; several filters match when any does. A
// selector is a field path (`name`, `labels.KEY`, `labels."KEY"`) alone (present and non-empty)
// or with `==`, `!=` or `~=` (RE2 regular expression, quoted "..." or /.../) and a value
// (quoted or bare up to the next comma).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace coffer::runtime::snapshotter {

// Bounds on untrusted filter text.
inline constexpr std::size_t kMaxFilters = 32;
inline constexpr std::size_t kMaxFilterBytes = 8192;

// The value of a field path of the object under test, or nullopt when it has none.
using FieldLookup = std::function<std::optional<std::string>(const std::vector<std::string>&)>;

class Filter {
 public:
  // Parses the filters of one request (ORed); no filters match everything. Errors:
  // "invalid_argument" naming the position.
  static Result<Filter> parse(const std::vector<std::string>& filters);

  [[nodiscard]] bool match(const FieldLookup& lookup) const;

  struct Selector;
  Filter();
  ~Filter();
  Filter(Filter&&) noexcept;
  Filter& operator=(Filter&&) noexcept;

 private:
  std::vector<std::vector<Selector>> any_of_;
  bool match_all_ = false;
};

}  // namespace coffer::runtime::snapshotter
