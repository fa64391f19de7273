#include "trustee/kbs/metrics.h"

#include <fmt/format.h>

namespace coffer::trustee::kbs {

std::string Metrics::label_text(const Labels& labels) {
  std::string out;
  for (const auto& [k, v] : labels) {
    if (!out.empty()) out += ",";
    out += k + "=\"";
    for (char c : v) {
      if (c == '"' || c == '\\') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    out += "\"";
  }
  return out;
}

void Metrics::describe(const std::string& name, const std::string& help, const std::string& type) {
  std::lock_guard lock(mu_);
  help_[name] = {help, type};
}

void Metrics::increment(const std::string& name, const Labels& labels, double by) {
  auto key = label_text(labels);
  std::lock_guard lock(mu_);
  counters_[name][key] += by;
}

void Metrics::observe_seconds(const std::string& name, double seconds, const Labels& labels) {
  auto key = label_text(labels);
  std::lock_guard lock(mu_);
  auto& h = histograms_[name][key];
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) ++h.buckets[i];
  }
  ++h.count;
  h.sum += seconds;
}

std::string Metrics::render() const {
  std::lock_guard lock(mu_);
  std::string out;
  auto header = [&](const std::string& name, const char* default_type) {
    auto it = help_.find(name);
    if (it != help_.end()) {
      out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, it->second.first, name,
                         it->second.second);
    } else {
      out += fmt::format("# TYPE {} {}\n", name, default_type);
    }
  };
  for (const auto& [name, series] : counters_) {
    header(name, "counter");
    for (const auto& [labels, value] : series) {
      out += labels.empty() ? fmt::format("{} {}\n", name, value)
                            : fmt::format("{}{{{}}} {}\n", name, labels, value);
    }
  }
  for (const auto& [name, series] : histograms_) {
    header(name, "histogram");
    for (const auto& [labels, h] : series) {
      std::string sep = labels.empty() ? "" : ",";
      for (std::size_t i = 0; i < kBuckets.size(); ++i) {
        out += fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, kBuckets[i],
                           h.buckets[i]);
      }
      out += fmt::format("{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, sep, h.count);
      std::string braces = labels.empty() ? "" : "{" + labels + "}";
      out +=
          fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, braces, h.sum, name, braces, h.count);
    }
  }
  return out;
}

}  // namespace coffer::trustee::kbs
