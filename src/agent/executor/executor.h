// The container executor of coffer-agent: runs containers with crun (Debian's) from bundles whose
// OCI spec was generated from the image config plus the overrides the agent policy allowed.
//
// CONTRACT (written by the lead before the implementation; the implementer may add members and
// refine comments, but keeps these names and meanings so the agent service can call them).
//
// Model
//   sandbox   a pod: a set of namespaces (network, IPC, UTS; PID optional) that its containers
//             join. create_sandbox() makes them (held open by bind-mounted nsfs files or a holder
//             process); remove_sandbox() tears them down once no container is left.
//   container one crun container of a sandbox. Its writable root is private to it (overlay on
//             top of the shared, read-only image rootfs when the kernel allows, else a copy);
//             the image rootfs is never written.
//   process   the container's init process (exec_id "") or an exec'd process (exec_id from
//             exec()). Each has stdin (optional), stdout and stderr (or one TTY).
//
// Stdio: output is read from the pipes into bounded per-stream buffers (kOutputBufferBytes);
// when a buffer is full the agent stops reading that pipe, so a container that writes faster
// than the client reads blocks (backpressure) and nothing is lost. read_output() returns
// buffered bytes, blocks until some arrive, and returns an empty Bytes at end of stream.
// wait() returns the exit status only after the process has exited AND its output streams have
// reached end of stream (all output is in the agent's buffers or already read); what is still
// buffered stays readable until remove().
//
// Errors (codes): "container_not_found", "sandbox_not_found", "process_not_found",
// "container_exists", "sandbox_exists", "bad_state" (start twice, exec into a stopped
// container, stdin of a process without one, resize without a TTY, signal to an exited
// process, remove_sandbox with containers left...), "runtime_failed" (crun failed; message
// carries crun's error, printable), "bad_spec" (spec overrides, and also invalid arguments: an id
// outside [A-Za-z0-9_.-]{1,128}, a signal number out of range, an empty exec command),
// "cancelled" (stop token), "io_error" (the agent's own files, pipes, mounts). "timeout" is
// reserved (nothing here times out: remove() waits up to 10 s for a SIGKILLed process).
//
// Processes: make_crun_executor() makes the agent a child subreaper (PR_SET_CHILD_SUBREAPER),
// because crun leaves a container's init and `exec --detach` processes behind and they must
// become the agent's children for their exit status to be ours; it also ignores SIGPIPE. The
// agent's main must call install_child_reaper() (as PID 1 and as a plain process alike), and
// any other code in the agent that waits for its own children must use agent/executor/reaper.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/error.h"
#include "core/json.h"
#include "oci/manifest.h"

namespace coffer::agent {

inline constexpr std::size_t kOutputBufferBytes = std::size_t{1} << 20;  // per stream

struct Mount {
  std::string destination;
  std::string type;  // "bind", "tmpfs", ...
  std::string source;
  std::vector<std::string> options;
};

// What a request may change relative to the image config. Every field unset means "as the image
// says". The agent policy decides which overrides are allowed before they get here.
struct SpecOverrides {
  std::optional<std::vector<std::string>> entrypoint;
  std::optional<std::vector<std::string>> command;
  std::vector<std::string> env;  // KEY=VALUE, added to / replacing the image's
  std::optional<std::string> working_dir;
  std::optional<std::string> user;  // "uid[:gid]" or a name resolved in the rootfs
  std::vector<Mount> mounts;        // extra mounts
  bool terminal = false;
  bool open_stdin = false;
  bool privileged = false;  // all capabilities, noNewPrivileges off, no masked/read-only paths
                            // (only if policy allows); no seccomp profile either way
  std::optional<std::uint64_t> memory_limit_bytes;  // linux.resources.memory.limit (cgroups)
};

// The complete OCI runtime spec (config.json) for a container of `sandbox` from the image config,
// the container's root `rootfs` (names for User resolve there) and the allowed overrides.
// Namespaces join the sandbox's. "bad_spec" for an unresolvable user, a relative path...
Result<Json> build_oci_spec(const oci::ImageConfig& image, const std::filesystem::path& rootfs,
                            const SpecOverrides& overrides);

struct ProcessSpec {
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd;  // empty: the container's
  std::optional<std::string> user;
  bool terminal = false;
  bool open_stdin = false;
};

enum class ContainerStatus { kCreated, kRunning, kStopped };

struct ExitStatus {
  int exit_code = 0;  // 128+signal when killed by a signal
  int signal = 0;     // the terminating signal, 0 when it exited
  bool oom_killed = false;
};

struct ContainerState {
  std::string id;
  std::string sandbox_id;
  std::string image;  // reference it was created from (as given by the caller)
  ContainerStatus status = ContainerStatus::kCreated;
  int pid = 0;  // host (agent-namespace) pid of init while running
  std::optional<ExitStatus> exit;
  std::chrono::system_clock::time_point created;
};

// From the container's cgroup (memory usage, cpuacct/cpu.stat usage, pids.current) when crun
// uses cgroups; else from the init's /proc entries only (RSS, utime+stime, pids = 1).
struct ContainerStats {
  std::uint64_t memory_bytes = 0;
  std::uint64_t cpu_usage_ns = 0;
  std::uint64_t pids = 0;
};

enum class OutputStream { kStdout, kStderr };

struct ContainerCreate {
  std::string id;
  std::string sandbox_id;
  std::string image;                   // for ContainerState only
  std::filesystem::path image_rootfs;  // shared, read-only unpacked image
  oci::ImageConfig image_config;
  SpecOverrides overrides;
};

struct ExecutorOptions {
  std::filesystem::path runtime = "crun";  // looked up on PATH when relative
  std::filesystem::path state_dir;         // crun --root, sandboxes, bundles (created 0700);
                                           // absolute, else "bad_spec"
};

class ContainerExecutor {
 public:
  virtual ~ContainerExecutor() = default;

  virtual Status create_sandbox(const std::string& sandbox_id) = 0;
  // Network, IPC and UTS namespaces (hostname = the sandbox id, first 63 characters), loopback
  // up. Containers always get their own PID and mount namespaces.
  // The sandbox's network namespace file (for serving 127.0.0.1:8006 inside it: setns(2) on it
  // from a thread, or bind a socket there).
  virtual Result<std::filesystem::path> sandbox_netns(const std::string& sandbox_id) = 0;
  virtual Status remove_sandbox(const std::string& sandbox_id) = 0;

  virtual Result<ContainerState> create(const ContainerCreate& request) = 0;
  virtual Status start(const std::string& id) = 0;
  virtual Result<ExitStatus> wait(const std::string& id, const std::string& exec_id,
                                  std::stop_token stop) = 0;
  virtual Status signal(const std::string& id, const std::string& exec_id, int signo) = 0;
  virtual Result<std::string> exec(const std::string& id, const ProcessSpec& process) = 0;
  // Kills what still runs (SIGKILL to the init ends its PID namespace, exec'd processes too),
  // deletes the crun container, its writable root and bundle. A wait() still pending on it
  // returns the kill's status (SIGKILL); unread output is gone.
  virtual Status remove(const std::string& id) = 0;
  virtual Result<ContainerState> state(const std::string& id) = 0;
  virtual std::vector<ContainerState> list() = 0;
  virtual Result<ContainerStats> stats(const std::string& id) = 0;

  virtual Status write_stdin(const std::string& id, const std::string& exec_id, ByteView data,
                             std::stop_token stop) = 0;
  virtual Status close_stdin(const std::string& id, const std::string& exec_id) = 0;
  // Up to max_bytes (0 means kOutputBufferBytes); blocks until data, end of stream (empty
  // result) or stop ("cancelled"; an already requested stop makes it a non-blocking read).
  // With a TTY both streams are one: kStdout carries it, kStderr is empty at once.
  // close_stdin() on a TTY sends the terminal's end-of-file character (^D): the master stays
  // open for the output.
  virtual Result<Bytes> read_output(const std::string& id, const std::string& exec_id,
                                    OutputStream stream, std::size_t max_bytes,
                                    std::stop_token stop) = 0;
  virtual Status resize_tty(const std::string& id, const std::string& exec_id, std::uint16_t rows,
                            std::uint16_t cols) = 0;
};

// "runtime_not_found" when crun is missing; probes that crun can run here (a `crun create` of a
// trivial container, with cgroups, else --cgroup-manager=disabled): "runtime_failed" with crun's
// error when it cannot. Without cgroups a memory limit is "bad_spec", stats come from /proc and
// OOM kills are not detected.
Result<std::unique_ptr<ContainerExecutor>> make_crun_executor(const ExecutorOptions& options);

// For the agent as PID 1 in a VM, and as a subreaper in a process enclave: reaps children
// nobody registered (orphans re-parented to it) without stealing the exit status of processes
// the executor waits for (see agent/executor/reaper.h for the design). Idempotent.
void install_child_reaper();

}  // namespace coffer::agent
