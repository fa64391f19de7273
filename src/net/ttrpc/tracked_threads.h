// Threads that run to completion on their own and are joined afterwards: finished ones by
// join_finished() (called now and then by the owner), the rest by join_all() at the end.
#pragma once

#include <atomic>
#include <list>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace coffer::net::ttrpc {

class TrackedThreads {
 public:
  TrackedThreads() = default;
  TrackedThreads(const TrackedThreads&) = delete;
  TrackedThreads& operator=(const TrackedThreads&) = delete;
  ~TrackedThreads() { join_all(); }

  template <class Body>
  void start(Body&& body) {
    auto done = std::make_shared<std::atomic<bool>>(false);
    std::thread thread([done, body = std::forward<Body>(body)]() mutable {
      body();
      *done = true;
    });
    std::lock_guard lock(mu_);
    threads_.push_back(Entry{std::move(thread), std::move(done)});
  }

  void join_finished() { join(false); }
  void join_all() { join(true); }

  // Threads started and not joined yet (running, or finished since the last join_finished()).
  [[nodiscard]] std::size_t size() {
    std::lock_guard lock(mu_);
    return threads_.size();
  }

 private:
  struct Entry {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };

  void join(bool all) {
    std::vector<Entry> finished;
    {
      std::lock_guard lock(mu_);
      for (auto it = threads_.begin(); it != threads_.end();) {
        if (all || *it->done) {
          finished.push_back(std::move(*it));
          it = threads_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& e : finished) e.thread.join();
  }

  std::mutex mu_;
  std::list<Entry> threads_;
};

}  // namespace coffer::net::ttrpc
