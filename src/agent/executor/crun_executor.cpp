// ContainerExecutor on Debian's crun. Layout under ExecutorOptions::state_dir (0700):
//   crun/                       crun --root (never /run/crun)
//   sandboxes/<id>/{net,ipc,uts} nsfs bind mounts that hold the sandbox's namespaces
//   containers/<id>/            the bundle: config.json, rootfs/ (overlay mount or copy),
//                               upper/ work/ (overlay), crun logs, pid files, console sockets
//
// Why crun runs in a private mount namespace on some hosts: crun 1.8 refuses a "hybrid" cgroup
// host (v1 controllers plus a cgroup2 mount at /sys/fs/cgroup/unified that holds a controller),
// with "cgroups in hybrid mode not supported" even with --cgroup-manager=disabled. Each crun
// invocation is therefore started in its own mount namespace where that one mount is detached:
// crun then sees a plain cgroup v1 host. Nothing else changes: the namespace is a copy of the
// agent's, so bundles, overlay roots and nsfs files made before are all visible.
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include "agent/executor/executor.h"
#include "agent/executor/process_io.h"
#include "agent/executor/reaper.h"
#include "core/fd.h"
#include "core/file.h"
#include "oci/unpack/unpack.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

namespace coffer::agent {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kCrunMessageBytes = 512;

bool valid_id(const std::string& id) {
  if (id.empty() || id.size() > 128 || std::isalnum(static_cast<unsigned char>(id[0])) == 0) {
    return false;
  }
  return std::ranges::all_of(id, [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '.' || c == '-';
  });
}

std::unexpected<Error> bad_id(const std::string& what, const std::string& id) {
  return make_error("bad_spec", what + " id '" + printable_excerpt(id) +
                                    "' is not 1-128 of [A-Za-z0-9_.-] starting alphanumeric");
}

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

struct Pipe {
  Fd read, write;
};

Result<Pipe> make_pipe() {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return make_error("io_error", errno_text("pipe2"));
  return Pipe{Fd(p[0]), Fd(p[1])};
}

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (out.size() < 64 * 1024) out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) s.pop_back();
  return s;
}

// A listening Unix socket for crun's --console-socket, bound through /proc/self/fd/<dir> so that
// a long state_dir does not hit the 108-byte sun_path limit; crun connects to it relative to its
// working directory (the container's directory).
Result<Fd> listen_console_socket(const fs::path& dir, const std::string& name) {
  Fd dirfd(open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (dirfd.get() < 0) return make_error("io_error", errno_text("open " + dir.string()));
  std::string path = "/proc/self/fd/" + std::to_string(dirfd.get()) + "/" + name;
  Fd s(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (s.get() < 0 || path.size() >= sizeof addr.sun_path) {
    return make_error("io_error", "console socket: " + path);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(s.get(), 1) != 0) {
    return make_error("io_error", errno_text("console socket " + path));
  }
  return s;
}

// The pty master crun sent over the console socket (SCM_RIGHTS); crun has exited by now, so the
// connection is queued and the message is in the socket buffer.
Result<Fd> receive_console(const Fd& listener) {
  Fd conn(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
  if (conn.get() < 0) return make_error("runtime_failed", "crun did not send the TTY master");
  char data[256];
  iovec iov{.iov_base = data, .iov_len = sizeof data};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  if (recvmsg(conn.get(), &msg, MSG_CMSG_CLOEXEC) < 0) {
    return make_error("runtime_failed", errno_text("receiving the TTY master"));
  }
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
      return Fd(fd);
    }
  }
  return make_error("runtime_failed", "crun's console message carried no descriptor");
}

// Copies a tree keeping modes, owners and symlinks (the fallback when overlayfs is unavailable).
Status copy_tree(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(from, fs::directory_options::none, ec);
       !ec && it != fs::end(it); it.increment(ec)) {
    // Lexically: fs::relative would resolve symlinks (bin/sh -> bin/busybox).
    fs::path rel = it->path().lexically_relative(from);
    fs::path dst = to / rel;
    struct stat st {};
    if (lstat(it->path().c_str(), &st) != 0) return make_error("io_error", errno_text("lstat"));
    if (S_ISDIR(st.st_mode)) {
      fs::create_directory(dst, ec);
    } else if (S_ISLNK(st.st_mode)) {
      fs::copy_symlink(it->path(), dst, ec);
    } else if (S_ISREG(st.st_mode)) {
      fs::copy_file(it->path(), dst, ec);
    } else {
      continue;  // devices, fifos and sockets are not part of a runnable image root
    }
    if (ec) return make_error("io_error", "copying " + rel.string() + ": " + ec.message());
    (void)lchown(dst.c_str(), st.st_uid, st.st_gid);
    if (!S_ISLNK(st.st_mode)) (void)chmod(dst.c_str(), st.st_mode & 07777);
  }
  if (ec) return make_error("io_error", "copying the image root: " + ec.message());
  return ok();
}

std::optional<std::uint64_t> read_u64(const fs::path& file) {
  std::ifstream in(file);
  std::uint64_t v = 0;
  if (in >> v) return v;
  return std::nullopt;
}

// "key value" lines (memory.events, memory.oom_control, cpu.stat).
std::optional<std::uint64_t> read_keyed(const fs::path& file, const std::string& key) {
  std::ifstream in(file);
  std::string k;
  std::uint64_t v = 0;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return std::nullopt;
}

// Where the container's init sits: controller -> cgroup directory, from /proc/<pid>/cgroup.
struct CgroupDirs {
  std::optional<fs::path> memory, cpuacct, pids, unified;
};

CgroupDirs cgroup_dirs(pid_t pid) {
  CgroupDirs out;
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  std::string line;
  bool v2_root = fs::exists("/sys/fs/cgroup/cgroup.controllers");
  while (std::getline(in, line)) {
    auto a = line.find(':');
    auto b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string controllers = line.substr(a + 1, b - a - 1);
    std::string path = line.substr(b + 1);
    if (controllers.empty()) {
      if (v2_root) out.unified = fs::path("/sys/fs/cgroup") / path.substr(1);
      continue;
    }
    std::stringstream ss(controllers);
    std::string c;
    while (std::getline(ss, c, ',')) {
      fs::path dir = fs::path("/sys/fs/cgroup") / c / path.substr(1);
      if (c == "memory") out.memory = dir;
      if (c == "cpuacct") out.cpuacct = dir;
      if (c == "pids") out.pids = dir;
    }
  }
  return out;
}

bool oom_killed(const CgroupDirs& d) {
  if (d.memory) return read_keyed(*d.memory / "memory.oom_control", "oom_kill").value_or(0) > 0;
  if (d.unified) return read_keyed(*d.unified / "memory.events", "oom_kill").value_or(0) > 0;
  return false;
}

struct Container {
  std::mutex mu;
  ContainerState state;
  fs::path dir;
  fs::path rootfs;
  fs::path image_rootfs;  // read-only: user names resolve here, not in the writable root
  bool overlay = false;
  bool ready = false;  // create() finished
  bool started = false;
  bool removing = false;
  Json spec;
  CgroupDirs cgroups;
  std::shared_ptr<ProcessIo> init;
  std::map<std::string, std::shared_ptr<ProcessIo>> execs;
  int next_exec = 1;
};

struct Sandbox {
  fs::path dir;
  std::set<std::string> containers;
};

class CrunExecutor final : public ContainerExecutor {
 public:
  CrunExecutor(ExecutorOptions options, std::string crun)
      : options_(std::move(options)), crun_(std::move(crun)) {
    // Container cgroups are /coffer/<state dir hash>-<id>: two agents (or test runs) with
    // different state directories never share one.
    std::ostringstream token;
    token << std::hex << std::hash<std::string>{}(options_.state_dir.string());
    cgroup_prefix_ = "/coffer/" + token.str() + "-";
  }
  ~CrunExecutor() override;

  Status probe();

  Status create_sandbox(const std::string& sandbox_id) override;
  Result<fs::path> sandbox_netns(const std::string& sandbox_id) override;
  Status remove_sandbox(const std::string& sandbox_id) override;
  Result<ContainerState> create(const ContainerCreate& request) override;
  Status start(const std::string& id) override;
  Result<ExitStatus> wait(const std::string& id, const std::string& exec_id,
                          std::stop_token stop) override;
  Status signal(const std::string& id, const std::string& exec_id, int signo) override;
  Result<std::string> exec(const std::string& id, const ProcessSpec& process) override;
  Status remove(const std::string& id) override;
  Result<ContainerState> state(const std::string& id) override;
  std::vector<ContainerState> list() override;
  Result<ContainerStats> stats(const std::string& id) override;
  Status write_stdin(const std::string& id, const std::string& exec_id, ByteView data,
                     std::stop_token stop) override;
  Status close_stdin(const std::string& id, const std::string& exec_id) override;
  Result<Bytes> read_output(const std::string& id, const std::string& exec_id, OutputStream stream,
                            std::size_t max_bytes, std::stop_token stop) override;
  Status resize_tty(const std::string& id, const std::string& exec_id, std::uint16_t rows,
                    std::uint16_t cols) override;

 private:
  std::vector<std::string> crun_argv(std::initializer_list<std::string> args,
                                     const std::optional<fs::path>& log = std::nullopt) const;
  // Runs a short crun command; its output for the error message.
  Status run_crun(std::initializer_list<std::string> args, const std::string& what);
  Result<std::shared_ptr<Container>> find(const std::string& id);
  Result<std::shared_ptr<ProcessIo>> process(const std::string& id, const std::string& exec_id);
  Result<ContainerState> create_locked(const ContainerCreate& request, Container& c);
  Status prepare_rootfs(const fs::path& image_rootfs, Container& c);
  void teardown_rootfs(Container& c);
  static ContainerState snapshot(Container& c);
  // Starts crun (create or exec --detach) with the process's stdio and adopts the process it
  // leaves behind as our child.
  Result<std::shared_ptr<ProcessIo>> launch(Container& c, std::vector<std::string> argv,
                                            const fs::path& log, const fs::path& pid_file,
                                            const std::string& console_name, bool terminal,
                                            bool open_stdin, bool init);

  ExecutorOptions options_;
  std::string crun_;
  bool hide_unified_ = false;
  bool cgroups_ = true;
  std::string cgroup_prefix_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Container>> containers_;
  std::map<std::string, Sandbox> sandboxes_;
};

std::vector<std::string> CrunExecutor::crun_argv(std::initializer_list<std::string> args,
                                                 const std::optional<fs::path>& log) const {
  std::vector<std::string> argv{crun_, "--root", (options_.state_dir / "crun").string()};
  if (!cgroups_) argv.emplace_back("--cgroup-manager=disabled");
  if (log) argv.push_back("--log=file:" + log->string());
  argv.insert(argv.end(), args);
  return argv;
}

Status CrunExecutor::run_crun(std::initializer_list<std::string> args, const std::string& what) {
  auto out = COFFER_TRY(make_pipe());
  auto child = COFFER_TRY(spawn(SpawnOptions{.argv = crun_argv(args),
                                             .cwd = {},
                                             .stdin_fd = -1,
                                             .stdout_fd = out.write.get(),
                                             .stderr_fd = out.write.get(),
                                             .hide_unified_cgroup = hide_unified_}));
  out.write.reset();
  // Until crun exits, not until end of stream: with `create` the container's init inherits the
  // pipe and keeps it open.
  std::string text;
  fcntl(out.read.get(), F_SETFL, O_NONBLOCK);
  for (bool exited = false; !exited;) {
    pollfd pfds[2] = {{.fd = out.read.get(), .events = POLLIN, .revents = 0},
                      {.fd = child.pidfd(), .events = POLLIN, .revents = 0}};
    if (poll(pfds, 2, -1) < 0 && errno != EINTR) break;
    exited = pfds[1].revents != 0;
    if (pfds[0].revents != 0 || exited) {
      std::string more = read_all(out.read.get());
      if (text.size() < 64 * 1024) text += more;
      if (more.empty() && !exited && (pfds[0].revents & POLLHUP)) {
        exited = true;  // writer gone; crun's exit follows
      }
    }
  }
  int status = COFFER_TRY(child.wait());
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return ok();
  return make_error("runtime_failed",
                    what + " failed: crun: " + printable_excerpt(trim(text), kCrunMessageBytes));
}

Status CrunExecutor::probe() {
  // crun 1.8 and the hybrid check: see the top of this file.
  struct statfs unified {
  }, root{};
  hide_unified_ = statfs("/sys/fs/cgroup/unified", &unified) == 0 &&
                  unified.f_type == CGROUP2_SUPER_MAGIC && statfs("/sys/fs/cgroup", &root) == 0 &&
                  root.f_type != CGROUP2_SUPER_MAGIC;
  // A container whose init is an empty executable file: `crun create` sets up every namespace,
  // mount and cgroup and then waits for `start`, which never comes.
  fs::path dir = options_.state_dir / "probe";
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir / "rootfs", ec);
  if (ec) return make_error("io_error", "creating " + dir.string() + ": " + ec.message());
  { std::ofstream(dir / "rootfs/coffer-probe").put('\0'); }
  fs::permissions(dir / "rootfs/coffer-probe", fs::perms(0755), ec);
  oci::ImageConfig image;
  image.json = {{"config", {{"Entrypoint", {"/coffer-probe"}}}}};
  auto spec = COFFER_TRY(build_oci_spec(image, dir / "rootfs", {}));
  spec["linux"]["cgroupsPath"] = cgroup_prefix_ + "probe";
  COFFER_TRY_STATUS(write_file_atomic(dir / "config.json", as_bytes(spec.dump())));
  std::string first_error;
  for (bool with_cgroups : {true, false}) {
    cgroups_ = with_cgroups;
    if (!with_cgroups) {
      spec["linux"].erase("cgroupsPath");
      COFFER_TRY_STATUS(write_file_atomic(dir / "config.json", as_bytes(spec.dump())));
    }
    auto created = run_crun({"create", "--bundle", dir.string(), "coffer-probe"}, "probing crun");
    (void)run_crun({"delete", "--force", "coffer-probe"}, "probe cleanup");
    if (created) {
      fs::remove_all(dir, ec);
      return ok();
    }
    if (first_error.empty()) first_error = created.error().message;
  }
  fs::remove_all(dir, ec);
  return make_error("runtime_failed", "crun cannot create a container here: " + first_error);
}

CrunExecutor::~CrunExecutor() {
  try {
    std::vector<std::string> ids, sandboxes;
    {
      std::lock_guard lock(mu_);
      for (const auto& [id, c] : containers_) ids.push_back(id);
      for (const auto& [id, s] : sandboxes_) sandboxes.push_back(id);
    }
    for (const auto& id : ids) (void)remove(id);
    for (const auto& id : sandboxes) (void)remove_sandbox(id);
  } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor cannot report; best effort
  }
}

// ---- sandboxes ----

Status CrunExecutor::create_sandbox(const std::string& sandbox_id) {
  if (!valid_id(sandbox_id)) return bad_id("sandbox", sandbox_id);
  fs::path dir = options_.state_dir / "sandboxes" / sandbox_id;
  {
    std::lock_guard lock(mu_);
    if (sandboxes_.contains(sandbox_id)) {
      return make_error("sandbox_exists", "sandbox '" + sandbox_id + "' exists");
    }
    sandboxes_[sandbox_id] = Sandbox{.dir = dir, .containers = {}};
  }
  auto fail = [&](Error e) -> Status {
    for (const char* ns : {"net", "ipc", "uts"}) (void)umount2((dir / ns).c_str(), MNT_DETACH);
    std::error_code ec;
    fs::remove_all(dir, ec);
    std::lock_guard lock(mu_);
    sandboxes_.erase(sandbox_id);
    return std::unexpected(std::move(e));
  };
  std::error_code ec;
  fs::create_directories(dir, ec);
  for (const char* ns : {"net", "ipc", "uts"}) std::ofstream(dir / ns).flush();
  if (ec) return fail(Error{"io_error", "creating " + dir.string() + ": " + ec.message()});

  // A child unshares the three namespaces, brings loopback up, sets the hostname and binds its
  // namespace files onto dir/{net,ipc,uts} (it shares the agent's mount namespace), then exits:
  // the bind mounts keep the namespaces alive. Only syscalls after fork (threaded parent).
  std::string net = (dir / "net").string(), ipc = (dir / "ipc").string(),
              uts = (dir / "uts").string();
  std::string hostname = sandbox_id.substr(0, 63);
  pid_t pid = -1;
  Child child;
  {
    auto section = spawn_section();
    pid = fork();
    if (pid == 0) {
      if (unshare(CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) != 0) _exit(10);
      if (sethostname(hostname.data(), hostname.size()) != 0) _exit(11);
      int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      ifreq ifr{};
      std::memcpy(ifr.ifr_name, "lo", 3);
      if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) != 0) _exit(12);
      ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
      if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) _exit(13);
      if (mount("/proc/self/ns/net", net.c_str(), nullptr, MS_BIND, nullptr) != 0) _exit(14);
      if (mount("/proc/self/ns/ipc", ipc.c_str(), nullptr, MS_BIND, nullptr) != 0) _exit(15);
      if (mount("/proc/self/ns/uts", uts.c_str(), nullptr, MS_BIND, nullptr) != 0) _exit(16);
      _exit(0);
    }
    if (pid < 0) return fail(Error{"io_error", errno_text("fork")});
    register_child(pid);
    auto pidfd = open_pidfd(pid);
    if (!pidfd) return fail(pidfd.error());
    child = Child(pid, *pidfd);
  }
  auto status = child.wait();
  if (!status) return fail(status.error());
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    static const std::map<int, std::string> kStep = {
        {10, "unshare(net, ipc, uts)"}, {11, "sethostname"},       {12, "reading lo's flags"},
        {13, "bringing lo up"},         {14, "binding the netns"}, {15, "binding the ipc ns"},
        {16, "binding the uts ns"}};
    int code = WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
    auto it = kStep.find(code);
    return fail(Error{"runtime_failed", "creating the sandbox's namespaces failed at " +
                                            (it == kStep.end() ? "fork" : it->second)});
  }
  return ok();
}

Result<fs::path> CrunExecutor::sandbox_netns(const std::string& sandbox_id) {
  std::lock_guard lock(mu_);
  auto it = sandboxes_.find(sandbox_id);
  if (it == sandboxes_.end()) {
    return make_error("sandbox_not_found", "no sandbox '" + printable_excerpt(sandbox_id) + "'");
  }
  return it->second.dir / "net";
}

Status CrunExecutor::remove_sandbox(const std::string& sandbox_id) {
  fs::path dir;
  {
    std::lock_guard lock(mu_);
    auto it = sandboxes_.find(sandbox_id);
    if (it == sandboxes_.end()) {
      return make_error("sandbox_not_found", "no sandbox '" + printable_excerpt(sandbox_id) + "'");
    }
    if (!it->second.containers.empty()) {
      return make_error("bad_state", "sandbox '" + sandbox_id + "' still has " +
                                         std::to_string(it->second.containers.size()) +
                                         " container(s): remove them first");
    }
    dir = it->second.dir;
    sandboxes_.erase(it);
  }
  for (const char* ns : {"net", "ipc", "uts"}) (void)umount2((dir / ns).c_str(), MNT_DETACH);
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) return make_error("io_error", "removing " + dir.string() + ": " + ec.message());
  return ok();
}

// ---- containers ----

Result<std::shared_ptr<Container>> CrunExecutor::find(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = containers_.find(id);
  if (it == containers_.end() || !it->second->ready) {
    return make_error("container_not_found", "no container '" + printable_excerpt(id) + "'");
  }
  return it->second;
}

Result<std::shared_ptr<ProcessIo>> CrunExecutor::process(const std::string& id,
                                                         const std::string& exec_id) {
  auto c = COFFER_TRY(find(id));
  std::lock_guard lock(c->mu);
  if (!c->init) return make_error("container_not_found", "container '" + id + "' was removed");
  if (exec_id.empty()) return c->init;
  auto it = c->execs.find(exec_id);
  if (it == c->execs.end()) {
    return make_error("process_not_found",
                      "container '" + id + "' has no process '" + printable_excerpt(exec_id) + "'");
  }
  return it->second;
}

ContainerState CrunExecutor::snapshot(Container& c) {
  ContainerState s = c.state;
  auto exit = c.init ? c.init->exit_status() : std::nullopt;
  if (exit) {
    s.status = ContainerStatus::kStopped;
    s.exit = exit;
    s.pid = 0;
  } else {
    s.status = c.started ? ContainerStatus::kRunning : ContainerStatus::kCreated;
  }
  return s;
}

Status CrunExecutor::prepare_rootfs(const fs::path& image_rootfs, Container& c) {
  std::error_code ec;
  if (!image_rootfs.is_absolute() || !fs::is_directory(image_rootfs, ec)) {
    return make_error("bad_spec", "image rootfs '" + printable_excerpt(image_rootfs.string()) +
                                      "' is not an absolute path to a directory");
  }
  c.rootfs = c.dir / "rootfs";
  for (const char* d : {"rootfs", "upper", "work"}) fs::create_directories(c.dir / d, ec);
  if (ec) return make_error("io_error", "creating " + c.dir.string() + ": " + ec.message());
  // overlayfs: the image root is the read-only lower layer, writes land in upper/. Its option
  // string cannot carry ',' ':' or '\' in a path: such paths take the copy.
  std::string lower = image_rootfs.string(), upper = (c.dir / "upper").string(),
              work = (c.dir / "work").string();
  bool plain = std::ranges::none_of(lower + upper + work,
                                    [](char ch) { return ch == ',' || ch == ':' || ch == '\\'; });
  if (plain) {
    std::string opts = "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work;
    if (mount("overlay", c.rootfs.c_str(), "overlay", 0, opts.c_str()) == 0) {
      c.overlay = true;
      return ok();
    }
  }
  return copy_tree(image_rootfs, c.rootfs);
}

void CrunExecutor::teardown_rootfs(Container& c) {
  if (c.overlay) (void)umount2(c.rootfs.c_str(), MNT_DETACH);
  c.overlay = false;
  std::error_code ec;
  fs::remove_all(c.dir, ec);
}

Result<std::shared_ptr<ProcessIo>> CrunExecutor::launch(Container& c, std::vector<std::string> argv,
                                                        const fs::path& log,
                                                        const fs::path& pid_file,
                                                        const std::string& console_name,
                                                        bool terminal, bool open_stdin, bool init) {
  Fd console;
  if (terminal) console = COFFER_TRY(listen_console_socket(c.dir, console_name));
  Pipe in, out, err;
  if (!terminal) {
    if (open_stdin) in = COFFER_TRY(make_pipe());
    out = COFFER_TRY(make_pipe());
    err = COFFER_TRY(make_pipe());
  }
  // Held from before crun starts until the process crun leaves behind is registered: that
  // process becomes our child (we are a subreaper) when crun exits, and the reaper must not
  // take it for an orphan.
  auto section = spawn_section();
  auto crun = COFFER_TRY(spawn(SpawnOptions{.argv = std::move(argv),
                                            .cwd = c.dir,
                                            .stdin_fd = in.read.get(),
                                            .stdout_fd = out.write.get(),
                                            .stderr_fd = err.write.get(),
                                            .hide_unified_cgroup = hide_unified_},
                               true));
  in.read.reset();
  out.write.reset();
  err.write.reset();
  int status = COFFER_TRY(crun.wait());
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    // crun's error goes to its log and to its stderr, which is the process's stderr pipe.
    std::string message = trim(read_text_file(log, 64 * 1024).value_or(""));
    if (message.empty() && err.read.get() >= 0) {
      fcntl(err.read.get(), F_SETFL, O_NONBLOCK);
      message = trim(read_all(err.read.get()));
    }
    return make_error("runtime_failed",
                      std::string(init ? "crun create" : "crun exec") +
                          " failed: " + printable_excerpt(message, kCrunMessageBytes));
  }
  auto pid_text = read_text_file(pid_file, 64);
  pid_t pid = 0;
  if (pid_text) pid = static_cast<pid_t>(std::strtol(pid_text->c_str(), nullptr, 10));
  if (pid <= 0) return make_error("runtime_failed", "crun left no pid file");
  register_child(pid);
  auto pidfd = open_pidfd(pid);
  if (!pidfd) {
    unregister_child(pid);
    return std::unexpected(pidfd.error());
  }
  section.unlock();

  ProcessFds fds{.pid = pid, .pidfd = *pidfd, .tty = terminal};
  if (terminal) {
    auto master = receive_console(console);
    if (!master) {
      (void)syscall(SYS_pidfd_send_signal, *pidfd, SIGKILL, nullptr, 0);
      Child reap(pid, *pidfd);
      (void)reap.wait();
      return std::unexpected(master.error());
    }
    fds.stdout_fd = master->release();
    fds.stdin_fd = fds.stdout_fd;
  } else {
    fds.stdin_fd = in.write.release();
    fds.stdout_fd = out.read.release();
    fds.stderr_fd = err.read.release();
  }
  std::function<void(ExitStatus&)> on_exit;
  if (init) {
    c.cgroups = cgroup_dirs(pid);
    on_exit = [dirs = c.cgroups](ExitStatus& st) {
      // OOM: the memory cgroup's oom_kill counter (v1 memory.oom_control, v2 memory.events).
      st.oom_killed = oom_killed(dirs);
    };
  }
  return std::make_shared<ProcessIo>(fds, std::move(on_exit));
}

Result<ContainerState> CrunExecutor::create(const ContainerCreate& request) {
  if (!valid_id(request.id)) return bad_id("container", request.id);
  auto c = std::make_shared<Container>();
  {
    std::lock_guard lock(mu_);
    auto sb = sandboxes_.find(request.sandbox_id);
    if (sb == sandboxes_.end()) {
      return make_error("sandbox_not_found",
                        "no sandbox '" + printable_excerpt(request.sandbox_id) + "'");
    }
    if (containers_.contains(request.id)) {
      return make_error("container_exists", "container '" + request.id + "' exists");
    }
    containers_[request.id] = c;
    sb->second.containers.insert(request.id);
  }
  std::lock_guard clock(c->mu);
  auto result = create_locked(request, *c);
  std::lock_guard lock(mu_);
  if (!result) {
    if (c->init) {
      (void)c->init->kill(SIGKILL);
      c->init.reset();
    }
    (void)run_crun({"delete", "--force", request.id}, "cleanup");
    teardown_rootfs(*c);
    containers_.erase(request.id);
    if (auto sb = sandboxes_.find(request.sandbox_id); sb != sandboxes_.end()) {
      sb->second.containers.erase(request.id);
    }
    return result;
  }
  c->ready = true;
  return result;
}

Result<ContainerState> CrunExecutor::create_locked(const ContainerCreate& request, Container& c) {
  c.dir = options_.state_dir / "containers" / request.id;
  c.image_rootfs = request.image_rootfs;
  c.state = ContainerState{.id = request.id,
                           .sandbox_id = request.sandbox_id,
                           .image = request.image,
                           .status = ContainerStatus::kCreated,
                           .pid = 0,
                           .exit = std::nullopt,
                           .created = std::chrono::system_clock::now()};
  if (request.overrides.memory_limit_bytes && !cgroups_) {
    return make_error("bad_spec",
                      "a memory limit needs cgroups, and crun cannot use cgroups on this host");
  }
  std::error_code ec;
  if (fs::exists(c.dir, ec)) {
    // Left over by an agent that did not remove it (crash): not ours to reuse.
    (void)umount2((c.dir / "rootfs").c_str(), MNT_DETACH);
    fs::remove_all(c.dir, ec);
  }
  fs::create_directories(c.dir, ec);
  if (ec) return make_error("io_error", "creating " + c.dir.string() + ": " + ec.message());
  // The spec first (cheap, and refuses bad overrides before anything is mounted); user names
  // resolve in the image's root, which is what the container's root shows.
  auto spec =
      COFFER_TRY(build_oci_spec(request.image_config, request.image_rootfs, request.overrides));
  COFFER_TRY_STATUS(prepare_rootfs(request.image_rootfs, c));
  spec["root"] = {{"path", c.rootfs.string()}, {"readonly", false}};
  fs::path sb_dir = options_.state_dir / "sandboxes" / request.sandbox_id;
  Json namespaces = Json::array();
  for (const auto& ns : spec["linux"]["namespaces"]) {
    std::string type = ns.value("type", "");
    if (type == "network") {
      namespaces.push_back({{"type", type}, {"path", (sb_dir / "net").string()}});
    } else if (type == "ipc") {
      namespaces.push_back({{"type", type}, {"path", (sb_dir / "ipc").string()}});
    } else if (type == "uts") {
      namespaces.push_back({{"type", type}, {"path", (sb_dir / "uts").string()}});
    } else {
      namespaces.push_back(ns);
    }
  }
  spec["linux"]["namespaces"] = namespaces;
  spec.erase("hostname");  // the sandbox's UTS namespace has its hostname
  if (cgroups_) spec["linux"]["cgroupsPath"] = cgroup_prefix_ + request.id;
  c.spec = spec;
  COFFER_TRY_STATUS(write_file_atomic(c.dir / "config.json", as_bytes(spec.dump())));

  bool terminal = request.overrides.terminal;
  std::vector<std::string> argv =
      crun_argv({"create", "--bundle", c.dir.string(), "--pid-file", (c.dir / "init.pid").string()},
                c.dir / "crun-create.log");
  if (terminal) argv.emplace_back("--console-socket=console.sock");
  argv.push_back(request.id);
  c.init = COFFER_TRY(launch(c, std::move(argv), c.dir / "crun-create.log", c.dir / "init.pid",
                             "console.sock", terminal, request.overrides.open_stdin, true));
  c.state.pid = c.init->pid();
  return snapshot(c);
}

Status CrunExecutor::start(const std::string& id) {
  auto c = COFFER_TRY(find(id));
  {
    std::lock_guard lock(c->mu);
    if (c->removing)
      return make_error("container_not_found", "container '" + id + "' is being removed");
    if (c->started) return make_error("bad_state", "container '" + id + "' was already started");
    if (c->init->exit_status()) {
      return make_error("bad_state", "container '" + id + "' has stopped before it was started");
    }
    c->started = true;
  }
  auto st = run_crun({"start", id}, "starting container '" + id + "'");
  if (!st) {
    std::lock_guard lock(c->mu);
    c->started = false;
  }
  return st;
}

Result<ExitStatus> CrunExecutor::wait(const std::string& id, const std::string& exec_id,
                                      std::stop_token stop) {
  auto p = COFFER_TRY(process(id, exec_id));
  return p->wait(std::move(stop));
}

Status CrunExecutor::signal(const std::string& id, const std::string& exec_id, int signo) {
  if (signo <= 0 || signo > SIGRTMAX) {
    return make_error("bad_spec", "signal " + std::to_string(signo) + " is not a signal");
  }
  auto p = COFFER_TRY(process(id, exec_id));
  return p->kill(signo);
}

Result<std::string> CrunExecutor::exec(const std::string& id, const ProcessSpec& spec) {
  if (spec.args.empty()) return make_error("bad_spec", "exec needs a command");
  if (!spec.cwd.empty() && !spec.cwd.starts_with('/')) {
    return make_error(
        "bad_spec", "exec working directory '" + printable_excerpt(spec.cwd) + "' is not absolute");
  }
  auto c = COFFER_TRY(find(id));
  std::lock_guard lock(c->mu);
  if (c->removing || !c->started || c->init->exit_status()) {
    return make_error("bad_state", "container '" + id + "' is not running");
  }
  Json process = c->spec["process"];
  process["args"] = spec.args;
  process["terminal"] = spec.terminal;
  if (!spec.cwd.empty()) process["cwd"] = spec.cwd;
  if (!spec.env.empty()) {
    std::vector<std::string> env = process["env"].get<std::vector<std::string>>();
    for (const auto& kv : spec.env) {
      auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) {
        return make_error("bad_spec",
                          "environment entry '" + printable_excerpt(kv) + "' is not KEY=VALUE");
      }
      std::erase_if(
          env, [&](const std::string& e) { return e.substr(0, e.find('=')) == kv.substr(0, eq); });
      env.push_back(kv);
    }
    process["env"] = env;
  }
  if (spec.user) {
    // The same resolution as the init's user, in the image's root: the container can rewrite
    // its own /etc/passwd, and must not choose what uid a name means for a later exec.
    oci::ImageConfig probe;
    probe.json = {{"config", {{"User", *spec.user}}}};
    auto resolved = oci::unpack::runtime_config(probe, c->image_rootfs);
    if (!resolved || spec.user->empty()) {
      return make_error("bad_spec", resolved ? "exec user is empty" : resolved.error().message);
    }
    process["user"] = (*resolved)["process"]["user"];
  }
  std::string exec_id = "exec-" + std::to_string(c->next_exec++);
  fs::path process_file = c->dir / (exec_id + ".json");
  COFFER_TRY_STATUS(write_file_atomic(process_file, as_bytes(process.dump())));
  fs::path log = c->dir / (exec_id + ".log");
  fs::path pid_file = c->dir / (exec_id + ".pid");
  std::vector<std::string> argv = crun_argv(
      {"exec", "--detach", "--pid-file", pid_file.string(), "--process", process_file.string()},
      log);
  std::string console = exec_id + ".sock";
  if (spec.terminal) argv.push_back("--console-socket=" + console);
  argv.push_back(id);
  auto io = COFFER_TRY(
      launch(*c, std::move(argv), log, pid_file, console, spec.terminal, spec.open_stdin, false));
  c->execs[exec_id] = std::move(io);
  return exec_id;
}

Status CrunExecutor::remove(const std::string& id) {
  auto c = COFFER_TRY(find(id));
  std::vector<std::shared_ptr<ProcessIo>> procs;
  {
    std::lock_guard lock(c->mu);
    if (c->removing)
      return make_error("container_not_found", "container '" + id + "' is being removed");
    c->removing = true;
    procs.push_back(c->init);
    for (auto& [eid, p] : c->execs) procs.push_back(p);
  }
  // SIGKILL to the init ends the container's PID namespace, exec'd processes included; they are
  // signalled too in case their exit is still pending. The ProcessIo destructors reap them.
  for (auto& p : procs) (void)p->kill(SIGKILL);
  for (auto& p : procs) (void)p->wait_exited(std::chrono::seconds(10));
  Status result = ok();
  {
    std::lock_guard lock(c->mu);
    for (auto& p : procs) p->shutdown();
    procs.clear();
    c->execs.clear();
    c->init.reset();  // joins the pump thread and reaps the init
  }
  auto deleted = run_crun({"delete", "--force", id}, "deleting container '" + id + "'");
  if (!deleted) result = deleted;
  {
    std::lock_guard lock(c->mu);
    teardown_rootfs(*c);
  }
  std::lock_guard lock(mu_);
  if (auto sb = sandboxes_.find(c->state.sandbox_id); sb != sandboxes_.end()) {
    sb->second.containers.erase(id);
  }
  containers_.erase(id);
  return result;
}

Result<ContainerState> CrunExecutor::state(const std::string& id) {
  auto c = COFFER_TRY(find(id));
  std::lock_guard lock(c->mu);
  if (!c->init) return make_error("container_not_found", "container '" + id + "' is being removed");
  return snapshot(*c);
}

std::vector<ContainerState> CrunExecutor::list() {
  std::vector<std::shared_ptr<Container>> all;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, c] : containers_) {
      if (c->ready) all.push_back(c);
    }
  }
  std::vector<ContainerState> out;
  for (auto& c : all) {
    std::lock_guard lock(c->mu);
    if (c->init) out.push_back(snapshot(*c));
  }
  return out;
}

Result<ContainerStats> CrunExecutor::stats(const std::string& id) {
  auto c = COFFER_TRY(find(id));
  std::lock_guard lock(c->mu);
  if (!c->init) return make_error("container_not_found", "container '" + id + "' is being removed");
  ContainerStats s;
  const CgroupDirs& d = c->cgroups;
  // cgroups when crun could use them (the whole container); else the init's /proc entries.
  if (d.memory || d.unified) {
    if (d.memory) {
      s.memory_bytes = read_u64(*d.memory / "memory.usage_in_bytes").value_or(0);
    } else {
      s.memory_bytes = read_u64(*d.unified / "memory.current").value_or(0);
    }
    if (d.cpuacct) {
      s.cpu_usage_ns = read_u64(*d.cpuacct / "cpuacct.usage").value_or(0);
    } else if (d.unified) {
      s.cpu_usage_ns = read_keyed(*d.unified / "cpu.stat", "usage_usec").value_or(0) * 1000;
    }
    if (d.pids) {
      s.pids = read_u64(*d.pids / "pids.current").value_or(0);
    } else if (d.unified) {
      s.pids = read_u64(*d.unified / "pids.current").value_or(0);
    }
    return s;
  }
  if (c->init->exit_status()) return s;
  std::string proc = "/proc/" + std::to_string(c->init->pid());
  std::ifstream statm(proc + "/statm");
  std::uint64_t size = 0, resident = 0;
  if (statm >> size >> resident) {
    s.memory_bytes = resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  }
  std::ifstream stat(proc + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  if (auto paren = text.rfind(')'); paren != std::string::npos) {
    std::istringstream fields(text.substr(paren + 2));
    std::vector<std::string> f((std::istream_iterator<std::string>(fields)),
                               std::istream_iterator<std::string>());
    if (f.size() > 12) {
      std::uint64_t ticks = std::stoull(f[11]) + std::stoull(f[12]);  // utime + stime
      s.cpu_usage_ns = ticks * 1'000'000'000ULL / static_cast<std::uint64_t>(sysconf(_SC_CLK_TCK));
    }
  }
  s.pids = 1;
  return s;
}

Status CrunExecutor::write_stdin(const std::string& id, const std::string& exec_id, ByteView data,
                                 std::stop_token stop) {
  auto p = COFFER_TRY(process(id, exec_id));
  return p->write_stdin(data, stop);
}

Status CrunExecutor::close_stdin(const std::string& id, const std::string& exec_id) {
  auto p = COFFER_TRY(process(id, exec_id));
  return p->close_stdin();
}

Result<Bytes> CrunExecutor::read_output(const std::string& id, const std::string& exec_id,
                                        OutputStream stream, std::size_t max_bytes,
                                        std::stop_token stop) {
  auto p = COFFER_TRY(process(id, exec_id));
  return p->read(stream, max_bytes, std::move(stop));
}

Status CrunExecutor::resize_tty(const std::string& id, const std::string& exec_id,
                                std::uint16_t rows, std::uint16_t cols) {
  auto p = COFFER_TRY(process(id, exec_id));
  return p->resize(rows, cols);
}

Result<std::string> find_runtime(const fs::path& runtime) {
  auto usable = [](const fs::path& p) { return access(p.c_str(), X_OK) == 0; };
  if (runtime.is_absolute()) {
    if (usable(runtime)) return runtime.string();
  } else if (runtime.has_filename() && !runtime.has_parent_path()) {
    const char* path = std::getenv("PATH");
    std::stringstream ss(path ? path : "/usr/local/bin:/usr/bin:/bin");
    std::string dir;
    while (std::getline(ss, dir, ':')) {
      if (!dir.empty() && usable(fs::path(dir) / runtime))
        return (fs::path(dir) / runtime).string();
    }
  }
  return make_error("runtime_not_found", "container runtime '" +
                                             printable_excerpt(runtime.string()) +
                                             "' is not an executable file (install crun)");
}

}  // namespace

Result<std::unique_ptr<ContainerExecutor>> make_crun_executor(const ExecutorOptions& options) {
  auto crun = COFFER_TRY(find_runtime(options.runtime));
  if (!options.state_dir.is_absolute()) {
    return make_error("bad_spec", "the executor's state directory must be an absolute path");
  }
  std::error_code ec;
  for (const char* d : {"crun", "containers", "sandboxes"}) {
    fs::create_directories(options.state_dir / d, ec);
  }
  if (ec)
    return make_error("io_error", "creating " + options.state_dir.string() + ": " + ec.message());
  fs::permissions(options.state_dir, fs::perms::owner_all, ec);
  // Container inits and exec'd processes are left behind by crun: as a child subreaper they
  // become our children, so their exit status is ours to collect.
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    return make_error("runtime_failed", errno_text("PR_SET_CHILD_SUBREAPER"));
  }
  // A container that exits while we write to its stdin must not kill the agent.
  std::signal(SIGPIPE, SIG_IGN);
  auto executor = std::make_unique<CrunExecutor>(options, crun);
  COFFER_TRY_STATUS(executor->probe());
  return std::unique_ptr<ContainerExecutor>(std::move(executor));
}

}  // namespace coffer::agent
