// Task events as containerd decodes them (events.h): the Envelope, its Any's type URL, and the
// Forward call over a real ttrpc connection with the namespace metadata.
#include "runtime/shim/events.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <vector>

#include "github.com/containerd/containerd/api/events/task.pb.h"
#include "net/ttrpc/server.h"

namespace coffer::runtime::shim {
namespace {

TEST(Events, EnvelopeAsContainerdReadsIt) {
  containerd::events::TaskExit exit;
  exit.set_container_id("c1");
  exit.set_id("c1");
  exit.set_exit_status(3);
  const auto at =
      std::chrono::system_clock::time_point(std::chrono::nanoseconds(1700000000123456789));
  const auto req = make_forward("default", kTopicExit, exit, at);
  // what containerd's Forward handler receives, byte for byte through the wire format
  eventspb::ForwardRequest back;
  ASSERT_TRUE(back.ParseFromString(req.SerializeAsString()));
  const auto& e = back.envelope();
  EXPECT_EQ(e.namespace_(), "default");
  EXPECT_EQ(e.topic(), "/tasks/exit");
  EXPECT_EQ(e.timestamp().seconds(), 1700000000);
  EXPECT_EQ(e.timestamp().nanos(), 123456789);
  // typeurl: the proto name, no type.googleapis.com/ prefix
  EXPECT_EQ(e.event().type_url(), "containerd.events.TaskExit");
  containerd::events::TaskExit decoded;
  ASSERT_TRUE(decoded.ParseFromString(e.event().value()));
  EXPECT_EQ(decoded.container_id(), "c1");
  EXPECT_EQ(decoded.exit_status(), 3U);

  containerd::events::TaskCreate create;
  EXPECT_EQ(make_forward("k8s.io", kTopicCreate, create, at).envelope().event().type_url(),
            "containerd.events.TaskCreate");
}

TEST(Events, ForwardedInOrderWithTheNamespace) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("shim-events-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto sock = dir / "ttrpc.sock";
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> topics;
  std::vector<std::string> namespaces;
  net::ttrpc::Server server;
  server.add_method(
      "containerd.services.events.ttrpc.v1.Events", "Forward",
      [&](const net::ttrpc::CallContext& ctx, std::string_view body) -> net::ttrpc::CallResult {
        eventspb::ForwardRequest r;
        if (!r.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
          return net::ttrpc::status_error(net::ttrpc::Code::kInvalidArgument, "x");
        }
        std::lock_guard lock(mu);
        topics.push_back(r.envelope().topic());
        for (const auto& [k, v] : ctx.metadata) {
          if (k == kNamespaceMetadata) namespaces.push_back(v);
        }
        cv.notify_all();
        return std::string();
      });
  ASSERT_TRUE(server.listen_unix(sock));
  {
    Publisher p("unix://" + sock.string(), "default");
    containerd::events::TaskStart start;
    containerd::events::TaskExit exit;
    containerd::events::TaskDelete del;
    p.publish(kTopicStart, start);
    p.publish(kTopicExit, exit);
    p.publish(kTopicDelete, del);
    p.flush(std::chrono::seconds(10));
  }
  std::unique_lock lock(mu);
  EXPECT_EQ(topics, (std::vector<std::string>{"/tasks/start", "/tasks/exit", "/tasks/delete"}));
  EXPECT_EQ(namespaces, (std::vector<std::string>{"default", "default", "default"}));
  lock.unlock();
  server.stop();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace coffer::runtime::shim
