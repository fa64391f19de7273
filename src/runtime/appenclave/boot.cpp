#include "runtime/appenclave/boot.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grp.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <regex>

#include "coffer/agent/v1/agent.pb.h"
#include "core/file.h"
#include "crypto/kdf.h"
#include "net/ttrpc/client.h"
#include "runtime/efs/filesystem.h"
#include "runtime/efs/fuse_mount.h"

namespace coffer::runtime::appenclave {
namespace fs = std::filesystem;
namespace {

constexpr int kBootFailed = 125;
constexpr std::size_t kMaxArgs = 4096;
constexpr std::size_t kMaxEnv = 4096;
constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr std::array kForwarded = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

void write_status(int fd, const std::string& line) {
  if (fd < 0) return;
  std::string text = line + "\n";
  std::string_view rest(text);
  while (!rest.empty()) {
    const ssize_t n = ::write(fd, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
}

// One line, printable, without newlines (it is the status protocol's last field).
std::string one_line(std::string_view text) {
  std::string out = printable_excerpt(text, 900);
  std::ranges::replace(out, '\n', ' ');
  return out;
}

Result<std::vector<std::string>> string_array(const Json& obj, const char* name, std::size_t max,
                                              bool required) {
  auto it = obj.find(name);
  if (it == obj.end()) {
    if (required) return make_error("bad_config", std::string("process.") + name + " is missing");
    return std::vector<std::string>{};
  }
  if (!it->is_array() || it->size() > max) {
    return make_error("bad_config",
                      std::string("process.") + name + " must be an array of strings");
  }
  std::vector<std::string> out;
  for (const auto& v : *it) {
    if (!v.is_string()) {
      return make_error("bad_config", std::string("process.") + name + " must hold strings");
    }
    auto s = v.get<std::string>();
    if (s.find('\0') != std::string::npos) {
      return make_error("bad_config", std::string("process.") + name + " holds a NUL byte");
    }
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::uint32_t> id_of(const Json& user, const char* name) {
  auto it = user.find(name);
  if (it == user.end()) return 0U;
  if (!it->is_number_unsigned() || it->get<std::uint64_t>() > 0xfffffffeULL) {
    return make_error("bad_config", std::string("process.user.") + name + " must be an id");
  }
  return static_cast<std::uint32_t>(it->get<std::uint64_t>());
}

// ---- the FUSE server and the overlay

// Waits until `mountpoint` is a mount of its own (its device differs from its parent's), or the
// server exits. /proc/self/mountinfo signals every mount table change (POLLPRI).
Status wait_for_mount(const fs::path& mountpoint, pid_t server) {
  const int mi = ::open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
  if (mi < 0) return make_error("mount_failed", errno_text("opening /proc/self/mountinfo"));
  struct stat parent {};
  if (::stat(mountpoint.parent_path().c_str(), &parent) != 0) {
    ::close(mi);
    return make_error("mount_failed", errno_text("stat " + mountpoint.parent_path().string()));
  }
  for (int round = 0; round < 600; ++round) {
    struct stat st {};
    if (::stat(mountpoint.c_str(), &st) == 0 && st.st_dev != parent.st_dev) {
      ::close(mi);
      return ok();
    }
    int status = 0;
    if (::waitpid(server, &status, WNOHANG) == server) {
      ::close(mi);
      return make_error("mount_failed", "the filesystem server exited before mounting");
    }
    char buf[4096];
    while (::read(mi, buf, sizeof buf) > 0) {
    }
    pollfd pfd{mi, POLLPRI, 0};
    (void)::poll(&pfd, 1, 100);  // a mount table change, or look at the server again
  }
  ::close(mi);
  return make_error("mount_failed", "the encrypted filesystem was not mounted within 60 s");
}

// The workload's process: its own mount namespace pivoted into the container root, its user,
// its environment. Errors go to `err_fd` as errno and a step; exec success closes it.
[[noreturn]] void workload_fail(int err_fd, int step) {
  const std::array<int, 2> e = {step, errno};
  (void)!::write(err_fd, e.data(), sizeof e);
  ::_exit(127);
}

[[noreturn]] void workload_main(const fs::path& root, const WorkloadSpec& w, int err_fd) {
  auto fail = [err_fd](int step) { workload_fail(err_fd, step); };
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig : kForwarded) ::signal(sig, SIG_DFL);
  if (::unshare(CLONE_NEWNS) != 0) fail(1);
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) fail(1);
  // /proc and /dev of the enclave into the container root.
  for (const char* d : {"proc", "dev"}) {
    const fs::path p = root / d;
    if (::mkdir(p.c_str(), 0755) != 0 && errno != EEXIST) fail(2);
  }
  if (::mount("proc", (root / "proc").c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) !=
      0) {
    fail(2);
  }
  if (::mount("/dev", (root / "dev").c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) fail(2);
  if (::chdir(root.c_str()) != 0 || ::syscall(SYS_pivot_root, ".", ".") != 0 ||
      ::umount2(".", MNT_DETACH) != 0 || ::chdir("/") != 0) {
    fail(3);
  }
  if (::chdir(w.cwd.c_str()) != 0) fail(4);
  std::vector<gid_t> groups(w.additional_gids.begin(), w.additional_gids.end());
  if (::setgroups(groups.size(), groups.data()) != 0 && errno != EPERM) fail(5);
  if (::setgid(w.gid) != 0 || ::setuid(w.uid) != 0) fail(5);
  // PATH lookup in the container's environment and root.
  std::string path = kDefaultPath;
  for (const auto& e : w.env) {
    if (e.starts_with("PATH=")) path = e.substr(5);
  }
  std::string exe = w.args[0];
  if (exe.find('/') == std::string::npos) {
    std::string_view rest(path);
    std::string found;
    while (true) {
      const auto colon = rest.find(':');
      std::string dir(rest.substr(0, colon));
      if (dir.empty()) dir = ".";
      const std::string candidate = dir + "/" + exe;
      if (::access(candidate.c_str(), X_OK) == 0) {
        found = candidate;
        break;
      }
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
    if (found.empty()) {
      errno = ENOENT;
      fail(6);
    }
    exe = found;
  }
  std::vector<char*> argv;
  for (const auto& a : w.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : w.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  ::execve(exe.c_str(), argv.data(), envp.data());
  workload_fail(err_fd, 6);
}

constexpr std::array<const char*, 7> kWorkloadSteps = {"",
                                                       "making its mount namespace",
                                                       "mounting /proc and /dev",
                                                       "pivoting into the container root",
                                                       "changing to the working directory",
                                                       "setting the user",
                                                       "executing the entrypoint"};

struct Mounts {
  fs::path efs, upper, root;
  pid_t server = -1;
  void undo() {
    if (!root.empty()) (void)::umount2(root.c_str(), MNT_DETACH);
    if (!upper.empty()) (void)::umount2(upper.c_str(), MNT_DETACH);
    if (server > 0) {
      // Unmounting ends the server's loop; it commits and exits.
      // Still busy (a process of the workload left behind): the server's own SIGTERM handling
      // ends its loop; the mount goes lazily.
      if (::umount2(efs.c_str(), 0) != 0) {
        (void)::kill(server, SIGTERM);
        (void)::umount2(efs.c_str(), MNT_DETACH);
      }
      int status = 0;
      while (::waitpid(server, &status, 0) < 0 && errno == EINTR) {
      }
      server = -1;
    }
  }
};

Status mount_bundle(const BootOptions& o, const BundleKey& key, Mounts& m) {
  const fs::path efs_dir = o.storage / o.bundle_id / "efs";
  efs::OpenOptions oo;
  oo.min_generation = key.generation;
  auto filesystem = COFFER_TRY(efs::Filesystem::open(efs_dir, key.key, oo));
  std::error_code ec;
  m.efs = o.work_dir / "efs";
  m.upper = o.work_dir / "upper";
  m.root = o.work_dir / "root";
  for (const auto& d : {o.work_dir, m.efs, m.upper}) {
    fs::create_directories(d, ec);
    if (ec) return make_error("mount_failed", "creating " + d.string() + ": " + ec.message());
  }
  const pid_t server = ::fork();
  if (server < 0) return make_error("mount_failed", errno_text("fork"));
  if (server == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    efs::MountOptions mo;
    mo.foreground = true;
    mo.allow_other = true;  // the workload's user is not the mounter
    auto served = efs::serve(std::move(filesystem), m.efs, mo);
    if (!served) {
      std::string msg =
          "coffer-app-enclave: filesystem server: " + served.error().to_string() + "\n";
      (void)!::write(2, msg.data(), msg.size());
    }
    ::_exit(served ? 0 : 1);
  }
  filesystem.reset();
  m.server = server;
  COFFER_TRY_STATUS(wait_for_mount(m.efs, server));
  if (::mount("tmpfs", m.upper.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0) {
    return make_error("mount_failed", errno_text("mounting the writable layer"));
  }
  for (const auto& d : {m.upper / "data", m.upper / "work", m.root}) {
    fs::create_directories(d, ec);
    if (ec) return make_error("mount_failed", "creating " + d.string() + ": " + ec.message());
  }
  const std::string options = "lowerdir=" + (m.efs / "rootfs").string() +
                              ",upperdir=" + (m.upper / "data").string() +
                              ",workdir=" + (m.upper / "work").string();
  if (::mount("overlay", m.root.c_str(), "overlay", MS_NOSUID, options.c_str()) != 0) {
    return make_error("mount_failed", errno_text("mounting the container root (overlay)"));
  }
  return ok();
}

// The boot up to a running workload; the workload's pid.
Result<pid_t> start(const BootOptions& o, Mounts& m) {
  COFFER_TRY_STATUS(check_boot_options(o));
  BundleKey key = COFFER_TRY(obtain_bundle_key(o));
  auto mounted = mount_bundle(o, key, m);
  crypto::cleanse(key.key);
  COFFER_TRY_STATUS(mounted);
  auto config = read_text_file(m.efs / "config.json", kMaxConfigBytes);
  if (!config) return make_error("bad_config", "reading config.json: " + config.error().message);
  const WorkloadSpec w = COFFER_TRY(parse_workload_spec(*config));

  int err_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return make_error("exec_failed", errno_text("pipe"));
  // The workload gets a PID namespace of its own (it is its PID 1, as in a container): it cannot
  // see, so neither trace nor read, the boot step and the FUSE server, which hold the key.
  if (::unshare(CLONE_NEWPID) != 0) {
    ::close(err_pipe[0]);
    ::close(err_pipe[1]);
    return make_error("exec_failed", errno_text("a PID namespace for the workload"));
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(err_pipe[0]);
    ::close(err_pipe[1]);
    return make_error("exec_failed", errno_text("fork"));
  }
  if (pid == 0) {
    ::close(err_pipe[0]);
    if (o.status_fd >= 0) ::close(o.status_fd);
    workload_main(m.root, w, err_pipe[1]);
  }
  ::close(err_pipe[1]);
  int e[2] = {0, 0};
  ssize_t n = 0;
  while ((n = ::read(err_pipe[0], e, sizeof e)) < 0 && errno == EINTR) {
  }
  ::close(err_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof e)) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    const char* step = e[0] > 0 && static_cast<std::size_t>(e[0]) < kWorkloadSteps.size()
                           ? kWorkloadSteps[static_cast<std::size_t>(e[0])]
                           : "starting";
    return make_error("exec_failed",
                      std::string(step) + " (" + w.args[0] + "): " + std::strerror(e[1]));
  }
  return pid;
}

}  // namespace

Status check_boot_options(const BootOptions& o) {
  static const std::regex kBundleId("[a-z0-9][a-z0-9_.-]{0,63}");
  if (!std::regex_match(o.bundle_id, kBundleId)) {
    return make_error("usage", "the bundle id must match [a-z0-9][a-z0-9_.-]{0,63}");
  }
  if (o.key_handover != "seal" && o.key_handover != "local") {
    return make_error("usage", "--key-handover is seal or local");
  }
  if (o.key_handover == "local" && (o.agent_socket.empty() || o.agent_mr_enclave.size() != 64)) {
    return make_error("usage",
                      "local attestation needs --agent-socket and --agent-mr-enclave (64 hex)");
  }
  if (o.quote_service.empty() || o.storage.empty()) {
    return make_error("usage", "--quote-service and --storage are required");
  }
  return ok();
}

Result<BundleKey> obtain_bundle_key(const BootOptions& o) {
  const evidence::sim::QuoteServiceClient qs(o.quote_service);
  if (o.key_handover == "seal") {
    const fs::path file = o.storage / o.bundle_id / "sealed-key.json";
    auto text = read_text_file(file, 64 * 1024);
    if (!text) {
      return make_error(std::string(kBadSealedKey),
                        "reading " + file.string() + ": " + text.error().message);
    }
    return unseal_bundle_key(qs, o.bundle_id, *text);
  }
  auto mr = hex_decode(o.agent_mr_enclave);
  if (!mr || mr->size() != 32) return make_error("usage", "--agent-mr-enclave must be 64 hex");
  Fixed<32> target{};
  std::ranges::copy(*mr, target.begin());
  KeyRequester requester = COFFER_TRY(KeyRequester::create(qs, o.bundle_id, target));
  auto client = net::ttrpc::Client::connect_unix(o.agent_socket);
  if (!client) {
    return make_error("agent_unavailable", "connecting to the agent enclave at " +
                                               o.agent_socket.string() + ": " +
                                               client.error().message);
  }
  ::coffer::agent::v1::HandOverKeyRequest req;
  req.set_bundle_id(o.bundle_id);
  req.set_report(to_string(requester.request().report));
  req.set_public_key(to_string(requester.request().public_key));
  auto answer = (*client)->call("coffer.agent.v1.Agent", "HandOverKey", req.SerializeAsString(),
                                std::chrono::seconds(30));
  if (!answer) {
    return make_error("key_handover_failed",
                      "the agent enclave refused the key: " + answer.error().to_string());
  }
  ::coffer::agent::v1::HandOverKeyResponse resp;
  if (!resp.ParseFromString(*answer)) {
    return make_error(std::string(kBadKeyResponse), "HandOverKeyResponse does not parse");
  }
  KeyResponse response;
  response.report = to_bytes(resp.report());
  response.public_key = to_bytes(resp.public_key());
  response.ciphertext = to_bytes(resp.ciphertext());
  return requester.accept(qs, response);
}

Result<WorkloadSpec> parse_workload_spec(std::string_view config_json) {
  auto doc = parse_json(config_json, JsonLimits{.max_bytes = kMaxConfigBytes, .max_depth = 32});
  if (!doc) return make_error("bad_config", "config.json: " + doc.error().message);
  if (!doc->is_object()) return make_error("bad_config", "config.json is not an object");
  auto proc = doc->find("process");
  if (proc == doc->end() || !proc->is_object()) {
    return make_error("bad_config", "config.json has no process");
  }
  WorkloadSpec w;
  w.args = COFFER_TRY(string_array(*proc, "args", kMaxArgs, true));
  if (w.args.empty() || w.args[0].empty()) {
    return make_error("bad_config", "process.args is empty");
  }
  w.env = COFFER_TRY(string_array(*proc, "env", kMaxEnv, false));
  if (auto cwd = proc->find("cwd"); cwd != proc->end()) {
    if (!cwd->is_string() || !cwd->get<std::string>().starts_with("/") ||
        cwd->get<std::string>().find('\0') != std::string::npos) {
      return make_error("bad_config", "process.cwd must be an absolute path");
    }
    w.cwd = cwd->get<std::string>();
  }
  if (auto user = proc->find("user"); user != proc->end()) {
    if (!user->is_object()) return make_error("bad_config", "process.user must be an object");
    w.uid = COFFER_TRY(id_of(*user, "uid"));
    w.gid = COFFER_TRY(id_of(*user, "gid"));
    if (auto extra = user->find("additionalGids"); extra != user->end()) {
      if (!extra->is_array() || extra->size() > 64) {
        return make_error("bad_config", "process.user.additionalGids must be an array of ids");
      }
      for (const auto& g : *extra) {
        if (!g.is_number_unsigned() || g.get<std::uint64_t>() > 0xfffffffeULL) {
          return make_error("bad_config", "process.user.additionalGids must be an array of ids");
        }
        w.additional_gids.push_back(static_cast<std::uint32_t>(g.get<std::uint64_t>()));
      }
    }
  }
  if (proc->value("terminal", false)) {
    return make_error("bad_config", "a terminal is not supported in the app enclave yet");
  }
  return w;
}

int run_boot(const BootOptions& o) {
  // The boot step and the FUSE server (its child) hold the filesystem key: no core dumps, and no
  // ptrace or /proc/<pid>/mem by anything without CAP_SYS_PTRACE over the enclave.
  ::prctl(PR_SET_DUMPABLE, 0);
  // The forwarded signals and SIGCHLD are taken synchronously (sigwaitinfo) from here on; the
  // children unblock them.
  sigset_t set;
  sigemptyset(&set);
  for (int sig : kForwarded) sigaddset(&set, sig);
  sigaddset(&set, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &set, nullptr);

  Mounts m;
  auto started = start(o, m);
  if (!started) {
    m.undo();
    write_status(o.status_fd,
                 "error " + started.error().code + " " + one_line(started.error().message));
    return kBootFailed;
  }
  const pid_t workload = *started;
  write_status(o.status_fd, "started");
  if (o.status_fd >= 0) ::close(o.status_fd);

  int exit_status = 0;
  bool done = false;
  while (!done) {
    siginfo_t info{};
    const int sig = ::sigwaitinfo(&set, &info);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      (void)::kill(workload, sig);
      continue;
    }
    // Reap everything that exited (PID 1 adopts orphans).
    for (;;) {
      int status = 0;
      const pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      if (pid == m.server) m.server = -1;  // the filesystem server died: EIO for the workload
      if (pid == workload) {
        exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        done = true;
      }
    }
  }
  m.undo();
  return exit_status;
}

}  // namespace coffer::runtime::appenclave
