// Task events to containerd (events.h).
#include "runtime/shim/events.h"

#include <spdlog/spdlog.h>

#include <utility>

namespace coffer::runtime::shim {

namespace {
constexpr int kAttempts = 5;
constexpr auto kForwardTimeout = std::chrono::seconds(5);
}  // namespace

eventspb::ForwardRequest make_forward(std::string_view ns, std::string_view topic,
                                      const google::protobuf::Message& event,
                                      std::chrono::system_clock::time_point at) {
  eventspb::ForwardRequest request;
  auto* envelope = request.mutable_envelope();
  const auto ns_since = std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch());
  envelope->mutable_timestamp()->set_seconds(
      std::chrono::duration_cast<std::chrono::seconds>(ns_since).count());
  envelope->mutable_timestamp()->set_nanos(
      static_cast<std::int32_t>(ns_since.count() % 1000000000));
  envelope->set_namespace_(std::string(ns));
  envelope->set_topic(std::string(topic));
  // containerd's typeurl: the proto message name, no type.googleapis.com/ prefix
  envelope->mutable_event()->set_type_url(event.GetDescriptor()->full_name());
  envelope->mutable_event()->set_value(event.SerializeAsString());
  return request;
}

Publisher::Publisher(std::string address, std::string ns)
    : address_(std::move(address)), ns_(std::move(ns)) {
  if (address_.starts_with("unix://")) address_ = address_.substr(7);
  thread_ = std::jthread([this](const std::stop_token& stop) { run(stop); });
}

Publisher::~Publisher() {
  thread_.request_stop();
  cv_.notify_all();
}

void Publisher::publish(std::string_view topic, const google::protobuf::Message& event) {
  auto request = make_forward(ns_, topic, event, std::chrono::system_clock::now());
  spdlog::debug("event {} {}", topic, event.GetDescriptor()->full_name());
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(request));
  }
  cv_.notify_all();
}

void Publisher::flush(std::chrono::milliseconds limit) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, limit, [this] { return queue_.empty() && !busy_; });
}

bool Publisher::send(const eventspb::ForwardRequest& request) {
  if (address_.empty()) return true;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    if (!client_) {
      auto c = net::ttrpc::Client::connect_unix(address_);
      if (!c) {
        spdlog::warn("events: connecting to {}: {}", address_, c.error().to_string());
        continue;
      }
      client_ = std::move(*c);
    }
    auto r = client_->call("containerd.services.events.ttrpc.v1.Events", "Forward",
                           request.SerializeAsString(), kForwardTimeout,
                           {{std::string(kNamespaceMetadata), ns_}});
    if (r) return true;
    spdlog::warn("events: forwarding {}: {}", request.envelope().topic(), r.error().to_string());
    client_.reset();
  }
  return false;
}

void Publisher::run(const std::stop_token& stop) {
  for (;;) {
    eventspb::ForwardRequest next;
    {
      std::unique_lock lock(mu_);
      busy_ = false;
      cv_.notify_all();
      if (!cv_.wait(lock, stop, [this] { return !queue_.empty(); })) return;
      next = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
    }
    if (!send(next)) spdlog::error("events: dropped {}", next.envelope().topic());
  }
}

}  // namespace coffer::runtime::shim
