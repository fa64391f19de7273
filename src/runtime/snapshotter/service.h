// containerd.services.snapshots.v1.Snapshots over gRPC on a unix socket: the proxy-plugin side of
// coffer-snapshotter (containerd: [proxy_plugins.NAME] type = "snapshot", address = SOCKET).
#pragma once

#include <filesystem>
#include <memory>

#include "core/error.h"
#include "runtime/snapshotter/snapshotter.h"

namespace grpc {
class Server;
class Status;
}  // namespace grpc

namespace coffer::runtime::snapshotter {

// The gRPC status of an error of Snapshotter: containerd's errdefs classes map to their codes
// (not_found -> NOT_FOUND, already_exists -> ALREADY_EXISTS, ...), the proxy maps them back.
grpc::Status to_grpc_status(const Error& error);

class SnapshotterServer {
 public:
  // Serves `snapshotter` on the unix socket `socket` (an existing socket file is replaced; the
  // socket is made owner-only). Errors: "listen_failed".
  static Result<std::unique_ptr<SnapshotterServer>> start(Snapshotter& snapshotter,
                                                          const std::filesystem::path& socket);
  ~SnapshotterServer();  // stops serving, removes the socket
  SnapshotterServer(const SnapshotterServer&) = delete;
  SnapshotterServer& operator=(const SnapshotterServer&) = delete;

  void wait();      // until shutdown() from another thread
  void shutdown();  // stops accepting calls, waits for those in flight

 private:
  class Service;
  SnapshotterServer(std::unique_ptr<Service> service, std::filesystem::path socket);

  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::filesystem::path socket_;
};

}  // namespace coffer::runtime::snapshotter
