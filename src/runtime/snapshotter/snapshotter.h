// coffer-snapshotter's semantics (docs/kubernetes.md, "The snapshotter"): containerd's
// snapshotter contract (github.com/containerd/containerd/snapshots) with guest pull.
//
// Guest pull: an unpack Prepare carrying the target label containerd.io/snapshot.ref (the layer's
// chain ID) and the image label containerd.io/snapshot/cri.image-ref creates the committed
// snapshot itself (a placeholder with no files, keeping the request's labels) and answers
// AlreadyExists: containerd then finds it by Walk and neither fetches nor unpacks the layer.
// A snapshot over a placeholder (a container's rootfs) mounts as a read-only bind of an empty
// directory with the options io.coffer.guest-pull and io.coffer.image-ref=REF, REF from the
// chain's image label: the shim has the enclave pull REF.
//
// Everything else (an image imported or pulled without the CRI labels: the pod sandbox image)
// is refused unless host snapshots are enabled (SnapshotterOptions): then it is a plain host
// snapshotter, a directory per snapshot, bind mounts and overlay over parents.
// A layer to unpack on the host over a placeholder is refused (FailedPrecondition): the host has
// none of the placeholder's files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"
#include "runtime/snapshotter/snapshot_store.h"

namespace coffer::runtime::snapshotter {

inline constexpr std::string_view kTargetLabel = "containerd.io/snapshot.ref";
inline constexpr std::string_view kImageRefLabel = "containerd.io/snapshot/cri.image-ref";
inline constexpr std::string_view kGuestPullOption = "io.coffer.guest-pull";
inline constexpr std::string_view kImageRefOptionPrefix = "io.coffer.image-ref=";

// Bounds on the untrusted request fields (containerd's own label limit is 4096 bytes for a key
// and its value together).
inline constexpr std::size_t kMaxKeyBytes = 1024;
inline constexpr std::size_t kMaxLabelBytes = 4096;
inline constexpr std::size_t kMaxLabels = 64;
inline constexpr std::size_t kMaxImageRefBytes = 1024;

struct MountSpec {
  std::string type;
  std::string source;
  std::vector<std::string> options;
};

struct SnapshotterOptions {
  // Host snapshots (directories) for what is not guest-pulled. Off by default: every unpack
  // without the CRI image label is refused, so an image that reached containerd another way
  // (`ctr image import/pull`, a kubelet that skipped PullImage because the image was present)
  // fails instead of running from host files.
  bool host_snapshots = false;
};

struct Usage {
  std::int64_t size = 0;
  std::int64_t inodes = 0;
};

// Errors carry containerd's error classes as codes: "not_found", "already_exists",
// "failed_precondition", "invalid_argument", and "internal" for the host's own failures.
class Snapshotter {
 public:
  // Opens (creating) ROOT: metadata.db, snapshots/<id>/{fs,work}, guest-pull-empty/ (the
  // read-only empty source of placeholder mounts).
  static Result<std::unique_ptr<Snapshotter>> open(const std::filesystem::path& root,
                                                   SnapshotterOptions options = {});

  Result<std::vector<MountSpec>> prepare(const std::string& key, const std::string& parent,
                                         const Labels& labels);
  Result<std::vector<MountSpec>> view(const std::string& key, const std::string& parent,
                                      const Labels& labels);
  Result<std::vector<MountSpec>> mounts(const std::string& key);
  Status commit(const std::string& name, const std::string& key, const Labels& labels);
  Status remove(const std::string& key);
  Result<Snapshot> stat(const std::string& key);
  // paths: containerd's field mask: empty or "labels" replace all labels, "labels.KEY" one.
  Result<Snapshot> update(const std::string& key, const Labels& labels,
                          const std::vector<std::string>& paths);
  Result<Usage> usage(const std::string& key);
  // Matching snapshots, guest-pull placeholders first (containerd takes the first committed
  // snapshot with the target label: a host copy of a layer never shadows a placeholder).
  Result<std::vector<Snapshot>> walk(const std::vector<std::string>& filters);
  // Removes directories no snapshot owns (left by a crash between database and filesystem).
  Status cleanup();

 private:
  Snapshotter(std::filesystem::path root, std::unique_ptr<SnapshotStore> store,
              SnapshotterOptions options);
  Result<std::vector<MountSpec>> create(Kind kind, const std::string& key,
                                        const std::string& parent, const Labels& labels);
  [[nodiscard]] std::filesystem::path dir(const Snapshot& snap) const;
  [[nodiscard]] std::vector<const Snapshot*> chain(const std::string& parent) const;
  Result<std::vector<MountSpec>> mounts_of(const Snapshot& snap) const;
  Status cleanup_locked();

  std::filesystem::path root_;
  std::unique_ptr<SnapshotStore> store_;
  SnapshotterOptions options_;
  std::mutex mutex_;
};

}  // namespace coffer::runtime::snapshotter
