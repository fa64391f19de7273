// The FUSE daemon of the encrypted filesystem (libfuse3, high-level API, single-threaded loop).
#pragma once

#include <filesystem>
#include <memory>

#include "core/error.h"
#include "runtime/efs/filesystem.h"

namespace coffer::runtime::efs {

struct MountOptions {
  bool foreground = true;     // false: daemonize once the mount is in place
  bool allow_other = false;   // let other users than the mounter in (needs user_allow_other)
  bool debug = false;         // libfuse request tracing on stderr
  bool multithreaded = true;  // libfuse worker threads (operations still run one at a time)
};

// Mounts `fs` on `mountpoint` with default_permissions and serves it until unmounted (fusermount3
// -u, umount, SIGINT/SIGTERM). Changes are committed at most every 500 ms (by the next operation
// or a committer thread), durably on fsync, and at unmount. Integrity failures reach the caller as
// EIO.
Status serve(std::unique_ptr<Filesystem> fs, const std::filesystem::path& mountpoint,
             const MountOptions& options = {});

}  // namespace coffer::runtime::efs
