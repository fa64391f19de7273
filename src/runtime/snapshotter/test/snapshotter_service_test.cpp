// coffer-snapshotter's service through a real gRPC channel on a unix socket, as containerd's
// proxy plugin calls it: every RPC, containerd's error codes, guest pull, restart.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.grpc.pb.h"
#include "runtime/snapshotter/service.h"
#include "runtime/snapshotter/snapshotter.h"

namespace coffer::runtime::snapshotter {
namespace {

namespace api = containerd::services::snapshots::v1;
namespace fs = std::filesystem;

constexpr const char* kChain1 =
    "sha256:1111111111111111111111111111111111111111111111111111111111111111";
constexpr const char* kChain2 =
    "sha256:2222222222222222222222222222222222222222222222222222222222222222";
constexpr const char* kImage = "registry.example:5000/enc:v1";

class SnapshotterServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/coffer-snapshotter-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    start();
  }
  void TearDown() override {
    stop();
    fs::remove_all(dir_);
  }

  void start() {
    auto snapshotter = Snapshotter::open(dir_ / "root", {.host_snapshots = host_snapshots_});
    ASSERT_TRUE(snapshotter.has_value()) << snapshotter.error().to_string();
    snapshotter_ = std::move(*snapshotter);
    auto server = SnapshotterServer::start(*snapshotter_, dir_ / "s.sock");
    ASSERT_TRUE(server.has_value()) << server.error().to_string();
    server_ = std::move(*server);
    stub_ = api::Snapshots::NewStub(grpc::CreateChannel("unix://" + (dir_ / "s.sock").string(),
                                                        grpc::InsecureChannelCredentials()));
  }
  void stop() {
    stub_.reset();
    server_.reset();
    snapshotter_.reset();
  }

  grpc::Status prepare(const std::string& key, const std::string& parent,
                       const std::map<std::string, std::string>& labels = {},
                       api::PrepareSnapshotResponse* out = nullptr) {
    grpc::ClientContext context;
    api::PrepareSnapshotRequest request;
    request.set_snapshotter("coffer");
    request.set_key(key);
    request.set_parent(parent);
    request.mutable_labels()->insert(labels.begin(), labels.end());
    api::PrepareSnapshotResponse response;
    return stub_->Prepare(&context, request, out != nullptr ? out : &response);
  }
  grpc::Status view(const std::string& key, const std::string& parent,
                    api::ViewSnapshotResponse* out) {
    grpc::ClientContext context;
    api::ViewSnapshotRequest request;
    request.set_key(key);
    request.set_parent(parent);
    return stub_->View(&context, request, out);
  }
  grpc::Status commit(const std::string& name, const std::string& key,
                      const std::map<std::string, std::string>& labels = {}) {
    grpc::ClientContext context;
    api::CommitSnapshotRequest request;
    request.set_name(name);
    request.set_key(key);
    request.mutable_labels()->insert(labels.begin(), labels.end());
    google::protobuf::Empty empty;
    return stub_->Commit(&context, request, &empty);
  }
  grpc::Status remove(const std::string& key) {
    grpc::ClientContext context;
    api::RemoveSnapshotRequest request;
    request.set_key(key);
    google::protobuf::Empty empty;
    return stub_->Remove(&context, request, &empty);
  }
  grpc::Status stat(const std::string& key, api::Info* info = nullptr) {
    grpc::ClientContext context;
    api::StatSnapshotRequest request;
    request.set_key(key);
    api::StatSnapshotResponse response;
    auto status = stub_->Stat(&context, request, &response);
    if (info != nullptr) {
      *info = response.info();
    }
    return status;
  }
  grpc::Status mounts(const std::string& key, api::MountsResponse* out) {
    grpc::ClientContext context;
    api::MountsRequest request;
    request.set_key(key);
    return stub_->Mounts(&context, request, out);
  }
  std::vector<api::Info> walk(const std::vector<std::string>& filters,
                              grpc::Status* status = nullptr) {
    grpc::ClientContext context;
    api::ListSnapshotsRequest request;
    for (const auto& f : filters) {
      request.add_filters(f);
    }
    auto reader = stub_->List(&context, request);
    std::vector<api::Info> out;
    api::ListSnapshotsResponse response;
    while (reader->Read(&response)) {
      out.insert(out.end(), response.info().begin(), response.info().end());
    }
    auto done = reader->Finish();
    if (status != nullptr) {
      *status = done;
    }
    return out;
  }
  std::map<std::string, std::string> unpack_labels(const std::string& chain) {
    return {{std::string(kTargetLabel), chain},
            {std::string(kImageRefLabel), kImage},
            {"containerd.io/snapshot/cri.layer-digest", "sha256:beef"},
            {"containerd.io/snapshot/cri.manifest-digest", "sha256:cafe"}};
  }

  fs::path dir_;
  bool host_snapshots_ = true;
  std::unique_ptr<Snapshotter> snapshotter_;
  std::unique_ptr<SnapshotterServer> server_;
  std::unique_ptr<api::Snapshots::Stub> stub_;
};

TEST_F(SnapshotterServiceTest, NativeLifecycle) {
  api::PrepareSnapshotResponse prepared;
  ASSERT_TRUE(prepare("ns/1/extract-a", "", {}, &prepared).ok());
  ASSERT_EQ(prepared.mounts_size(), 1);
  EXPECT_EQ(prepared.mounts(0).type(), "bind");
  EXPECT_EQ(prepared.mounts(0).options(0), "rw");
  auto upper = fs::path(prepared.mounts(0).source());
  ASSERT_TRUE(fs::is_directory(upper));
  std::ofstream(upper / "file") << std::string(10000, 'x');

  // usage of an active snapshot is measured now
  {
    grpc::ClientContext context;
    api::UsageRequest request;
    request.set_key("ns/1/extract-a");
    api::UsageResponse usage;
    ASSERT_TRUE(stub_->Usage(&context, request, &usage).ok());
    EXPECT_GE(usage.size(), 10000);
    EXPECT_EQ(usage.inodes(), 2);
  }
  ASSERT_TRUE(commit("layer-a", "ns/1/extract-a", {{"l", "v"}}).ok());
  api::Info info;
  ASSERT_TRUE(stat("layer-a", &info).ok());
  EXPECT_EQ(info.kind(), api::COMMITTED);
  EXPECT_EQ(info.labels().at("l"), "v");
  EXPECT_EQ(stat("ns/1/extract-a").error_code(), grpc::StatusCode::NOT_FOUND);

  // a child: overlay with the parent as lower layer; a view of one parent binds it read-only
  ASSERT_TRUE(prepare("ns/2/extract-b", "layer-a", {}, &prepared).ok());
  EXPECT_EQ(prepared.mounts(0).type(), "overlay");
  EXPECT_EQ(prepared.mounts(0).options(2), "lowerdir=" + upper.string());
  ASSERT_TRUE(commit("layer-b", "ns/2/extract-b").ok());
  api::ViewSnapshotResponse viewed;
  ASSERT_TRUE(view("v1", "layer-a", &viewed).ok());
  EXPECT_EQ(viewed.mounts(0).type(), "bind");
  EXPECT_EQ(viewed.mounts(0).source(), upper.string());
  EXPECT_EQ(viewed.mounts(0).options(0), "ro");
  ASSERT_TRUE(view("v2", "layer-b", &viewed).ok());
  EXPECT_EQ(viewed.mounts(0).type(), "overlay");
  EXPECT_EQ(viewed.mounts(0).options_size(), 1);  // lowerdir only: read-only overlay
  api::MountsResponse m;
  ASSERT_TRUE(mounts("v2", &m).ok());
  EXPECT_EQ(m.mounts(0).options(0), viewed.mounts(0).options(0));

  // Update: one label, all labels, a field that cannot change
  {
    grpc::ClientContext context;
    api::UpdateSnapshotRequest request;
    request.mutable_info()->set_name("layer-a");
    (*request.mutable_info()->mutable_labels())["new"] = "1";
    request.mutable_update_mask()->add_paths("labels.new");
    api::UpdateSnapshotResponse response;
    ASSERT_TRUE(stub_->Update(&context, request, &response).ok());
    EXPECT_EQ(response.info().labels().at("new"), "1");
    EXPECT_EQ(response.info().labels().at("l"), "v");
  }
  {
    grpc::ClientContext context;
    api::UpdateSnapshotRequest request;
    request.mutable_info()->set_name("layer-a");
    request.mutable_update_mask()->add_paths("parent");
    api::UpdateSnapshotResponse response;
    EXPECT_EQ(stub_->Update(&context, request, &response).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    grpc::ClientContext context;
    api::UpdateSnapshotRequest request;
    request.mutable_info()->set_name("layer-a");
    request.mutable_update_mask()->add_paths("labels");
    api::UpdateSnapshotResponse response;
    ASSERT_TRUE(stub_->Update(&context, request, &response).ok());
    EXPECT_TRUE(response.info().labels().empty());
  }

  // Walk: all, by kind, by parent
  EXPECT_EQ(walk({}).size(), 4U);
  EXPECT_EQ(walk({"kind==committed"}).size(), 2U);
  EXPECT_EQ(walk({"parent==layer-a"}).size(), 2U);

  // removing: children first
  EXPECT_EQ(remove("layer-a").error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  ASSERT_TRUE(remove("v1").ok());
  ASSERT_TRUE(remove("v2").ok());
  ASSERT_TRUE(remove("layer-b").ok());
  ASSERT_TRUE(remove("layer-a").ok());
  EXPECT_FALSE(fs::exists(upper));
  EXPECT_TRUE(walk({}).empty());
}

TEST_F(SnapshotterServiceTest, ContainerdErrorCodes) {
  EXPECT_EQ(stat("nope").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(remove("nope").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(commit("x", "nope").error_code(), grpc::StatusCode::NOT_FOUND);
  api::MountsResponse m;
  EXPECT_EQ(mounts("nope", &m).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(prepare("k", "no-parent").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(prepare("", "").error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  ASSERT_TRUE(prepare("k", "").ok());
  EXPECT_EQ(prepare("k", "").error_code(), grpc::StatusCode::ALREADY_EXISTS);
  // an active parent is not a parent
  EXPECT_EQ(prepare("child", "k").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(commit("c", "k").ok());
  // double commit: the key is gone; committing again onto an existing name
  EXPECT_EQ(commit("c2", "k").error_code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(prepare("k2", "c").ok());
  EXPECT_EQ(commit("c", "k2").error_code(), grpc::StatusCode::ALREADY_EXISTS);
  // a committed snapshot has no mounts; a view cannot be committed
  EXPECT_EQ(mounts("c", &m).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  api::ViewSnapshotResponse viewed;
  ASSERT_TRUE(view("v", "c", &viewed).ok());
  EXPECT_EQ(commit("c3", "v").error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  // bounded inputs
  EXPECT_EQ(prepare(std::string(kMaxKeyBytes + 1, 'k'), "").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(prepare("big", "", {{"l", std::string(kMaxLabelBytes, 'v')}}).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  std::map<std::string, std::string> many;
  for (std::size_t i = 0; i <= kMaxLabels; ++i) {
    many["l" + std::to_string(i)] = "v";
  }
  EXPECT_EQ(prepare("many", "", many).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  grpc::Status status;
  walk({"name=="}, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(stat("big").error_code(), grpc::StatusCode::NOT_FOUND);  // nothing half-created
}

TEST_F(SnapshotterServiceTest, GuestPullAnswersAlreadyExistsWithAPlaceholder) {
  // layer 1: containerd's unpack Prepare with the target and CRI labels
  auto status = prepare("k8s.io/1/extract-1 " + std::string(kChain1), "", unpack_labels(kChain1));
  ASSERT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS) << status.error_message();
  EXPECT_EQ(stat("k8s.io/1/extract-1 " + std::string(kChain1)).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // containerd's metadata layer then looks the target up like this
  auto found =
      walk({std::string("labels.\"containerd.io/snapshot.ref\"==") + kChain1 + ",parent==\"\""});
  ASSERT_EQ(found.size(), 1U);
  EXPECT_EQ(found[0].kind(), api::COMMITTED);
  EXPECT_EQ(found[0].labels().at(std::string(kImageRefLabel)), kImage);
  EXPECT_EQ(found[0].labels().at("containerd.io/snapshot/cri.layer-digest"), "sha256:beef");
  std::string layer1 = found[0].name();

  // the same layer again (another namespace): AlreadyExists, no second placeholder
  EXPECT_EQ(prepare("default/7/extract-1", "", unpack_labels(kChain1)).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(walk({}).size(), 1U);

  // layer 2 over layer 1
  EXPECT_EQ(prepare("k8s.io/2/extract-2", layer1, unpack_labels(kChain2)).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  found = walk({std::string("labels.\"containerd.io/snapshot.ref\"==") + kChain2 + ",parent==\"" +
                layer1 + "\""});
  ASSERT_EQ(found.size(), 1U);
  std::string layer2 = found[0].name();

  // the container's rootfs: a read-only bind of an empty directory naming the image
  api::PrepareSnapshotResponse prepared;
  ASSERT_TRUE(prepare("k8s.io/3/container", layer2, {}, &prepared).ok());
  ASSERT_EQ(prepared.mounts_size(), 1);
  const auto& mount = prepared.mounts(0);
  EXPECT_EQ(mount.type(), "bind");
  EXPECT_EQ(mount.source(), (dir_ / "root" / "guest-pull-empty").string());
  ASSERT_EQ(mount.options_size(), 4);
  EXPECT_EQ(mount.options(0), "ro");
  EXPECT_EQ(mount.options(1), "rbind");
  EXPECT_EQ(mount.options(2), "io.coffer.guest-pull");
  EXPECT_EQ(mount.options(3), std::string("io.coffer.image-ref=") + kImage);
  EXPECT_TRUE(fs::is_empty(mount.source()));
  struct stat st {};
  ASSERT_EQ(::stat(mount.source().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0222, 0U);
  api::ViewSnapshotResponse viewed;
  ASSERT_TRUE(view("k8s.io/4/view", layer2, &viewed).ok());
  EXPECT_EQ(viewed.mounts(0).options(2), "io.coffer.guest-pull");
  {
    grpc::ClientContext context;
    api::UsageRequest request;
    request.set_key("k8s.io/3/container");
    api::UsageResponse usage;
    ASSERT_TRUE(stub_->Usage(&context, request, &usage).ok());
    EXPECT_EQ(usage.size(), 0);
  }

  // a layer to unpack on the host over a placeholder (no CRI labels): refused
  EXPECT_EQ(prepare("default/9/extract-3", layer2, {{std::string(kTargetLabel), "sha256:3333"}})
                .error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  // an image reference that would add mount options is refused
  auto bad = unpack_labels("sha256:4444");
  bad[std::string(kImageRefLabel)] = "evil:1,rw";
  EXPECT_EQ(prepare("k8s.io/5/extract-4", "", bad).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // a host copy of the same layer (committed natively with the target label) never shadows the
  // placeholder in containerd's lookup: placeholders come first
  ASSERT_TRUE(prepare("default/6/extract-1", "").ok());
  ASSERT_TRUE(
      commit("host-copy", "default/6/extract-1", {{std::string(kTargetLabel), kChain1}}).ok());
  found =
      walk({std::string("labels.\"containerd.io/snapshot.ref\"==") + kChain1 + ",parent==\"\""});
  ASSERT_EQ(found.size(), 2U);
  EXPECT_EQ(found[0].name(), layer1);
}

TEST_F(SnapshotterServiceTest, RestartKeepsMetadataAndCleansOrphans) {
  ASSERT_EQ(prepare("k8s.io/1/extract", "", unpack_labels(kChain1)).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  api::PrepareSnapshotResponse prepared;
  ASSERT_TRUE(prepare("native", "", {{"a", "b"}}, &prepared).ok());
  auto upper = fs::path(prepared.mounts(0).source());
  std::ofstream(upper / "f") << "data";
  ASSERT_TRUE(commit("native-c", "native", {{"a", "b"}}).ok());
  auto orphan = dir_ / "root" / "snapshots" / "999";
  fs::create_directories(orphan / "fs");

  stop();
  start();
  auto all = walk({});
  ASSERT_EQ(all.size(), 2U);
  api::Info info;
  ASSERT_TRUE(stat("native-c", &info).ok());
  EXPECT_EQ(info.labels().at("a"), "b");
  EXPECT_EQ(info.kind(), api::COMMITTED);
  EXPECT_TRUE(fs::exists(upper / "f"));
  EXPECT_FALSE(fs::exists(orphan));  // cleaned at start
  // the placeholder still answers for its target
  EXPECT_EQ(prepare("k8s.io/2/extract", "", unpack_labels(kChain1)).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(walk({}).size(), 2U);

  fs::create_directories(orphan);
  grpc::ClientContext context;
  api::CleanupRequest request;
  google::protobuf::Empty empty;
  ASSERT_TRUE(stub_->Cleanup(&context, request, &empty).ok());
  EXPECT_FALSE(fs::exists(orphan));
  EXPECT_TRUE(fs::exists(upper / "f"));
}

TEST_F(SnapshotterServiceTest, HostSnapshotsOffByDefault) {
  stop();
  host_snapshots_ = false;
  start();
  // an import or a pull without CRI's labels: refused, nothing created
  EXPECT_EQ(prepare("default/1/extract-x", "", {{std::string(kTargetLabel), kChain1}}).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  api::ViewSnapshotResponse viewed;
  EXPECT_EQ(view("v", "", &viewed).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(walk({}).empty());
  EXPECT_TRUE(fs::is_empty(dir_ / "root" / "snapshots"));
  // guest pull and containers over it still work
  ASSERT_EQ(prepare("k8s.io/1/extract", "", unpack_labels(kChain1)).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  auto layer = walk({});
  ASSERT_EQ(layer.size(), 1U);
  api::PrepareSnapshotResponse prepared;
  ASSERT_TRUE(prepare("k8s.io/2/container", layer[0].name(), {}, &prepared).ok());
  EXPECT_EQ(prepared.mounts(0).options(2), "io.coffer.guest-pull");
}

TEST_F(SnapshotterServiceTest, SocketIsOwnerOnlyAndAFileIsNotReplaced) {
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "s.sock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0U);
  std::ofstream(dir_ / "file") << "x";
  auto again = SnapshotterServer::start(*snapshotter_, dir_ / "file");
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, "listen_failed");
}

}  // namespace
}  // namespace coffer::runtime::snapshotter
