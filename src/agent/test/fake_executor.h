// In-test fakes of the executor and the image pull for the agent service tests.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <stop_token>
#include <string>
#include <vector>

#include "agent/executor/executor.h"
#include "agent/image/image_service.h"

namespace coffer::agent::fakes {

class FakeExecutor : public ContainerExecutor {
 public:
  Status create_sandbox(const std::string& id) override {
    std::lock_guard lock(mu_);
    if (!sandboxes_.insert(id).second) return make_error("sandbox_exists", "sandbox " + id);
    return ok();
  }
  Result<std::filesystem::path> sandbox_netns(const std::string&) override {
    return std::filesystem::path("/proc/self/ns/net");
  }
  Status remove_sandbox(const std::string& id) override {
    std::lock_guard lock(mu_);
    if (sandboxes_.erase(id) == 0) return make_error("sandbox_not_found", "sandbox " + id);
    return ok();
  }
  Result<ContainerState> create(const ContainerCreate& request) override {
    std::lock_guard lock(mu_);
    if (!sandboxes_.contains(request.sandbox_id)) {
      return make_error("sandbox_not_found", "sandbox " + request.sandbox_id);
    }
    if (containers_.contains(request.id)) return make_error("container_exists", request.id);
    ContainerState s;
    s.id = request.id;
    s.sandbox_id = request.sandbox_id;
    s.image = request.image;
    containers_[request.id] = s;
    last_create = request;
    return s;
  }
  Status start(const std::string& id) override {
    std::lock_guard lock(mu_);
    auto it = containers_.find(id);
    if (it == containers_.end()) return make_error("container_not_found", id);
    if (it->second.status != ContainerStatus::kCreated) return make_error("bad_state", "started");
    it->second.status = ContainerStatus::kRunning;
    it->second.pid = 42;
    return ok();
  }
  // Blocks until release() or the call's stop token; counts waiters and stops seen.
  Result<ExitStatus> wait(const std::string& id, const std::string&,
                          std::stop_token stop) override {
    std::unique_lock lock(mu_);
    if (!containers_.contains(id)) return make_error("container_not_found", id);
    ++waiting;
    cv_.notify_all();
    const bool released = cv_.wait(lock, stop, [&] { return released_; });
    --waiting;
    if (!released) {
      ++stops_seen;
      cv_.notify_all();
      return make_error("cancelled", "wait cancelled");
    }
    return ExitStatus{3, 0, false};
  }
  Status signal(const std::string& id, const std::string&, int signo) override {
    std::lock_guard lock(mu_);
    if (!containers_.contains(id)) return make_error("container_not_found", id);
    last_signal = signo;
    return ok();
  }
  Result<std::string> exec(const std::string& id, const ProcessSpec&) override {
    std::lock_guard lock(mu_);
    if (!containers_.contains(id)) return make_error("container_not_found", id);
    return std::string("exec-1");
  }
  Status remove(const std::string& id) override {
    std::lock_guard lock(mu_);
    if (containers_.erase(id) == 0) return make_error("container_not_found", id);
    return ok();
  }
  Result<ContainerState> state(const std::string& id) override {
    std::lock_guard lock(mu_);
    auto it = containers_.find(id);
    if (it == containers_.end()) return make_error("container_not_found", id);
    return it->second;
  }
  std::vector<ContainerState> list() override {
    std::lock_guard lock(mu_);
    std::vector<ContainerState> out;
    for (const auto& [id, s] : containers_) out.push_back(s);
    return out;
  }
  Result<ContainerStats> stats(const std::string& id) override {
    std::lock_guard lock(mu_);
    if (!containers_.contains(id)) return make_error("container_not_found", id);
    return ContainerStats{4096, 1000, 1};
  }
  Status write_stdin(const std::string& id, const std::string&, ByteView data,
                     std::stop_token) override {
    std::lock_guard lock(mu_);
    if (!containers_.contains(id)) return make_error("container_not_found", id);
    stdin_.append(reinterpret_cast<const char*>(data.data()), data.size());
    return ok();
  }
  Status close_stdin(const std::string& id, const std::string&) override {
    std::lock_guard lock(mu_);
    if (!containers_.contains(id)) return make_error("container_not_found", id);
    stdin_closed = true;
    return ok();
  }
  // stdout echoes what stdin received, then end of stream once stdin is closed.
  Result<Bytes> read_output(const std::string& id, const std::string&, OutputStream stream,
                            std::size_t max_bytes, std::stop_token) override {
    std::lock_guard lock(mu_);
    if (!containers_.contains(id)) return make_error("container_not_found", id);
    if (stream == OutputStream::kStderr) return Bytes{};
    const std::size_t n = std::min(max_bytes, stdin_.size());
    Bytes out(stdin_.begin(), stdin_.begin() + static_cast<std::ptrdiff_t>(n));
    stdin_.erase(0, n);
    return out;
  }
  Status resize_tty(const std::string& id, const std::string&, std::uint16_t,
                    std::uint16_t) override {
    std::lock_guard lock(mu_);
    if (!containers_.contains(id)) return make_error("container_not_found", id);
    return make_error("bad_state", "container has no terminal");
  }

  void release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  // Waits (bounded) until `pred` holds under the lock.
  template <class Pred>
  bool wait_until(Pred pred) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] { return pred(*this); });
  }

  int waiting = 0;
  int stops_seen = 0;
  int last_signal = 0;
  bool stdin_closed = false;
  ContainerCreate last_create;

 private:
  std::mutex mu_;
  std::condition_variable_any cv_;
  bool released_ = false;
  std::set<std::string> sandboxes_;
  std::map<std::string, ContainerState> containers_;
  std::string stdin_;
};

}  // namespace coffer::agent::fakes
