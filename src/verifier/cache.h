// A bounded, thread-safe map from a digest of some bytes to an immutable object derived from them
// (parsed and signature-verified collateral, certificate chains). Verifiers keep what does not
// change between pieces of evidence here and re-check only what does (time, revocation).
//
// Only successfully verified objects are inserted, so evidence that fails cannot fill the cache.
// When full, the oldest entry goes (FIFO): a cache of verified vendor objects rarely holds more
// than a few dozen, the bound only stops unbounded growth.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/bytes.h"

namespace coffer::verifier {

// The cache key of some bytes: the bytes themselves, length-prefixed so that keys made of several
// parts cannot run into each other. The map hashes keys (std::hash) and compares them exactly, so
// a hit means byte-for-byte the same input: stronger than a digest, and cheaper than hashing the
// collateral with SHA-256 on every call (the keys stay in memory, bounded by the capacity).
inline std::string cache_key(std::string_view data) {
  std::string key = std::to_string(data.size());
  key.push_back(':');
  key.append(data);
  return key;
}
inline std::string cache_key(ByteView data) {
  return cache_key(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
}

template <typename V>
class BoundedCache {
 public:
  explicit BoundedCache(std::size_t capacity = 256) : capacity_(capacity == 0 ? 1 : capacity) {}

  [[nodiscard]] std::shared_ptr<const V> find(const std::string& key) const {
    std::shared_lock lock(mutex_);
    auto it = entries_.find(key);
    return it == entries_.end() ? nullptr : it->second;
  }

  // Keeps the first value inserted under `key` (concurrent misses compute equal values).
  std::shared_ptr<const V> insert(const std::string& key, const std::shared_ptr<const V>& value) {
    std::unique_lock lock(mutex_);
    auto [it, inserted] = entries_.try_emplace(key, value);
    if (!inserted) return it->second;
    order_.push_back(key);
    while (entries_.size() > capacity_) {
      entries_.erase(order_.front());
      order_.pop_front();
    }
    return it->second;
  }

  [[nodiscard]] std::size_t size() const {
    std::shared_lock lock(mutex_);
    return entries_.size();
  }

  void clear() {
    std::unique_lock lock(mutex_);
    entries_.clear();
    order_.clear();
  }

 private:
  std::size_t capacity_;
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<const V>> entries_;
  std::deque<std::string> order_;
};

}  // namespace coffer::verifier
