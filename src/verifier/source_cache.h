// What the HTTP collateral sources (Intel PCS/PCCS in dcap/pcs_source.h, AMD KDS in
// snp/kds_source.h) share: their on-disk cache, one fetch per key in flight, and a pool of HTTP
// clients. A source holds its own lock only to read and update its memory cache, never across a
// download, so one slow vendor answer stalls only the callers that need that same document.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <exception>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "net/http_client.h"

namespace coffer::verifier {

// Files of a source's on-disk cache: one per key and suffix, named after the key with every
// character outside [A-Za-z0-9] replaced by '_' ("vcek/v1/Milan/crl" -> "vcek_v1_Milan_crl"),
// written atomically. An empty directory disables it (reads find nothing, writes do nothing).
class DiskCache {
 public:
  DiskCache(std::filesystem::path dir, std::size_t max_file_bytes)
      : dir_(std::move(dir)), max_file_bytes_(max_file_bytes) {}

  struct Entry {
    std::string data;
    std::filesystem::file_time_type written;
  };
  // nullopt when disabled, absent, unreadable or over the size bound.
  [[nodiscard]] std::optional<Entry> read(const std::string& key,
                                          std::string_view suffix = {}) const;
  // Best effort: a failed write costs only a later download.
  void write(const std::string& key, std::string_view suffix, std::string_view data) const;

 private:
  [[nodiscard]] std::filesystem::path path_of(const std::string& key,
                                              std::string_view suffix) const;
  std::filesystem::path dir_;
  std::size_t max_file_bytes_;
};

// One fetch per key in flight: the first caller for a key runs `fetch` (without any lock held);
// callers for the same key that arrive meanwhile wait for that fetch and get its result; callers
// for other keys are not held up.
template <typename V>
class SingleFlight {
 public:
  Result<V> run(const std::string& key, const std::function<Result<V>()>& fetch) {
    std::shared_future<Result<V>> in_flight;
    std::promise<Result<V>> promise;
    {
      std::lock_guard lock(mutex_);
      if (auto it = flights_.find(key); it != flights_.end()) {
        in_flight = it->second;
        ++joined_;
        joined_changed_.notify_all();
      } else {
        flights_.emplace(key, promise.get_future().share());
      }
    }
    if (in_flight.valid()) return in_flight.get();
    std::optional<Result<V>> result;
    try {
      result.emplace(fetch());
    } catch (...) {
      finish(key);
      promise.set_exception(std::current_exception());
      throw;
    }
    finish(key);
    promise.set_value(*result);
    return std::move(*result);
  }

  // For tests: blocks until `n` callers in total have joined another caller's fetch.
  void wait_for_joined(std::size_t n) const {
    std::unique_lock lock(mutex_);
    joined_changed_.wait(lock, [&] { return joined_ >= n; });
  }

 private:
  void finish(const std::string& key) {
    std::lock_guard lock(mutex_);
    flights_.erase(key);
  }

  mutable std::mutex mutex_;
  mutable std::condition_variable joined_changed_;
  std::map<std::string, std::shared_future<Result<V>>> flights_;
  std::size_t joined_ = 0;
};

// GET requests from a pool of HTTP clients (a client serves one request at a time; idle ones are
// kept for their connections), counting the requests made.
class HttpFetcher {
 public:
  explicit HttpFetcher(net::HttpClientOptions options) : options_(std::move(options)) {}
  ~HttpFetcher();
  Result<net::Response> get(const std::string& url);
  [[nodiscard]] std::size_t requests_made() const;

 private:
  net::HttpClientOptions options_;
  mutable std::mutex mutex_;  // guards idle_ and requests_, never held across a request
  std::vector<std::unique_ptr<net::HttpClient>> idle_;
  std::size_t requests_ = 0;
};

}  // namespace coffer::verifier
