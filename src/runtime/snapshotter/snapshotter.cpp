#include "runtime/snapshotter/snapshotter.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <set>
#include <utility>

#include "core/log.h"
#include "runtime/snapshotter/filter.h"

namespace coffer::runtime::snapshotter {
namespace {

namespace fs = std::filesystem;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status check_key(std::string_view what, const std::string& key) {
  if (key.empty()) {
    return make_error("invalid_argument", std::string(what) + " is empty");
  }
  if (key.size() > kMaxKeyBytes) {
    return make_error("invalid_argument",
                      std::string(what) + " is over " + std::to_string(kMaxKeyBytes) + " bytes");
  }
  if (key.find('\0') != std::string::npos) {
    return make_error("invalid_argument", std::string(what) + " holds a NUL byte");
  }
  return ok();
}

Status check_labels(const Labels& labels) {
  if (labels.size() > kMaxLabels) {
    return make_error("invalid_argument",
                      "more than " + std::to_string(kMaxLabels) + " labels on a snapshot");
  }
  for (const auto& [key, value] : labels) {
    if (key.empty()) {
      return make_error("invalid_argument", "a label with an empty key");
    }
    if (key.size() + value.size() > kMaxLabelBytes) {
      return make_error("invalid_argument", "label '" + key.substr(0, 64) +
                                                "': key and value over " +
                                                std::to_string(kMaxLabelBytes) + " bytes");
    }
    if (key.find('\0') != std::string::npos || value.find('\0') != std::string::npos) {
      return make_error("invalid_argument", "label '" + key.substr(0, 64) + "' holds a NUL byte");
    }
  }
  return ok();
}

// An image reference as a mount option: the reference grammar's characters only, so that the
// comma-joined option string containerd builds cannot gain another option.
Status check_image_ref(const std::string& ref) {
  if (ref.empty() || ref.size() > kMaxImageRefBytes) {
    return make_error("invalid_argument", "label " + std::string(kImageRefLabel) +
                                              ": empty or over " +
                                              std::to_string(kMaxImageRefBytes) + " bytes");
  }
  for (unsigned char c : ref) {
    bool allowed = std::isalnum(c) != 0 || c == '.' || c == '_' || c == '-' || c == '/' ||
                   c == ':' || c == '@';
    if (!allowed) {
      return make_error("invalid_argument", "label " + std::string(kImageRefLabel) +
                                                ": not an image reference (character " +
                                                std::to_string(c) + ")");
    }
  }
  return ok();
}

const std::string* label(const Labels& labels, std::string_view key) {
  auto it = labels.find(std::string(key));
  return it == labels.end() ? nullptr : &it->second;
}

std::string kind_name(Kind kind) {
  switch (kind) {
    case Kind::kView:
      return "view";
    case Kind::kActive:
      return "active";
    case Kind::kCommitted:
      return "committed";
  }
  return "unknown";
}

// Disk usage of a directory tree (allocated blocks, each inode once) without following links.
Result<Usage> disk_usage(const fs::path& dir) {
  Usage usage;
  std::set<std::pair<dev_t, ino_t>> seen;
  std::error_code ec;
  auto account = [&](const fs::path& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && seen.emplace(st.st_dev, st.st_ino).second) {
      usage.inodes += 1;
      usage.size += static_cast<std::int64_t>(st.st_blocks) * 512;
    }
  };
  account(dir);
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end;
       !ec && it != end; it.increment(ec)) {
    account(it->path());
  }
  if (ec) {
    return make_error("internal", "usage of " + dir.string() + ": " + ec.message());
  }
  return usage;
}

}  // namespace

Snapshotter::Snapshotter(fs::path root, std::unique_ptr<SnapshotStore> store,
                         SnapshotterOptions options)
    : root_(std::move(root)), store_(std::move(store)), options_(options) {}

Result<std::unique_ptr<Snapshotter>> Snapshotter::open(const fs::path& root,
                                                       SnapshotterOptions options) {
  std::error_code ec;
  fs::create_directories(root / "snapshots", ec);
  if (ec) {
    return make_error("internal",
                      "cannot create " + (root / "snapshots").string() + ": " + ec.message());
  }
  fs::permissions(root, fs::perms::owner_all, ec);
  // the source of every placeholder mount: empty, read-only
  auto empty = root / "guest-pull-empty";
  fs::create_directories(empty, ec);
  fs::permissions(empty,
                  fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                      fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec,
                  ec);
  if (ec || !fs::is_empty(empty, ec)) {
    return make_error("internal", empty.string() + " is not an empty directory");
  }
  auto store = SnapshotStore::open(root / "metadata.db");
  if (!store) {
    return make_error("internal", store.error().message);
  }
  std::unique_ptr<Snapshotter> out(new Snapshotter(root, std::move(*store), options));
  // a crash between a snapshot's row and its directories: recreate them (active and view
  // snapshots only start empty), then drop directories no row owns
  for (const auto* snap : out->store_->all()) {
    if (!snap->guest_pull && snap->kind != Kind::kCommitted) {
      fs::create_directories(out->dir(*snap) / "fs", ec);
      fs::create_directories(out->dir(*snap) / "work", ec);
    }
  }
  COFFER_TRY_STATUS(out->cleanup_locked());
  return out;
}

fs::path Snapshotter::dir(const Snapshot& snap) const {
  return root_ / "snapshots" / std::to_string(snap.id);
}

// The parent and its ancestors, nearest first.
std::vector<const Snapshot*> Snapshotter::chain(const std::string& parent) const {
  std::vector<const Snapshot*> out;
  for (const Snapshot* p = parent.empty() ? nullptr : store_->find(parent); p != nullptr;
       p = p->parent.empty() ? nullptr : store_->find(p->parent)) {
    out.push_back(p);
  }
  return out;
}

Result<std::vector<MountSpec>> Snapshotter::mounts_of(const Snapshot& snap) const {
  if (snap.kind == Kind::kCommitted) {
    return make_error("failed_precondition", "snapshot '" + snap.key +
                                                 "' is committed: only active snapshots and views "
                                                 "have mounts");
  }
  auto parents = chain(snap.parent);
  if (snap.guest_pull) {
    const std::string* ref = label(snap.labels, kImageRefLabel);
    for (const auto* p : parents) {
      if (ref != nullptr) {
        break;
      }
      ref = label(p->labels, kImageRefLabel);
    }
    if (ref == nullptr) {
      return make_error("internal", "guest-pull snapshot '" + snap.key + "' without an image");
    }
    return std::vector<MountSpec>{{"bind",
                                   (root_ / "guest-pull-empty").string(),
                                   {"ro", "rbind", std::string(kGuestPullOption),
                                    std::string(kImageRefOptionPrefix) + *ref}}};
  }
  auto own = dir(snap);
  if (parents.empty()) {
    return std::vector<MountSpec>{
        {"bind", (own / "fs").string(), {snap.kind == Kind::kView ? "ro" : "rw", "rbind"}}};
  }
  std::string lower = "lowerdir=";
  for (std::size_t i = 0; i < parents.size(); ++i) {
    lower += (i == 0 ? "" : ":") + (dir(*parents[i]) / "fs").string();
  }
  if (snap.kind == Kind::kView) {
    if (parents.size() == 1) {
      return std::vector<MountSpec>{{"bind", (dir(*parents[0]) / "fs").string(), {"ro", "rbind"}}};
    }
    return std::vector<MountSpec>{{"overlay", "overlay", {lower}}};
  }
  return std::vector<MountSpec>{
      {"overlay",
       "overlay",
       {"workdir=" + (own / "work").string(), "upperdir=" + (own / "fs").string(), lower}}};
}

Result<std::vector<MountSpec>> Snapshotter::create(Kind kind, const std::string& key,
                                                   const std::string& parent,
                                                   const Labels& labels) {
  COFFER_TRY_STATUS(check_key("key", key));
  if (!parent.empty()) {
    COFFER_TRY_STATUS(check_key("parent", parent));
  }
  COFFER_TRY_STATUS(check_labels(labels));
  std::lock_guard lock(mutex_);
  const Snapshot* parent_snap = nullptr;
  if (!parent.empty()) {
    parent_snap = store_->find(parent);
    if (parent_snap == nullptr) {
      return make_error("not_found", "parent snapshot '" + parent + "' does not exist");
    }
    if (parent_snap->kind != Kind::kCommitted) {
      return make_error("invalid_argument", "parent '" + parent + "' is not a committed snapshot");
    }
  }
  if (store_->find(key) != nullptr) {
    return make_error("already_exists", "snapshot '" + key + "' already exists");
  }
  auto parents = chain(parent);
  bool over_placeholder = false;
  for (const auto* p : parents) {
    over_placeholder = over_placeholder || p->guest_pull;
  }
  const std::string* target = label(labels, kTargetLabel);
  const std::string* image = label(labels, kImageRefLabel);
  auto now = now_ns();

  if (target != nullptr && image != nullptr) {
    // guest pull: the layer's committed snapshot is this placeholder; containerd skips it
    COFFER_TRY_STATUS(check_image_ref(*image));
    for (const auto* snap : store_->all()) {
      const std::string* t = label(snap->labels, kTargetLabel);
      if (snap->guest_pull && snap->kind == Kind::kCommitted && t != nullptr && *t == *target &&
          snap->parent == parent) {
        return make_error("already_exists", "target snapshot '" + *target +
                                                "': guest pull (placeholder '" + snap->key + "')");
      }
    }
    Snapshot placeholder;
    placeholder.key = "coffer-guest-pull/" +
                      std::to_string(parent_snap != nullptr ? parent_snap->id : 0) + "/" + *target;
    if (placeholder.key.size() > kMaxKeyBytes || store_->find(placeholder.key) != nullptr) {
      return make_error("invalid_argument",
                        "target '" + target->substr(0, 100) + "' does not name a placeholder");
    }
    placeholder.parent = parent;
    placeholder.kind = Kind::kCommitted;
    placeholder.guest_pull = true;
    placeholder.created_ns = placeholder.updated_ns = now;
    placeholder.labels = labels;
    if (auto added = store_->insert(std::move(placeholder)); !added) {
      return make_error("internal", added.error().message);
    }
    return make_error("already_exists", "target snapshot '" + *target +
                                            "': guest pull (the enclave pulls " + *image + ")");
  }
  if (over_placeholder && target != nullptr) {
    return make_error("failed_precondition",
                      "cannot unpack a layer on the host over guest-pull snapshot '" + parent +
                          "': the image is pulled in the enclave (pull it with the CRI labels, "
                          "or into another snapshotter)");
  }

  if (!over_placeholder && !options_.host_snapshots) {
    return make_error("failed_precondition",
                      "snapshot '" + key +
                          "' would hold files on the host, and host snapshots are disabled: "
                          "coffer-snapshotter guest-pulls images pulled through CRI (with "
                          "disable_snapshot_annotations = false); start it with --host-snapshots "
                          "for images imported or pulled otherwise");
  }
  Snapshot snap;
  snap.key = key;
  snap.parent = parent;
  snap.kind = kind;
  snap.guest_pull = over_placeholder;
  snap.created_ns = snap.updated_ns = now;
  snap.labels = labels;
  auto added = store_->insert(std::move(snap));
  if (!added) {
    return make_error("internal", added.error().message);
  }
  if (!added->guest_pull) {
    std::error_code ec;
    fs::create_directories(dir(*added) / "fs", ec);
    if (!ec) {
      fs::create_directories(dir(*added) / "work", ec);
    }
    if (ec) {
      auto message = "cannot create " + dir(*added).string() + ": " + ec.message();
      if (auto removed = store_->remove(key); removed) {
        fs::remove_all(dir(*added), ec);
      }
      return make_error("internal", message);
    }
  }
  return mounts_of(*added);
}

Result<std::vector<MountSpec>> Snapshotter::prepare(const std::string& key,
                                                    const std::string& parent,
                                                    const Labels& labels) {
  return create(Kind::kActive, key, parent, labels);
}

Result<std::vector<MountSpec>> Snapshotter::view(const std::string& key, const std::string& parent,
                                                 const Labels& labels) {
  return create(Kind::kView, key, parent, labels);
}

Result<std::vector<MountSpec>> Snapshotter::mounts(const std::string& key) {
  COFFER_TRY_STATUS(check_key("key", key));
  std::lock_guard lock(mutex_);
  const auto* snap = store_->find(key);
  if (snap == nullptr) {
    return make_error("not_found", "snapshot '" + key + "' does not exist");
  }
  return mounts_of(*snap);
}

Status Snapshotter::commit(const std::string& name, const std::string& key, const Labels& labels) {
  COFFER_TRY_STATUS(check_key("name", name));
  COFFER_TRY_STATUS(check_key("key", key));
  COFFER_TRY_STATUS(check_labels(labels));
  std::lock_guard lock(mutex_);
  const auto* snap = store_->find(key);
  if (snap == nullptr) {
    return make_error("not_found", "snapshot '" + key + "' does not exist");
  }
  if (snap->kind != Kind::kActive) {
    return make_error("failed_precondition",
                      "snapshot '" + key + "' is " + kind_name(snap->kind) + ", not active");
  }
  if (store_->find(name) != nullptr) {
    return make_error("already_exists", "snapshot '" + name + "' already exists");
  }
  Usage usage;
  if (!snap->guest_pull) {
    usage = COFFER_TRY(disk_usage(dir(*snap) / "fs"));
  }
  if (auto done = store_->commit(key, name, labels, usage.size, usage.inodes, now_ns()); !done) {
    return make_error("internal", done.error().message);
  }
  return ok();
}

Status Snapshotter::remove(const std::string& key) {
  COFFER_TRY_STATUS(check_key("key", key));
  std::lock_guard lock(mutex_);
  const auto* snap = store_->find(key);
  if (snap == nullptr) {
    return make_error("not_found", "snapshot '" + key + "' does not exist");
  }
  if (store_->has_children(key)) {
    return make_error("failed_precondition", "snapshot '" + key + "' has children");
  }
  auto path = dir(*snap);
  bool has_dir = !snap->guest_pull;
  if (auto removed = store_->remove(key); !removed) {
    return make_error("internal", removed.error().message);
  }
  if (has_dir) {
    // the row is gone: a directory left by a failure here is Cleanup's
    std::error_code ec;
    fs::remove_all(path, ec);
    if (ec) {
      spdlog::warn("removing {}: {} (left for Cleanup)", path.string(), ec.message());
    }
  }
  return ok();
}

Result<Snapshot> Snapshotter::stat(const std::string& key) {
  COFFER_TRY_STATUS(check_key("key", key));
  std::lock_guard lock(mutex_);
  const auto* snap = store_->find(key);
  if (snap == nullptr) {
    return make_error("not_found", "snapshot '" + key + "' does not exist");
  }
  return *snap;
}

Result<Snapshot> Snapshotter::update(const std::string& key, const Labels& labels,
                                     const std::vector<std::string>& paths) {
  COFFER_TRY_STATUS(check_key("key", key));
  COFFER_TRY_STATUS(check_labels(labels));
  std::lock_guard lock(mutex_);
  const auto* snap = store_->find(key);
  if (snap == nullptr) {
    return make_error("not_found", "snapshot '" + key + "' does not exist");
  }
  Labels updated = snap->labels;
  if (paths.empty()) {
    updated = labels;
  }
  for (const auto& path : paths) {
    if (path == "labels") {
      updated = labels;
    } else if (path.starts_with("labels.") && path.size() > 7) {
      auto name = path.substr(7);
      auto it = labels.find(name);
      if (it == labels.end() || it->second.empty()) {
        updated.erase(name);
      } else {
        updated[name] = it->second;
      }
    } else {
      return make_error("invalid_argument",
                        "cannot update field '" + path.substr(0, 100) + "' of a snapshot");
    }
  }
  std::erase_if(updated, [](const auto& kv) { return kv.second.empty(); });
  COFFER_TRY_STATUS(check_labels(updated));
  if (auto done = store_->set_labels(key, updated, now_ns()); !done) {
    return make_error("internal", done.error().message);
  }
  return *store_->find(key);
}

Result<Usage> Snapshotter::usage(const std::string& key) {
  COFFER_TRY_STATUS(check_key("key", key));
  std::lock_guard lock(mutex_);
  const auto* snap = store_->find(key);
  if (snap == nullptr) {
    return make_error("not_found", "snapshot '" + key + "' does not exist");
  }
  if (snap->guest_pull) {
    return Usage{};
  }
  if (snap->kind == Kind::kCommitted) {
    return Usage{snap->size, snap->inodes};
  }
  return disk_usage(dir(*snap) / "fs");
}

Result<std::vector<Snapshot>> Snapshotter::walk(const std::vector<std::string>& filters) {
  auto filter = COFFER_TRY(Filter::parse(filters));
  std::lock_guard lock(mutex_);
  std::vector<Snapshot> placeholders;
  std::vector<Snapshot> others;
  for (const auto* snap : store_->all()) {
    auto lookup = [snap](const std::vector<std::string>& path) -> std::optional<std::string> {
      if (path.size() == 1 && path[0] == "name") {
        return snap->key;
      }
      if (path.size() == 1 && path[0] == "parent") {
        return snap->parent;
      }
      if (path.size() == 1 && path[0] == "kind") {
        return kind_name(snap->kind);
      }
      if (path.size() >= 2 && path[0] == "labels") {
        // labels.containerd.io/x: an unquoted dotted key is the fields joined by '.'
        std::string name = path[1];
        for (std::size_t i = 2; i < path.size(); ++i) {
          name += "." + path[i];
        }
        if (const std::string* value = label(snap->labels, name)) {
          return *value;
        }
      }
      return std::nullopt;
    };
    if (filter.match(lookup)) {
      (snap->guest_pull ? placeholders : others).push_back(*snap);
    }
  }
  auto by_id = [](const Snapshot& a, const Snapshot& b) { return a.id < b.id; };
  std::ranges::sort(placeholders, by_id);
  std::ranges::sort(others, by_id);
  placeholders.insert(placeholders.end(), std::make_move_iterator(others.begin()),
                      std::make_move_iterator(others.end()));
  return placeholders;
}

Status Snapshotter::cleanup() {
  std::lock_guard lock(mutex_);
  return cleanup_locked();
}

Status Snapshotter::cleanup_locked() {
  std::set<std::string> owned;
  for (const auto* snap : store_->all()) {
    owned.insert(std::to_string(snap->id));
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root_ / "snapshots", ec)) {
    if (!owned.contains(entry.path().filename().string())) {
      std::error_code rm;
      fs::remove_all(entry.path(), rm);
      if (rm) {
        return make_error("internal", "cleanup of " + entry.path().string() + ": " + rm.message());
      }
    }
  }
  if (ec) {
    return make_error("internal", "cleanup: " + ec.message());
  }
  return ok();
}

}  // namespace coffer::runtime::snapshotter
