#include "runtime/snapshotter/service.h"

#include <sys/stat.h>

#include <utility>

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.grpc.pb.h"

namespace coffer::runtime::snapshotter {
namespace {

namespace api = containerd::services::snapshots::v1;

// Infos per List message: containerd's own server sends them in batches of 100.
constexpr std::size_t kListBatch = 100;

Labels labels_of(const google::protobuf::Map<std::string, std::string>& map) {
  return {map.begin(), map.end()};
}

void set_mounts(const std::vector<MountSpec>& mounts,
                google::protobuf::RepeatedPtrField<containerd::types::Mount>* out) {
  for (const auto& m : mounts) {
    auto* mount = out->Add();
    mount->set_type(m.type);
    mount->set_source(m.source);
    for (const auto& option : m.options) {
      mount->add_options(option);
    }
  }
}

// One debug line per call: what containerd sends (docs/kubernetes.md records a CRI pull).
std::string describe(const google::protobuf::Map<std::string, std::string>& labels) {
  std::string out;
  for (const auto& [key, value] : labels) {
    out += (out.empty() ? "" : " ") + key + "=" + value.substr(0, 120);
  }
  return out;
}

void set_time(std::int64_t ns, google::protobuf::Timestamp* out) {
  out->set_seconds(ns / 1000000000);
  out->set_nanos(static_cast<int>(ns % 1000000000));
}

void set_info(const Snapshot& snap, api::Info* info) {
  info->set_name(snap.key);
  info->set_parent(snap.parent);
  info->set_kind(static_cast<api::Kind>(snap.kind));
  set_time(snap.created_ns, info->mutable_created_at());
  set_time(snap.updated_ns, info->mutable_updated_at());
  for (const auto& [key, value] : snap.labels) {
    (*info->mutable_labels())[key] = value;
  }
}

}  // namespace

grpc::Status to_grpc_status(const Error& error) {
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  if (error.code == "not_found") {
    code = grpc::StatusCode::NOT_FOUND;
  } else if (error.code == "already_exists") {
    code = grpc::StatusCode::ALREADY_EXISTS;
  } else if (error.code == "failed_precondition") {
    code = grpc::StatusCode::FAILED_PRECONDITION;
  } else if (error.code == "invalid_argument") {
    code = grpc::StatusCode::INVALID_ARGUMENT;
  } else if (error.code == "internal") {
    code = grpc::StatusCode::INTERNAL;
  }
  return {code, error.message};
}

class SnapshotterServer::Service final : public api::Snapshots::Service {
 public:
  explicit Service(Snapshotter& snapshotter) : snapshotter_(snapshotter) {}

  grpc::Status Prepare(grpc::ServerContext* /*context*/, const api::PrepareSnapshotRequest* request,
                       api::PrepareSnapshotResponse* response) override {
    spdlog::debug("Prepare key={} parent={} labels=[{}]", request->key(), request->parent(),
                  describe(request->labels()));
    auto mounts =
        snapshotter_.prepare(request->key(), request->parent(), labels_of(request->labels()));
    if (!mounts) {
      return to_grpc_status(mounts.error());
    }
    set_mounts(*mounts, response->mutable_mounts());
    return grpc::Status::OK;
  }

  grpc::Status View(grpc::ServerContext* /*context*/, const api::ViewSnapshotRequest* request,
                    api::ViewSnapshotResponse* response) override {
    spdlog::debug("View key={} parent={} labels=[{}]", request->key(), request->parent(),
                  describe(request->labels()));
    auto mounts =
        snapshotter_.view(request->key(), request->parent(), labels_of(request->labels()));
    if (!mounts) {
      return to_grpc_status(mounts.error());
    }
    set_mounts(*mounts, response->mutable_mounts());
    return grpc::Status::OK;
  }

  grpc::Status Mounts(grpc::ServerContext* /*context*/, const api::MountsRequest* request,
                      api::MountsResponse* response) override {
    spdlog::debug("Mounts key={}", request->key());
    auto mounts = snapshotter_.mounts(request->key());
    if (!mounts) {
      return to_grpc_status(mounts.error());
    }
    set_mounts(*mounts, response->mutable_mounts());
    return grpc::Status::OK;
  }

  grpc::Status Commit(grpc::ServerContext* /*context*/, const api::CommitSnapshotRequest* request,
                      google::protobuf::Empty* /*response*/) override {
    spdlog::debug("Commit name={} key={} labels=[{}]", request->name(), request->key(),
                  describe(request->labels()));
    auto done = snapshotter_.commit(request->name(), request->key(), labels_of(request->labels()));
    return done ? grpc::Status::OK : to_grpc_status(done.error());
  }

  grpc::Status Remove(grpc::ServerContext* /*context*/, const api::RemoveSnapshotRequest* request,
                      google::protobuf::Empty* /*response*/) override {
    spdlog::debug("Remove key={}", request->key());
    auto done = snapshotter_.remove(request->key());
    return done ? grpc::Status::OK : to_grpc_status(done.error());
  }

  grpc::Status Stat(grpc::ServerContext* /*context*/, const api::StatSnapshotRequest* request,
                    api::StatSnapshotResponse* response) override {
    spdlog::debug("Stat key={}", request->key());
    auto snap = snapshotter_.stat(request->key());
    if (!snap) {
      return to_grpc_status(snap.error());
    }
    set_info(*snap, response->mutable_info());
    return grpc::Status::OK;
  }

  grpc::Status Update(grpc::ServerContext* /*context*/, const api::UpdateSnapshotRequest* request,
                      api::UpdateSnapshotResponse* response) override {
    std::vector<std::string> paths(request->update_mask().paths().begin(),
                                   request->update_mask().paths().end());
    spdlog::debug("Update name={} paths={} labels=[{}]", request->info().name(),
                  request->update_mask().ShortDebugString(), describe(request->info().labels()));
    auto snap =
        snapshotter_.update(request->info().name(), labels_of(request->info().labels()), paths);
    if (!snap) {
      return to_grpc_status(snap.error());
    }
    set_info(*snap, response->mutable_info());
    return grpc::Status::OK;
  }

  grpc::Status List(grpc::ServerContext* /*context*/, const api::ListSnapshotsRequest* request,
                    grpc::ServerWriter<api::ListSnapshotsResponse>* writer) override {
    std::vector<std::string> filters(request->filters().begin(), request->filters().end());
    std::string joined;
    for (const auto& f : filters) {
      joined += (joined.empty() ? "" : " | ") + f;
    }
    spdlog::debug("List filters=[{}]", joined);
    auto snaps = snapshotter_.walk(filters);
    if (!snaps) {
      return to_grpc_status(snaps.error());
    }
    api::ListSnapshotsResponse batch;
    for (const auto& snap : *snaps) {
      set_info(snap, batch.add_info());
      if (static_cast<std::size_t>(batch.info_size()) == kListBatch) {
        if (!writer->Write(batch)) {
          return {grpc::StatusCode::CANCELLED, "the client went away"};
        }
        batch.Clear();
      }
    }
    if (batch.info_size() > 0 && !writer->Write(batch)) {
      return {grpc::StatusCode::CANCELLED, "the client went away"};
    }
    return grpc::Status::OK;
  }

  grpc::Status Usage(grpc::ServerContext* /*context*/, const api::UsageRequest* request,
                     api::UsageResponse* response) override {
    spdlog::debug("Usage key={}", request->key());
    auto usage = snapshotter_.usage(request->key());
    if (!usage) {
      return to_grpc_status(usage.error());
    }
    response->set_size(usage->size);
    response->set_inodes(usage->inodes);
    return grpc::Status::OK;
  }

  grpc::Status Cleanup(grpc::ServerContext* /*context*/, const api::CleanupRequest* /*request*/,
                       google::protobuf::Empty* /*response*/) override {
    spdlog::debug("Cleanup");
    auto done = snapshotter_.cleanup();
    return done ? grpc::Status::OK : to_grpc_status(done.error());
  }

 private:
  Snapshotter& snapshotter_;
};

SnapshotterServer::SnapshotterServer(std::unique_ptr<Service> service, std::filesystem::path socket)
    : service_(std::move(service)), socket_(std::move(socket)) {}

SnapshotterServer::~SnapshotterServer() {
  shutdown();
  std::error_code ec;
  std::filesystem::remove(socket_, ec);
}

Result<std::unique_ptr<SnapshotterServer>> SnapshotterServer::start(
    Snapshotter& snapshotter, const std::filesystem::path& socket) {
  std::error_code ec;
  if (std::filesystem::is_socket(socket, ec)) {
    std::filesystem::remove(socket, ec);  // left by a previous instance
  } else if (std::filesystem::exists(socket, ec)) {
    return make_error("listen_failed", socket.string() + " exists and is not a socket");
  }
  std::unique_ptr<SnapshotterServer> server(
      new SnapshotterServer(std::make_unique<Service>(snapshotter), socket));
  grpc::ServerBuilder builder;
  // containerd's label and key limits keep requests far below this
  builder.SetMaxReceiveMessageSize(4 * 1024 * 1024);
  builder.AddListeningPort("unix://" + socket.string(), grpc::InsecureServerCredentials());
  builder.RegisterService(server->service_.get());
  // the socket is created by BuildAndStart with the process umask: owner-only
  mode_t old = ::umask(077);
  server->server_ = builder.BuildAndStart();
  ::umask(old);
  if (!server->server_) {
    return make_error("listen_failed", "cannot listen on unix socket " + socket.string());
  }
  return server;
}

void SnapshotterServer::wait() {
  if (server_) {
    server_->Wait();
  }
}

void SnapshotterServer::shutdown() {
  if (server_) {
    server_->Shutdown();
  }
}

}  // namespace coffer::runtime::snapshotter
