// Prometheus text-format metrics (exposition format 0.0.4): labelled counters and latency
// histograms. Thread-safe; cheap enough for every request.
#pragma once

#include <array>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace coffer::trustee::kbs {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
 public:
  void describe(const std::string& name, const std::string& help, const std::string& type);
  void increment(const std::string& name, const Labels& labels = {}, double by = 1);
  void observe_seconds(const std::string& name, double seconds, const Labels& labels = {});
  [[nodiscard]] std::string render() const;

  static constexpr std::array<double, 12> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1,    5};

 private:
  struct Histogram {
    std::array<std::uint64_t, kBuckets.size()> buckets{};
    std::uint64_t count = 0;
    double sum = 0;
  };
  static std::string label_text(const Labels& labels);
  mutable std::mutex mu_;
  std::map<std::string, std::pair<std::string, std::string>> help_;  // name -> (help, type)
  std::map<std::string, std::map<std::string, double>> counters_;    // name -> labels -> value
  std::map<std::string, std::map<std::string, Histogram>> histograms_;
};

}  // namespace coffer::trustee::kbs
