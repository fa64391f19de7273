// Task events from the shim to containerd (runtime v2): each is a containerd.events message
// wrapped in an Envelope {timestamp, namespace, topic, event = Any{type_url = the message's full
// name, e.g. "containerd.events.TaskExit", value}} and sent with
// containerd.services.events.ttrpc.v1.Events/Forward to $TTRPC_ADDRESS, with the namespace in the
// ttrpc metadata (containerd-namespace-ttrpc), in the order they happened.
#pragma once

#include <google/protobuf/message.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "github.com/containerd/containerd/api/services/ttrpc/events/v1/events.pb.h"
#include "net/ttrpc/client.h"

namespace coffer::runtime::shim {

namespace eventspb = ::containerd::services::events::ttrpc::v1;

// containerd's topics (runtime/events.go).
inline constexpr std::string_view kTopicCreate = "/tasks/create";
inline constexpr std::string_view kTopicStart = "/tasks/start";
inline constexpr std::string_view kTopicExit = "/tasks/exit";
inline constexpr std::string_view kTopicDelete = "/tasks/delete";
inline constexpr std::string_view kTopicExecAdded = "/tasks/exec-added";
inline constexpr std::string_view kTopicExecStarted = "/tasks/exec-started";

// The metadata key carrying the namespace on containerd's ttrpc calls.
inline constexpr std::string_view kNamespaceMetadata = "containerd-namespace-ttrpc";

eventspb::ForwardRequest make_forward(std::string_view ns, std::string_view topic,
                                      const google::protobuf::Message& event,
                                      std::chrono::system_clock::time_point at);

// Sends events in order on a thread of its own: a failed Forward is retried (reconnecting) a few
// times, then dropped with an error in the log, as containerd's own shims do.
class Publisher {
 public:
  // `address`: $TTRPC_ADDRESS (a socket path, optionally unix://); empty: events are dropped.
  Publisher(std::string address, std::string ns);
  ~Publisher();
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  void publish(std::string_view topic, const google::protobuf::Message& event);
  // Waits (at most `limit`) until every queued event was sent or dropped.
  void flush(std::chrono::milliseconds limit);

 private:
  void run(const std::stop_token& stop);
  bool send(const eventspb::ForwardRequest& request);

  std::string address_;
  std::string ns_;
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::deque<eventspb::ForwardRequest> queue_;
  bool busy_ = false;
  std::unique_ptr<net::ttrpc::Client> client_;  // the sender thread's only
  std::jthread thread_;
};

}  // namespace coffer::runtime::shim
