// containerd's task API for one pod, on the coffer agent (task_service.h).
#include "runtime/shim/task_service.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include "core/bytes.h"
#include "core/file.h"
#include "core/json.h"
#include "github.com/containerd/containerd/api/events/task.pb.h"
#include "github.com/containerd/containerd/runtime/v2/task/shim.pb.h"
#include "guest/config.h"
#include "runtime/enclave_factory.h"

namespace coffer::runtime::shim {

namespace fs = std::filesystem;
namespace taskpb = ::containerd::task::v2;
namespace evpb = ::containerd::events;
namespace typespb = ::containerd::v1::types;
using net::ttrpc::Code;
using net::ttrpc::RpcStatus;
using SysClock = std::chrono::system_clock;

namespace {

constexpr std::size_t kMaxExecSpecBytes = 1U << 20U;
constexpr auto kStopGrace = std::chrono::seconds(5);

void set_time(google::protobuf::Timestamp* t, SysClock::time_point at) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch());
  t->set_seconds(std::chrono::duration_cast<std::chrono::seconds>(ns).count());
  t->set_nanos(static_cast<std::int32_t>(ns.count() % 1000000000));
}

bool write_all(int fd, std::string_view data, int stop_fd) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      // the reader is slow (or gone): wait for room, or for teardown
      pollfd p[2] = {{fd, POLLOUT, 0}, {stop_fd, POLLIN, 0}};
      if (::poll(p, 2, -1) < 0 && errno != EINTR) return false;
      if (p[1].revents != 0) return false;
      continue;
    }
    return false;
  }
  return true;
}

template <class Msg>
Result<Msg> parse(const std::string& bytes) {
  Msg m;
  if (!m.ParseFromString(bytes)) {
    return make_error("bad_request", "the request is not a " + m.GetDescriptor()->full_name());
  }
  return m;
}

Error not_supported(std::string_view what) {
  return Error{"not_supported", std::string(what) +
                                    " is not supported by containerd-shim-coffer-v2: the "
                                    "container runs inside an enclave the host cannot reach into"};
}

}  // namespace

RpcStatus to_status(const Error& e) {
  const std::string& c = e.code;
  Code code = Code::kInternal;
  if (c == "not_found" || c.ends_with("_not_found") || c == "manifest_unknown" ||
      c == "blob_unknown") {
    code = Code::kNotFound;
  } else if (c == "already_exists" || c.ends_with("_exists")) {
    code = Code::kAlreadyExists;
  } else if (c == "bad_state" || c == "failed_precondition") {
    code = Code::kFailedPrecondition;
  } else if (c == "not_supported") {
    code = Code::kUnimplemented;
  } else if (c.starts_with("bad_") || c == "no_image_ref") {
    code = Code::kInvalidArgument;
  } else if (c == "policy_denied" || c == "policy_rejected" || c.starts_with("kbs_") ||
             c == "unauthorized" || c == "no_valid_signature" || c == "signature_invalid" ||
             c == "missing_decryption_key" || c == "layer_not_encrypted" ||
             c == "no_image_policy" || c == "identity_mismatch") {
    code = Code::kPermissionDenied;
  } else if (c == "agent_unavailable" || c == "registry_error" || c == "no_kbs") {
    code = Code::kUnavailable;
  } else if (c == "agent_timeout" || c == "timeout") {
    code = Code::kDeadlineExceeded;
  }
  return RpcStatus{code, printable_excerpt(e.to_string(), 2048)};
}

// One process: a container's init ("" exec id) or an exec.
struct TaskService::Process {
  std::string container_id;
  std::string exec_id;    // the agent's ("" : the container's init)
  std::string exec_name;  // containerd's name for an exec
  std::string stdin_path, stdout_path, stderr_path;
  bool terminal = false;
  bool virtual_sandbox = false;  // a CRI sandbox: the enclave's sandbox, no process of its own
  // guarded by the service's mu_
  typespb::Status status = typespb::CREATED;
  std::uint32_t exit_status = 0;
  SysClock::time_point exited_at{};
  // stdio copies and the exit watcher
  int stop_pipe[2] = {-1, -1};
  std::thread out, err, in, watcher;

  [[nodiscard]] std::string event_id() const { return exec_id.empty() ? container_id : exec_name; }
};

struct TaskService::Task {
  std::string id;
  std::string bundle;
  std::shared_ptr<Process> init;
  std::map<std::string, std::shared_ptr<Process>> execs;
};

TaskService::TaskService(ShimConfig config, std::string ns, fs::path pod_dir, Publisher& events,
                         std::function<void()> on_shutdown)
    : config_(std::move(config)),
      ns_(std::move(ns)),
      pod_dir_(std::move(pod_dir)),
      events_(events),
      on_shutdown_(std::move(on_shutdown)),
      launcher_([this](const std::stop_token& stop) {
        for (;;) {
          std::function<void()> job;
          {
            std::unique_lock lock(jobs_mu_);
            if (!jobs_cv_.wait(lock, stop, [this] { return !jobs_.empty(); })) return;
            job = std::move(jobs_.front());
            jobs_.pop_front();
          }
          job();
        }
      }) {}

TaskService::~TaskService() {
  teardown();
  launcher_.request_stop();
  jobs_cv_.notify_all();
}

void TaskService::on_launcher_thread(const std::function<void()>& job) {
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  {
    std::lock_guard lock(jobs_mu_);
    jobs_.emplace_back([&] {
      job();
      std::lock_guard l(m);
      done = true;
      cv.notify_all();
    });
  }
  jobs_cv_.notify_all();
  std::unique_lock l(m);
  cv.wait(l, [&] { return done; });
}

void TaskService::register_methods(net::ttrpc::Server& server) {
  using Handler =
      std::function<Result<std::string>(const net::ttrpc::CallContext&, const std::string&)>;
  const auto add = [&](std::string_view method, Handler h) {
    server.add_method(
        "containerd.task.v2.Task", method,
        [this, name = std::string(method), h = std::move(h)](
            const net::ttrpc::CallContext& ctx,
            std::string_view request) -> net::ttrpc::CallResult {
          std::string ns;
          for (const auto& [k, v] : ctx.metadata) {
            if (k == kNamespaceMetadata) ns = v;
          }
          if (!ns.empty() && ns != ns_) {
            return net::ttrpc::status_error(Code::kInvalidArgument,
                                            "bad_namespace: this shim serves namespace " + ns_);
          }
          // the call order containerd uses (docs/kubernetes.md): ids only, never payloads
          taskpb::StateRequest ids;  // id = 1, exec_id = 2 in every request that has them
          (void)ids.ParseFromArray(request.data(), static_cast<int>(request.size()));
          // (field 2 is the bundle in CreateTaskRequest, a flag in ShutdownRequest)
          const bool has_exec = name != "Create" && name != "Shutdown";
          spdlog::debug("task api: {} id={} exec={}", name, printable_excerpt(ids.id(), 80),
                        has_exec ? printable_excerpt(ids.exec_id(), 80) : std::string());
          auto r = h(ctx, std::string(request));
          if (!r) {
            spdlog::info("task api: {} {}: {}", name, printable_excerpt(ids.id(), 80),
                         r.error().to_string());
            return std::unexpected(to_status(r.error()));
          }
          return std::move(*r);
        });
  };
  add("Create", [this](const auto&, const std::string& r) { return create(r); });
  add("Start", [this](const auto&, const std::string& r) { return start(r); });
  add("Wait", [this](const auto& ctx, const std::string& r) { return wait(ctx, r); });
  add("State", [this](const auto&, const std::string& r) { return state(r); });
  add("Kill", [this](const auto&, const std::string& r) { return kill(r); });
  add("Delete", [this](const auto&, const std::string& r) { return remove(r); });
  add("Pids", [this](const auto&, const std::string& r) { return pids(r); });
  add("Exec", [this](const auto&, const std::string& r) { return exec(r); });
  add("CloseIO", [this](const auto&, const std::string& r) { return close_io(r); });
  add("ResizePty", [this](const auto&, const std::string& r) { return resize_pty(r); });
  add("Connect", [this](const auto&, const std::string& r) { return connect(r); });
  add("Shutdown", [this](const auto&, const std::string& r) { return shutdown(r); });
  for (const auto* m : {"Stats", "Update", "Pause", "Resume", "Checkpoint"}) {
    add(m, [m](const auto&, const std::string&) -> Result<std::string> {
      return std::unexpected(not_supported(m));
    });
  }
}

pid_t TaskService::enclave_pid() const {
  std::lock_guard lock(mu_);
  return enclave_ ? enclave_->pid() : 0;
}

std::shared_ptr<TaskService::Process> TaskService::find(const std::string& id,
                                                        const std::string& exec_id) {
  std::lock_guard lock(mu_);
  const auto it = tasks_.find(id);
  if (it == tasks_.end()) return nullptr;
  if (exec_id.empty()) return it->second->init;
  const auto e = it->second->execs.find(exec_id);
  return e == it->second->execs.end() ? nullptr : e->second;
}

// ---- the enclave -------------------------------------------------------------------------------

Status TaskService::ensure_enclave(const ContainerRequest& req) {
  {
    std::lock_guard lock(mu_);
    if (enclave_) {
      // one enclave per pod, bound to the init-data it started with
      if (req.sandbox_id != sandbox_id_) {
        return make_error("bad_request", "this shim serves pod " + sandbox_id_);
      }
      if (req.init_data && req.init_data != init_data_) {
        return make_error("bad_init_data",
                          "the pod's enclave runs with other init-data: io.coffer.init-data "
                          "belongs on the pod (its sandbox), the same for every container");
      }
      if (req.enclave && *req.enclave != enclave_kind_) {
        return make_error("bad_annotation", "the pod's enclave is a " + enclave_kind_ + " enclave");
      }
      return ok();
    }
  }
  const std::string kind = req.enclave.value_or(config_.enclave);
  std::optional<std::string> init_data = req.init_data;
  if (!init_data && !config_.init_data.empty()) {
    auto text = read_text_file(config_.init_data, guest::kMaxInitDataBytes);
    if (!text) return wrap_error(text.error(), "the shim config's init_data");
    if (auto parsed = guest::parse_guest_config(*text); !parsed) {
      return make_error("bad_init_data", "the shim config's init_data: " + parsed.error().message);
    }
    init_data = std::move(*text);
  }
  EnclaveSpec spec;
  spec.tee = config_.tee;
  spec.enclave_image = kind == "vm" ? config_.guest_image : config_.enclave_image;
  if (spec.enclave_image.empty()) {
    return make_error("no_enclave_image",
                      std::string("the shim config names no ") +
                          (kind == "vm" ? "guest_image (vm enclave)" : "enclave_image") +
                          " (docs/kubernetes.md, \"The shim\")");
  }
  spec.sim_dir = config_.sim_dir;
  spec.init_data = init_data;
  spec.run_dir = pod_dir_ / "enclave";
  spec.agent_log_level = config_.agent_log_level;
  spec.agent_log_file = pod_dir_ / "agent.log";
  spec.host_network = true;
  spec.vm_accel = config_.vm_accel;
  spdlog::info("pod {}: launching the {} enclave ({}), init-data {}", req.sandbox_id, kind,
               spec.tee, init_data ? "given" : "none");
  Result<std::unique_ptr<Enclave>> enclave = make_error("enclave_unavailable", "not launched");
  on_launcher_thread([&] {
    enclave = launch_enclave(kind, spec, [](const LaunchEvent& ev) {
      spdlog::debug("launch: {} {}", ev.step, ev.detail);
    });
  });
  if (!enclave) return wrap_error(enclave.error(), "launching the enclave");
  auto agent = AgentClient::connect((*enclave)->agent_socket());
  if (!agent) {
    (void)(*enclave)->stop(kStopGrace);
    return wrap_error(agent.error(), "connecting to the agent");
  }
  std::shared_ptr<AgentClient> client = std::move(*agent);
  if (auto s = client->create_sandbox(req.sandbox_id); !s) {
    client->close();
    (void)(*enclave)->stop(kStopGrace);
    return wrap_error(s.error(), "creating the pod's sandbox in the enclave");
  }
  std::lock_guard lock(mu_);
  enclave_ = std::move(*enclave);
  agent_ = std::move(client);
  sandbox_id_ = req.sandbox_id;
  init_data_ = std::move(init_data);
  enclave_kind_ = kind;
  spdlog::info("pod {}: enclave up (pid {})", sandbox_id_, enclave_->pid());
  return ok();
}

void TaskService::stop_enclave_if_unused() {
  std::unique_ptr<Enclave> enclave;
  std::shared_ptr<AgentClient> agent;
  std::string sandbox;
  {
    std::lock_guard lock(mu_);
    if (!tasks_.empty() || !enclave_) return;
    enclave = std::move(enclave_);
    agent = std::move(agent_);
    sandbox = std::move(sandbox_id_);
  }
  if (agent) {
    (void)agent->remove_sandbox(sandbox);
    agent->close();
  }
  if (auto s = enclave->stop(kStopGrace); !s) {
    spdlog::warn("stopping the enclave: {}", s.error().to_string());
  }
  spdlog::info("pod {}: enclave stopped", sandbox);
}

// ---- Create / Start / Wait ---------------------------------------------------------------------

Result<std::string> TaskService::create(const std::string& bytes) {
  auto r = COFFER_TRY(parse<taskpb::CreateTaskRequest>(bytes));
  if (!valid_id(r.id())) return make_error("bad_request", "not a valid container id");
  if (!r.checkpoint().empty()) return std::unexpected(not_supported("restoring a checkpoint"));
  for (const auto* path : {&r.stdin(), &r.stdout(), &r.stderr()}) {
    if (path->find("://") != std::string::npos) {
      return make_error("not_supported", "stdio '" + printable_excerpt(*path, 64) +
                                             "': only FIFOs and files are supported (no log URIs)");
    }
  }
  std::lock_guard create_lock(create_mu_);
  if (find(r.id(), "")) return make_error("already_exists", "task " + r.id() + " exists");
  // the OCI spec's annotations (config.json in the bundle containerd wrote); never the rootfs
  auto spec_text = read_text_file(fs::path(r.bundle()) / "config.json", kMaxSpecBytes);
  if (!spec_text) return wrap_error(spec_text.error(), "reading the bundle's config.json");
  const auto annotations = COFFER_TRY(spec_annotations(*spec_text));
  std::vector<std::vector<std::string>> mount_options;
  for (const auto& m : r.rootfs()) {
    mount_options.emplace_back(m.options().begin(), m.options().end());
  }
  const auto req = COFFER_TRY(parse_container(r.id(), annotations, mount_options));
  COFFER_TRY_STATUS(ensure_enclave(req));

  auto p = std::make_shared<Process>();
  p->container_id = r.id();
  p->stdin_path = r.stdin();
  p->stdout_path = r.stdout();
  p->stderr_path = r.stderr();
  p->terminal = r.terminal();
  p->virtual_sandbox = req.container_type == "sandbox";
  if (!p->virtual_sandbox) {
    std::shared_ptr<AgentClient> agent;
    {
      std::lock_guard lock(mu_);
      agent = agent_;
    }
    auto created = [&]() -> Status {
      spdlog::info("container {}: pulling {} in the enclave", r.id(), req.image);
      auto pulled = agent->pull_image(req.image);
      if (!pulled) return wrap_error(pulled.error(), "pulling " + req.image + " in the enclave");
      spdlog::info("container {}: {} {}", r.id(), pulled->from_cache() ? "cached" : "pulled",
                   pulled->manifest_digest());
      agentpb::CreateContainerRequest c;
      c.set_container_id(r.id());
      c.set_sandbox_id(req.sandbox_id);
      c.set_image(req.image);
      c.set_terminal(r.terminal());
      c.set_open_stdin(!r.stdin().empty());
      auto made = agent->create_container(c);
      if (!made) return wrap_error(made.error(), "creating the container in the enclave");
      return ok();
    }();
    if (!created) {
      stop_enclave_if_unused();  // a failed first container leaves no enclave
      return std::unexpected(created.error());
    }
  }
  auto task = std::make_shared<Task>();
  task->id = r.id();
  task->bundle = r.bundle();
  task->init = p;
  {
    std::lock_guard lock(mu_);
    tasks_[r.id()] = task;
  }
  const auto pid = static_cast<std::uint32_t>(enclave_pid());
  evpb::TaskCreate ev;
  ev.set_container_id(r.id());
  ev.set_bundle(r.bundle());
  *ev.mutable_rootfs() = r.rootfs();
  ev.mutable_io()->set_stdin(r.stdin());
  ev.mutable_io()->set_stdout(r.stdout());
  ev.mutable_io()->set_stderr(r.stderr());
  ev.mutable_io()->set_terminal(r.terminal());
  ev.set_pid(pid);
  events_.publish(kTopicCreate, ev);
  taskpb::CreateTaskResponse resp;
  resp.set_pid(pid);
  return resp.SerializeAsString();
}

void TaskService::start_io(const std::shared_ptr<Process>& p) {
  if (::pipe2(p->stop_pipe, O_CLOEXEC) != 0) {
    spdlog::error("pipe: {}", std::strerror(errno));
    return;
  }
  std::shared_ptr<AgentClient> agent;
  {
    std::lock_guard lock(mu_);
    agent = agent_;
  }
  const int stop_fd = p->stop_pipe[0];
  const auto output = [agent, p, stop_fd](bool err) {
    const std::string& path = err ? p->stderr_path : p->stdout_path;
    int fd = -1;
    if (!path.empty()) {
      // containerd's FIFO: O_RDWR never blocks waiting for its reader
      fd = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0) spdlog::warn("opening {}: {}", path, std::strerror(errno));
    }
    bool writing = fd >= 0;
    for (;;) {
      auto chunk = agent->read_output(p->container_id, err, 0, p->exec_id);
      if (!chunk || (chunk->eof && chunk->data.empty())) break;
      if (writing) writing = write_all(fd, chunk->data, stop_fd);  // else: drain, discard
    }
    if (fd >= 0) ::close(fd);
  };
  p->out = std::thread(output, false);
  if (!p->terminal) p->err = std::thread(output, true);
  if (!p->stdin_path.empty()) {
    p->in = std::thread([agent, p, stop_fd] {
      const int fd = ::open(p->stdin_path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0) {
        spdlog::warn("opening {}: {}", p->stdin_path, std::strerror(errno));
        return;
      }
      std::string buf(64 * 1024, '\0');
      for (;;) {
        pollfd fds[2] = {{fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
          if (errno == EINTR) continue;
          break;
        }
        if (fds[1].revents != 0) break;
        const ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) {
          (void)agent->close_stdin(p->container_id, p->exec_id);
          break;
        }
        if (!agent->write_stdin(p->container_id,
                                std::string_view(buf.data(), static_cast<std::size_t>(n)),
                                p->exec_id)) {
          break;
        }
      }
      ::close(fd);
    });
  }
}

void TaskService::join_io(Process& p) {
  if (p.stop_pipe[1] >= 0) (void)!::write(p.stop_pipe[1], "x", 1);
  for (auto* t : {&p.in, &p.out, &p.err}) {
    if (t->joinable() && t->get_id() != std::this_thread::get_id()) t->join();
  }
}

void TaskService::mark_exited(const std::shared_ptr<Process>& p, std::uint32_t status) {
  {
    std::lock_guard lock(mu_);
    if (p->status == typespb::STOPPED) return;
    p->status = typespb::STOPPED;
    p->exit_status = status;
    p->exited_at = SysClock::now();
  }
  exited_cv_.notify_all();
  evpb::TaskExit ev;
  ev.set_container_id(p->container_id);
  ev.set_id(p->event_id());
  ev.set_pid(static_cast<std::uint32_t>(enclave_pid()));
  ev.set_exit_status(status);
  set_time(ev.mutable_exited_at(), p->exited_at);
  spdlog::info("{}{}: exited with {}", p->container_id,
               p->exec_name.empty() ? std::string() : " exec " + p->exec_name, status);
  events_.publish(kTopicExit, ev);
}

void TaskService::watch(const std::shared_ptr<Process>& p) {
  std::shared_ptr<AgentClient> agent;
  {
    std::lock_guard lock(mu_);
    agent = agent_;
  }
  p->watcher = std::thread([this, agent, p] {
    auto exit = agent->wait_process(p->container_id, p->exec_id);
    // the exit counts once the output reached containerd
    for (auto* t : {&p->out, &p->err}) {
      if (t->joinable()) t->join();
    }
    if (!exit) spdlog::warn("{}: waiting: {}", p->container_id, exit.error().to_string());
    mark_exited(p, exit ? static_cast<std::uint32_t>(exit->exit_code()) : 255U);
  });
}

Result<std::string> TaskService::start(const std::string& bytes) {
  auto r = COFFER_TRY(parse<taskpb::StartRequest>(bytes));
  auto p = find(r.id(), r.exec_id());
  if (!p) return make_error("not_found", "no task " + r.id() + " " + r.exec_id());
  {
    std::lock_guard lock(mu_);
    if (p->status != typespb::CREATED) return make_error("bad_state", "already started");
  }
  if (!p->virtual_sandbox && p->exec_id.empty()) {
    std::shared_ptr<AgentClient> agent;
    {
      std::lock_guard lock(mu_);
      agent = agent_;
    }
    COFFER_TRY_STATUS(agent->start_container(r.id()));
  }
  {
    std::lock_guard lock(mu_);
    p->status = typespb::RUNNING;
  }
  if (!p->virtual_sandbox) {
    start_io(p);
    watch(p);
  }
  const auto pid = static_cast<std::uint32_t>(enclave_pid());
  if (r.exec_id().empty()) {
    evpb::TaskStart ev;
    ev.set_container_id(r.id());
    ev.set_pid(pid);
    events_.publish(kTopicStart, ev);
  } else {
    evpb::TaskExecStarted ev;
    ev.set_container_id(r.id());
    ev.set_exec_id(r.exec_id());
    ev.set_pid(pid);
    events_.publish(kTopicExecStarted, ev);
  }
  taskpb::StartResponse resp;
  resp.set_pid(pid);
  return resp.SerializeAsString();
}

Result<std::string> TaskService::wait(const net::ttrpc::CallContext& ctx,
                                      const std::string& bytes) {
  auto r = COFFER_TRY(parse<taskpb::WaitRequest>(bytes));
  auto p = find(r.id(), r.exec_id());
  if (!p) return make_error("not_found", "no task " + r.id() + " " + r.exec_id());
  std::unique_lock lock(mu_);
  if (!exited_cv_.wait(lock, ctx.stop, [&] { return p->status == typespb::STOPPED; })) {
    return make_error("cancelled", "the wait was cancelled");
  }
  taskpb::WaitResponse resp;
  resp.set_exit_status(p->exit_status);
  set_time(resp.mutable_exited_at(), p->exited_at);
  return resp.SerializeAsString();
}

// ---- State / Kill / Delete / Pids --------------------------------------------------------------

Result<std::string> TaskService::state(const std::string& bytes) {
  auto r = COFFER_TRY(parse<taskpb::StateRequest>(bytes));
  std::string bundle;
  {
    std::lock_guard lock(mu_);
    if (const auto it = tasks_.find(r.id()); it != tasks_.end()) bundle = it->second->bundle;
  }
  auto p = find(r.id(), r.exec_id());
  if (!p) return make_error("not_found", "no task " + r.id() + " " + r.exec_id());
  taskpb::StateResponse resp;
  resp.set_pid(static_cast<std::uint32_t>(enclave_pid()));
  std::lock_guard lock(mu_);
  resp.set_id(r.id());
  resp.set_exec_id(r.exec_id());
  resp.set_bundle(bundle);
  resp.set_status(p->status);
  resp.set_stdin(p->stdin_path);
  resp.set_stdout(p->stdout_path);
  resp.set_stderr(p->stderr_path);
  resp.set_terminal(p->terminal);
  if (p->status == typespb::STOPPED) {
    resp.set_exit_status(p->exit_status);
    set_time(resp.mutable_exited_at(), p->exited_at);
  }
  return resp.SerializeAsString();
}

Result<std::string> TaskService::kill(const std::string& bytes) {
  auto r = COFFER_TRY(parse<taskpb::KillRequest>(bytes));
  auto p = find(r.id(), r.exec_id());
  if (!p) return make_error("not_found", "no task " + r.id() + " " + r.exec_id());
  if (r.signal() < 1 || r.signal() > 64) return make_error("bad_request", "signal out of range");
  typespb::Status status{};
  {
    std::lock_guard lock(mu_);
    status = p->status;
  }
  if (status == typespb::STOPPED) {
    // runc's answer, which CRI expects for a process that already exited
    return make_error("not_found", "process already finished");
  }
  if (p->virtual_sandbox || status == typespb::CREATED) {
    // a CRI sandbox has no process of its own; a created container never ran: either ends now
    if (!p->virtual_sandbox) {
      std::shared_ptr<AgentClient> agent;
      {
        std::lock_guard lock(mu_);
        agent = agent_;
      }
      (void)agent->signal_process(r.id(), r.signal(), r.exec_id());
    }
    mark_exited(p, 128U + r.signal());
  } else {
    std::shared_ptr<AgentClient> agent;
    {
      std::lock_guard lock(mu_);
      agent = agent_;
    }
    // all: the agent's container is one process tree in its own PID namespace; signalling its
    // init signals the container (KILL ends it all)
    if (auto s = agent->signal_process(r.id(), r.signal(), r.exec_id()); !s) {
      if (s.error().code == "bad_state" || s.error().code.ends_with("not_found")) {
        return make_error("not_found", "process already finished");
      }
      return std::unexpected(s.error());
    }
  }
  return google::protobuf::Empty().SerializeAsString();
}

Result<std::string> TaskService::remove(const std::string& bytes) {
  auto r = COFFER_TRY(parse<taskpb::DeleteRequest>(bytes));
  std::shared_ptr<Task> task;
  std::shared_ptr<Process> p;
  std::shared_ptr<AgentClient> agent;
  {
    std::lock_guard lock(mu_);
    const auto it = tasks_.find(r.id());
    if (it == tasks_.end()) return make_error("not_found", "no task " + r.id());
    task = it->second;
    if (r.exec_id().empty()) {
      p = task->init;
      if (!task->execs.empty()) {
        return make_error("failed_precondition", "the task has execs: delete them first");
      }
    } else {
      const auto e = task->execs.find(r.exec_id());
      if (e == task->execs.end()) return make_error("not_found", "no exec " + r.exec_id());
      p = e->second;
    }
    if (p->status == typespb::RUNNING) {
      return make_error("failed_precondition", "the process is running: kill it first");
    }
    agent = agent_;
  }
  if (p->exec_id.empty() && !p->virtual_sandbox && agent) {
    if (auto s = agent->remove_container(r.id()); !s && !s.error().code.ends_with("not_found")) {
      return wrap_error(s.error(), "removing the container in the enclave");
    }
  }
  if (p->stop_pipe[1] >= 0) (void)!::write(p->stop_pipe[1], "x", 1);
  if (p->watcher.joinable()) p->watcher.join();  // it joined the output copies
  join_io(*p);
  for (int& fd : p->stop_pipe) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  const bool never_ran = p->status == typespb::CREATED;
  {
    std::lock_guard lock(mu_);
    if (never_ran) {
      p->status = typespb::STOPPED;
      p->exited_at = SysClock::now();
    }
    if (r.exec_id().empty()) {
      tasks_.erase(r.id());
    } else {
      task->execs.erase(r.exec_id());
    }
  }
  const auto pid = static_cast<std::uint32_t>(enclave_pid());
  if (r.exec_id().empty()) {
    evpb::TaskDelete ev;
    ev.set_container_id(r.id());
    ev.set_id(r.id());
    ev.set_pid(pid);
    ev.set_exit_status(p->exit_status);
    set_time(ev.mutable_exited_at(), p->exited_at);
    events_.publish(kTopicDelete, ev);
  }
  taskpb::DeleteResponse resp;
  resp.set_pid(pid);
  resp.set_exit_status(p->exit_status);
  set_time(resp.mutable_exited_at(), p->exited_at);
  return resp.SerializeAsString();
}

Result<std::string> TaskService::pids(const std::string& bytes) {
  auto r = COFFER_TRY(parse<taskpb::PidsRequest>(bytes));
  if (!find(r.id(), "")) return make_error("not_found", "no task " + r.id());
  // the host sees the enclave, not the processes inside it
  taskpb::PidsResponse resp;
  resp.add_processes()->set_pid(static_cast<std::uint32_t>(enclave_pid()));
  return resp.SerializeAsString();
}

// ---- Exec, stdio control, Connect, Shutdown ----------------------------------------------------

Result<std::string> TaskService::exec(const std::string& bytes) {
  auto r = COFFER_TRY(parse<taskpb::ExecProcessRequest>(bytes));
  auto init = find(r.id(), "");
  if (!init) return make_error("not_found", "no task " + r.id());
  if (!valid_id(r.exec_id())) return make_error("bad_request", "not a valid exec id");
  if (find(r.id(), r.exec_id())) return make_error("already_exists", "exec " + r.exec_id());
  if (init->virtual_sandbox) {
    return make_error("failed_precondition", "a pod sandbox has no process to exec in");
  }
  // the OCI process (runtime-spec Process, JSON) containerd wraps in an Any
  if (r.spec().value().size() > kMaxExecSpecBytes) {
    return make_error("bad_request", "the exec process spec is over 1 MiB");
  }
  auto spec = parse_json(r.spec().value(), {.max_bytes = kMaxExecSpecBytes, .max_depth = 32});
  if (!spec || !spec->is_object()) return make_error("bad_request", "the exec spec is not JSON");
  agentpb::ExecProcessRequest e;
  e.set_container_id(r.id());
  const auto args = spec->find("args");
  if (args == spec->end() || !args->is_array() || args->empty()) {
    return make_error("bad_request", "the exec spec has no args");
  }
  for (const auto& a : *args) {
    if (!a.is_string()) return make_error("bad_request", "exec args must be strings");
    e.add_args(a.get<std::string>());
  }
  if (const auto cwd = spec->find("cwd"); cwd != spec->end() && cwd->is_string()) {
    e.set_cwd(cwd->get<std::string>());
  }
  e.set_terminal(r.terminal());
  e.set_open_stdin(!r.stdin().empty());
  std::shared_ptr<AgentClient> agent;
  {
    std::lock_guard lock(mu_);
    agent = agent_;
  }
  // the agent policy decides (the built-in one denies every exec): its denial goes back as is
  agentpb::ExecProcessResponse resp;
  COFFER_TRY_STATUS(agent->call("ExecProcess", e, resp, std::chrono::seconds(30)));
  // the agent's exec ids are its own; the process started at once: keep it created until Start
  auto p = std::make_shared<Process>();
  p->container_id = r.id();
  p->exec_id = resp.exec_id();  // the agent's id, for its calls
  p->exec_name = r.exec_id();
  p->stdin_path = r.stdin();
  p->stdout_path = r.stdout();
  p->stderr_path = r.stderr();
  p->terminal = r.terminal();
  {
    std::lock_guard lock(mu_);
    const auto it = tasks_.find(r.id());
    if (it == tasks_.end()) return make_error("not_found", "no task " + r.id());
    it->second->execs[r.exec_id()] = p;
  }
  evpb::TaskExecAdded ev;
  ev.set_container_id(r.id());
  ev.set_exec_id(r.exec_id());
  events_.publish(kTopicExecAdded, ev);
  return google::protobuf::Empty().SerializeAsString();
}

Result<std::string> TaskService::close_io(const std::string& bytes) {
  auto r = COFFER_TRY(parse<taskpb::CloseIORequest>(bytes));
  auto p = find(r.id(), r.exec_id());
  if (!p) return make_error("not_found", "no task " + r.id() + " " + r.exec_id());
  if (r.stdin()) {
    std::shared_ptr<AgentClient> agent;
    {
      std::lock_guard lock(mu_);
      agent = agent_;
    }
    if (agent && !p->virtual_sandbox) (void)agent->close_stdin(r.id(), p->exec_id);
  }
  return google::protobuf::Empty().SerializeAsString();
}

Result<std::string> TaskService::resize_pty(const std::string& bytes) {
  auto r = COFFER_TRY(parse<taskpb::ResizePtyRequest>(bytes));
  auto p = find(r.id(), r.exec_id());
  if (!p) return make_error("not_found", "no task " + r.id() + " " + r.exec_id());
  if (p->virtual_sandbox) return make_error("failed_precondition", "a pod sandbox has no TTY");
  std::shared_ptr<AgentClient> agent;
  {
    std::lock_guard lock(mu_);
    agent = agent_;
  }
  COFFER_TRY_STATUS(agent->resize_tty(r.id(), r.height(), r.width(), p->exec_id));
  return google::protobuf::Empty().SerializeAsString();
}

Result<std::string> TaskService::connect(const std::string& bytes) {
  (void)COFFER_TRY(parse<taskpb::ConnectRequest>(bytes));
  taskpb::ConnectResponse resp;
  resp.set_shim_pid(static_cast<std::uint32_t>(::getpid()));
  resp.set_task_pid(static_cast<std::uint32_t>(enclave_pid()));
  resp.set_version("coffer");
  return resp.SerializeAsString();
}

Result<std::string> TaskService::shutdown(const std::string& bytes) {
  (void)COFFER_TRY(parse<taskpb::ShutdownRequest>(bytes));
  {
    std::lock_guard lock(mu_);
    if (!tasks_.empty()) return google::protobuf::Empty().SerializeAsString();  // others remain
  }
  on_shutdown_();
  return google::protobuf::Empty().SerializeAsString();
}

void TaskService::teardown() {
  std::vector<std::shared_ptr<Process>> procs;
  std::vector<std::string> containers;
  std::shared_ptr<AgentClient> agent;
  std::string sandbox;
  {
    std::lock_guard lock(mu_);
    if (torn_down_) return;
    torn_down_ = true;
    for (auto& [id, t] : tasks_) {
      procs.push_back(t->init);
      for (auto& [name, e] : t->execs) procs.push_back(e);
      if (!t->init->virtual_sandbox) containers.push_back(id);
    }
    tasks_.clear();
    agent = agent_;
    sandbox = sandbox_id_;
  }
  if (agent) {
    for (const auto& id : containers) {
      (void)agent->signal_process(id, SIGKILL);
      (void)agent->remove_container(id);
    }
    if (!sandbox.empty()) (void)agent->remove_sandbox(sandbox);
  }
  for (const auto& p : procs) {
    if (p->stop_pipe[1] >= 0) (void)!::write(p->stop_pipe[1], "x", 1);
  }
  if (agent) agent->close();  // ends blocked reads and waits
  for (const auto& p : procs) {
    if (p->watcher.joinable()) p->watcher.join();
    join_io(*p);
    mark_exited(p, 128U + SIGKILL);
    for (int& fd : p->stop_pipe) {
      if (fd >= 0) ::close(fd);
      fd = -1;
    }
  }
  std::unique_ptr<Enclave> enclave;
  {
    std::lock_guard lock(mu_);
    enclave = std::move(enclave_);
    agent_.reset();
  }
  if (enclave) {
    if (auto s = enclave->stop(kStopGrace); !s) {
      spdlog::warn("stopping the enclave: {}", s.error().to_string());
    }
  }
}

}  // namespace coffer::runtime::shim
