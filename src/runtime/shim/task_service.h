// containerd's runtime v2 task API (containerd.task.v2.Task over ttrpc) for one pod, mapped onto
// the coffer agent in the pod's enclave (docs/kubernetes.md, "The shim"):
//
//   Create   the pod's first container starts the enclave (process or VM) and creates the pod's
//            sandbox in the agent; a CRI sandbox container is only that (no image runs for it);
//            any other container has the agent pull its image inside the enclave (PullImage) and
//            create it (CreateContainer). A failed first Create leaves no enclave behind.
//   Start    StartContainer, then stdio: the agent's ReadOutput/WriteStdin copied to/from the
//            FIFOs containerd passed; the exit is waited for, the output drained, and TaskExit sent
//   Wait     held open until the process exited
//   Kill     SignalProcess (a CRI sandbox "exits" with 128+signal)
//   Delete   RemoveContainer; TaskDelete
//   Exec     ExecProcess, through the agent policy (denied by default: the denial is returned)
//   State, Pids, Connect, CloseIO, ResizePty, Shutdown (the shim exits once no task remains)
//   Stats, Update, Pause, Resume, Checkpoint: UNIMPLEMENTED ("not_supported").
// Every call is logged at debug level (method, id, exec id): the order containerd calls in.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>

#include "core/error.h"
#include "net/ttrpc/server.h"
#include "runtime/agent_client.h"
#include "runtime/launcher.h"
#include "runtime/shim/events.h"
#include "runtime/shim/options.h"

namespace coffer::runtime::shim {

// An Error as the status containerd gets: the agent's codes mapped to the gRPC code containerd
// turns into its errdefs (NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION, ...), the message
// "<code>: <text>".
net::ttrpc::RpcStatus to_status(const Error& e);

class TaskService {
 public:
  // `pod_dir`: a private directory for the pod's enclave (run dir, agent log); `on_shutdown`:
  // called once containerd's Shutdown finds no task left.
  TaskService(ShimConfig config, std::string ns, std::filesystem::path pod_dir, Publisher& events,
              std::function<void()> on_shutdown);
  ~TaskService();
  TaskService(const TaskService&) = delete;
  TaskService& operator=(const TaskService&) = delete;

  void register_methods(net::ttrpc::Server& server);
  // Kills and removes every container, removes the sandbox, stops the enclave. Idempotent.
  void teardown();

 private:
  struct Process;
  struct Task;

  Result<std::string> create(const std::string& request);
  Result<std::string> start(const std::string& request);
  Result<std::string> wait(const net::ttrpc::CallContext& ctx, const std::string& request);
  Result<std::string> state(const std::string& request);
  Result<std::string> kill(const std::string& request);
  Result<std::string> remove(const std::string& request);
  Result<std::string> pids(const std::string& request);
  Result<std::string> exec(const std::string& request);
  Result<std::string> close_io(const std::string& request);
  Result<std::string> resize_pty(const std::string& request);
  Result<std::string> connect(const std::string& request);
  Result<std::string> shutdown(const std::string& request);

  Status ensure_enclave(const ContainerRequest& req);
  void stop_enclave_if_unused();
  std::shared_ptr<Process> find(const std::string& id, const std::string& exec_id);
  void start_io(const std::shared_ptr<Process>& p);
  void watch(const std::shared_ptr<Process>& p);
  void mark_exited(const std::shared_ptr<Process>& p, std::uint32_t status);
  void join_io(Process& p);
  [[nodiscard]] pid_t enclave_pid() const;
  // Runs `job` on the launcher thread and waits for it: the enclave's processes die with the
  // thread that forked them (PR_SET_PDEATHSIG), so they are forked by one that lives as long as
  // the shim, not by a call's thread.
  void on_launcher_thread(const std::function<void()>& job);

  ShimConfig config_;
  std::string ns_;
  std::filesystem::path pod_dir_;
  Publisher& events_;
  std::function<void()> on_shutdown_;

  std::mutex create_mu_;   // one Create at a time (the first starts the enclave)
  mutable std::mutex mu_;  // guards what follows
  std::condition_variable_any exited_cv_;
  std::unique_ptr<Enclave> enclave_;
  std::shared_ptr<AgentClient> agent_;
  std::string sandbox_id_;
  std::optional<std::string> init_data_;
  std::string enclave_kind_;
  std::map<std::string, std::shared_ptr<Task>> tasks_;
  bool torn_down_ = false;

  std::mutex jobs_mu_;
  std::condition_variable_any jobs_cv_;
  std::deque<std::function<void()>> jobs_;
  std::jthread launcher_;  // last: it goes first
};

}  // namespace coffer::runtime::shim
