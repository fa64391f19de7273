// The process enclave with the real coffer-agent: launch, Health, measurements, isolation,
// teardown (stop and a killed launcher), two enclaves at once.
#include "runtime/process/process_enclave.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "core/file.h"
#include "core/json.h"
#include "crypto/pkey.h"
#include "evidence/sgx/quote.h"
#include "evidence/sim/sgx_enclave.h"
#include "runtime/test/test_env.h"

namespace coffer::runtime::process {
namespace {

namespace fs = std::filesystem;
using test::Shared;
using test::TempDir;

std::string init_data(int port) {
  return "version = \"0.1.0\"\nalgorithm = \"sha384\"\n[data]\n\"cdh.toml\" = '''\n[image]\n"
         "insecure_registries = [\"127.0.0.1:" +
         std::to_string(port) + "\"]\n'''\n";
}
const std::string kInitDataA = init_data(1);
const std::string kInitDataB = init_data(2);

// Runs a command (argv, no shell) and returns its stdout and exit code.
std::pair<std::string, int> run(const std::vector<std::string>& argv) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return {"", -1};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(out[1]);
  std::string text;
  std::array<char, 4096> buf{};
  for (ssize_t n; (n = ::read(out[0], buf.data(), buf.size())) > 0;) {
    text.append(buf.data(), static_cast<std::size_t>(n));
  }
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {text, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)};
}

std::string coffer() { return test::coffer_executable().string(); }

// One JSON line to a Unix stream socket, one JSON line back.
Result<Json> ask_unix(const std::string& path, const Json& request) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return make_error("too_long", path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const std::string e = std::strerror(errno);
    ::close(fd);
    return make_error("connect", e);
  }
  const std::string line = request.dump() + "\n";
  (void)!::write(fd, line.data(), line.size());
  std::string answer;
  char c = 0;
  while (::read(fd, &c, 1) == 1 && c != '\n') answer.push_back(c);
  ::close(fd);
  return Json::parse(answer);
}

std::string ns_of(pid_t pid, const char* ns) {
  std::error_code ec;
  auto link = fs::read_symlink("/proc/" + std::to_string(pid) + "/ns/" + ns, ec);
  return ec ? std::string() : link.string();
}

// A process's start time (field 22 of /proc/<pid>/stat) and whether it is a zombie.
std::optional<std::pair<std::string, bool>> start_time(const std::string& pid) {
  auto stat = read_text_file("/proc/" + pid + "/stat");
  if (!stat) return std::nullopt;
  const auto paren = stat->rfind(") ");
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream fields(stat->substr(paren + 2));
  std::string f;
  std::string state;
  fields >> state;
  for (int i = 4; i <= 22 && fields >> f; ++i) {
  }
  return std::pair{f, state == "Z"};
}

// The live processes whose namespace `ns` is `id` (pid -> start time). Namespace ids are reused
// once a namespace is gone, so "still there" compares the start time too.
std::map<std::string, std::string> processes_in(const char* ns, const std::string& id) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const auto name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (ns_of(std::stoi(name), ns) != id) continue;
    if (auto st = start_time(name); st && !st->second) out[name] = st->first;
  }
  return out;
}

int still_running(const std::map<std::string, std::string>& processes) {
  int n = 0;
  for (const auto& [pid, started] : processes) {
    auto st = start_time(pid);
    n += st && !st->second && st->first == started;
  }
  return n;
}

// Processes whose mount table mentions `needle` (the enclave's mounts name its run directory).
int mount_tables_naming(const std::string& needle) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const auto name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto mounts = read_text_file(e.path() / "mountinfo");
    n += mounts && mounts->find(needle) != std::string::npos;
  }
  return n;
}

bool unix_socket_listed(const std::string& needle) {
  std::ifstream in("/proc/net/unix");
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(needle) != std::string::npos) return true;
  }
  return false;
}

// The inodes of the sockets `pid` holds open.
std::set<std::string> socket_inodes(pid_t pid) {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    const auto target = fs::read_symlink(e.path(), ec).string();
    if (target.starts_with("socket:[")) out.insert(target.substr(8, target.size() - 9));
  }
  return out;
}

// Lines of /proc/net/unix (this network namespace) for sockets with one of `inodes`.
std::vector<std::string> unix_sockets_with(const std::set<std::string>& inodes) {
  std::vector<std::string> out;
  std::ifstream in("/proc/net/unix");
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string f;
    for (int i = 0; i < 7 && fields >> f; ++i) {
    }
    if (inodes.contains(f)) out.push_back(line);
  }
  return out;
}

EnclaveSpec spec_for(const fs::path& run_dir, std::optional<std::string> init_data) {
  EnclaveSpec spec;
  spec.tee = "sim-tdx";
  spec.enclave_image = Shared::get().image;
  spec.sim_dir = Shared::get().sim;
  spec.run_dir = run_dir;
  spec.init_data = std::move(init_data);
  spec.agent_log_file = run_dir.parent_path() / (run_dir.filename().string() + ".agent.log");
  return spec;
}

std::string agent_log(const EnclaveSpec& spec) {
  auto t = read_text_file(spec.agent_log_file);
  return t ? *t : std::string("(no log)");
}

class ProcessEnclaveTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(Shared::get().error, ""); }

  // Two enclaves of the shared image at once, with init-data A and B (run dirs a/ and b/).
  void launch_two(std::unique_ptr<Enclave>& a, std::unique_ptr<Enclave>& b) {
    const auto spec_a = spec_for(tmp_.path() / "a", kInitDataA);
    const auto spec_b = spec_for(tmp_.path() / "b", kInitDataB);
    auto ea = launch_process_enclave(spec_a);
    ASSERT_TRUE(ea) << ea.error().to_string() << "\n" << agent_log(spec_a);
    auto eb = launch_process_enclave(spec_b);
    ASSERT_TRUE(eb) << eb.error().to_string() << "\n" << agent_log(spec_b);
    a = std::move(*ea);
    b = std::move(*eb);
  }

  TempDir tmp_;
};

TEST_F(ProcessEnclaveTest, AgentAnswersAndTheQuoteServiceReportsTheImagesMeasurements) {
  const auto spec = spec_for(tmp_.path() / "run", kInitDataA);
  std::vector<std::string> steps;
  auto enclave =
      launch_process_enclave(spec, [&](const LaunchEvent& e) { steps.push_back(e.step); });
  ASSERT_TRUE(enclave) << enclave.error().to_string() << "\n" << agent_log(spec);
  EXPECT_EQ(steps, (std::vector<std::string>{"check_image", "measure", "quote_service",
                                             "start_agent", "agent_ready"}));
  const auto socket = (*enclave)->agent_socket();
  EXPECT_EQ(socket, tmp_.path() / "run/agent/agent.sock");

  // Health and GuestDetails through the real CLI, over the host-side agent socket.
  auto [health, hrc] = run({coffer(), "agent-ctl", "--socket", socket.string(), "health"});
  EXPECT_EQ(hrc, 0);
  EXPECT_NE(health.find("SERVING"), std::string::npos) << health;
  auto [details, drc] = run({coffer(), "agent-ctl", "--socket", socket.string(), "guest-details"});
  ASSERT_EQ(drc, 0) << details;
  const Json gd = Json::parse(details);
  EXPECT_EQ(gd["tee"], "tdx") << details;  // the KBS protocol's name of sim-tdx evidence
  EXPECT_EQ(gd["config_from_init_data"], true);

  // The measurements are what `coffer enclave measure` and `coffer sim measure` say of the image.
  std::ofstream(tmp_.path() / "init.toml") << kInitDataA;
  auto [em, emrc] = run({coffer(), "enclave", "measure", Shared::get().image.string(),
                         "--init-data", (tmp_.path() / "init.toml").string()});
  ASSERT_EQ(emrc, 0);
  auto [sm, smrc] = run({coffer(), "sim", "measure", "--agent",
                         (Shared::get().image / "rootfs/usr/bin/coffer-agent").string(),
                         "--rootfs-manifest", (Shared::get().image / "manifest").string(),
                         "--init-data", (tmp_.path() / "init.toml").string()});
  ASSERT_EQ(smrc, 0);
  const Json reported = Json::parse((*enclave)->measurements_json());
  EXPECT_EQ(reported, Json::parse(em));
  EXPECT_EQ(reported, Json::parse(sm));

  // The quote service itself (reached as root through the enclave's root, the only way there).
  const std::string quote =
      "/proc/" + std::to_string((*enclave)->pid()) + "/root/run/coffer-quote/quote.sock";
  auto m = ask_unix(quote, Json{{"op", "measurements"}});
  ASSERT_TRUE(m) << m.error().to_string();
  EXPECT_EQ((*m)["mr_td"], reported["tdx.mr_td"]);
  EXPECT_EQ((*m)["mr_config_id"], reported["tdx.mr_config_id"]);
  EXPECT_EQ((*m)["rtmr"][1], reported["tdx.rtmr_1"]);
  EXPECT_EQ((*m)["rtmr"][2], reported["tdx.rtmr_2"]);
  EXPECT_TRUE((*enclave)->stop(std::chrono::seconds(5)));
}

TEST_F(ProcessEnclaveTest, ChangedLibraryIsRefusedBeforeAnyProcessStarts) {
  const auto image = test::copy_image(tmp_.path() / "image");
  const auto lib = image / "rootfs/lib/x86_64-linux-gnu/libcrypto.so.3";
  {
    std::fstream f(lib, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096);
    f.put('\x42');
  }
  auto spec = spec_for(tmp_.path() / "run", std::nullopt);
  spec.enclave_image = image;
  std::vector<std::string> steps;
  auto enclave =
      launch_process_enclave(spec, [&](const LaunchEvent& e) { steps.push_back(e.step); });
  ASSERT_FALSE(enclave);
  EXPECT_EQ(enclave.error().code, "enclave_image_digest_mismatch");
  EXPECT_NE(enclave.error().message.find("/lib/x86_64-linux-gnu/libcrypto.so.3"),
            std::string::npos);
  EXPECT_TRUE(steps.empty());
  // nothing was created: no run directory, no log (no agent ever started)
  EXPECT_FALSE(fs::exists(spec.run_dir));
  EXPECT_FALSE(fs::exists(spec.agent_log_file));
}

TEST_F(ProcessEnclaveTest, EnclaveSeesNoHostPathsAndIsConfined) {
  const auto spec = spec_for(tmp_.path() / "run", std::nullopt);
  auto enclave = launch_process_enclave(spec);
  ASSERT_TRUE(enclave) << enclave.error().to_string() << "\n" << agent_log(spec);
  const pid_t pid = (*enclave)->pid();
  const fs::path root = "/proc/" + std::to_string(pid) + "/root";

  // The enclave's root holds the image, its mounts and nothing of the host.
  std::set<std::string> top;
  for (const auto& e : fs::directory_iterator(root)) top.insert(e.path().filename().string());
  EXPECT_EQ(top, (std::set<std::string>{"dev", "etc", "lib", "lib64", "proc", "run", "sys", "tmp",
                                        "usr", "var"}));
  EXPECT_FALSE(fs::exists(root / "work"));
  EXPECT_FALSE(fs::exists(root / "etc/shadow"));
  EXPECT_FALSE(fs::exists(root / "etc/passwd"));
  EXPECT_TRUE(fs::exists(root / "etc/coffer/enclave.manifest"));
  std::set<std::string> etc;
  for (const auto& e : fs::recursive_directory_iterator(root / "etc")) {
    etc.insert(e.path().lexically_relative(root).string());
  }
  EXPECT_EQ(etc, (std::set<std::string>{"etc/coffer", "etc/coffer/enclave.manifest"}));
  // Its mount table: only the enclave's own mounts.
  auto mounts = read_text_file("/proc/" + std::to_string(pid) + "/mountinfo");
  ASSERT_TRUE(mounts);
  EXPECT_EQ(mounts->find("/work"), std::string::npos) << *mounts;
  std::set<std::string> mount_points;
  std::istringstream mount_lines(*mounts);
  for (std::string line; std::getline(mount_lines, line);) {
    std::istringstream fields(line);
    std::string f;
    for (int i = 0; i < 5; ++i) fields >> f;
    mount_points.insert(f);
  }
  EXPECT_EQ(
      mount_points,
      (std::set<std::string>{"/", "/proc", "/dev", "/dev/null", "/dev/zero", "/dev/full",
                             "/dev/random", "/dev/urandom", "/dev/tty", "/dev/pts", "/dev/shm",
                             "/sys", "/tmp", "/run", "/var/lib/coffer-agent", "/run/coffer-agent"}))
      << *mounts;
  // On the host, the mount point is an empty directory: the enclave's root exists only in its
  // mount namespace, and so does the quote service's socket.
  EXPECT_TRUE(fs::is_empty(tmp_.path() / "run/root"));
  std::set<std::string> run_entries;
  for (const auto& e : fs::recursive_directory_iterator(tmp_.path() / "run")) {
    run_entries.insert(e.path().lexically_relative(tmp_.path() / "run").string());
  }
  EXPECT_EQ(run_entries, (std::set<std::string>{"agent", "agent/agent.sock", "root"}));

  // Namespaces: all new but the network (host network by default).
  for (const char* ns : {"user", "mnt", "pid", "ipc", "uts"}) {
    EXPECT_NE(ns_of(pid, ns), ns_of(::getpid(), ns)) << ns;
  }
  EXPECT_EQ(ns_of(pid, "net"), ns_of(::getpid(), "net"));

  // The kernel's view of the agent: no new privileges, a seccomp filter, no core dumps.
  auto status = read_text_file("/proc/" + std::to_string(pid) + "/status");
  ASSERT_TRUE(status);
  EXPECT_NE(status->find("NoNewPrivs:\t1"), std::string::npos) << *status;
  EXPECT_NE(status->find("Seccomp:\t2"), std::string::npos) << *status;
  auto limits = read_text_file("/proc/" + std::to_string(pid) + "/limits");
  ASSERT_TRUE(limits);
  EXPECT_NE(limits->find("Max core file size        0                    0"), std::string::npos)
      << *limits;
  auto environ = read_file("/proc/" + std::to_string(pid) + "/environ");
  ASSERT_TRUE(environ);
  EXPECT_EQ(std::string(environ->begin(), environ->end()), std::string("PATH=/usr/bin:/bin\0", 19));

  // An unprivileged host user can neither trace the agent nor look into the enclave.
  const pid_t child = ::fork();
  if (child == 0) {
    if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) _exit(10);
    if (::ptrace(PTRACE_ATTACH, pid, nullptr, nullptr) == 0) _exit(11);
    if (errno != EPERM) _exit(12);
    if (::open((root / "etc/coffer/enclave.manifest").c_str(), O_RDONLY) >= 0) _exit(13);
    if (::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY) >= 0) _exit(14);
    _exit(0);
  }
  int st = 0;
  ASSERT_EQ(::waitpid(child, &st, 0), child);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "check " << WEXITSTATUS(st) << " failed";
  EXPECT_TRUE((*enclave)->stop(std::chrono::seconds(5)));
}

TEST_F(ProcessEnclaveTest, OwnNetworkNamespaceWhenAsked) {
  auto spec = spec_for(tmp_.path() / "run", std::nullopt);
  spec.host_network = false;
  auto enclave = launch_process_enclave(spec);
  ASSERT_TRUE(enclave) << enclave.error().to_string() << "\n" << agent_log(spec);
  EXPECT_NE(ns_of((*enclave)->pid(), "net"), ns_of(::getpid(), "net"));
  auto dev = read_text_file("/proc/" + std::to_string((*enclave)->pid()) + "/net/dev");
  ASSERT_TRUE(dev);
  std::size_t interfaces = 0;
  std::istringstream lines(*dev);
  for (std::string line; std::getline(lines, line);)
    interfaces += line.find(':') != std::string::npos;
  EXPECT_EQ(interfaces, 1U) << *dev;  // lo only
}

TEST_F(ProcessEnclaveTest, StopLeavesNothingRunningMountedOrListening) {
  const auto spec = spec_for(tmp_.path() / "run", std::nullopt);
  auto enclave = launch_process_enclave(spec);
  ASSERT_TRUE(enclave) << enclave.error().to_string() << "\n" << agent_log(spec);
  const pid_t pid = (*enclave)->pid();
  const auto processes = processes_in("pid", ns_of(pid, "pid"));
  EXPECT_EQ(processes.size(), 1U);  // the agent (PID 1 inside)
  EXPECT_EQ(mount_tables_naming(spec.run_dir.string()), 1);
  const std::string quote_path =
      "/proc/" + std::to_string(pid) + "/root/run/coffer-quote/quote.sock";
  EXPECT_TRUE(unix_socket_listed(quote_path));
  // The agent's sockets, among them the one it listens on (bound by its path inside).
  const auto agent_sockets = socket_inodes(pid);
  const auto listed = unix_sockets_with(agent_sockets);
  EXPECT_TRUE(std::ranges::any_of(
      listed, [](const std::string& l) { return l.ends_with(" /run/coffer-agent/agent.sock"); }));

  ASSERT_TRUE((*enclave)->stop(std::chrono::seconds(5)));
  EXPECT_EQ(still_running(processes), 0);
  // its mount namespace, with every mount, is gone
  EXPECT_EQ(mount_tables_naming(spec.run_dir.string()), 0);
  EXPECT_FALSE(unix_socket_listed(quote_path));
  EXPECT_EQ(unix_sockets_with(agent_sockets), std::vector<std::string>{});
  EXPECT_FALSE(fs::exists(spec.run_dir));  // the launcher created it, the launcher removed it
  auto status = (*enclave)->wait();
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, 0);                                   // the agent stopped on SIGTERM
  EXPECT_TRUE((*enclave)->stop(std::chrono::seconds(1)));  // idempotent
}

TEST_F(ProcessEnclaveTest, KilledLauncherTakesTheEnclaveWithIt) {
  const auto spec = spec_for(tmp_.path() / "run", std::nullopt);
  // The enclave's init is orphaned when its launcher dies: reap it here (this container's PID 1
  // may not reap orphans).
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  const pid_t launcher = ::fork();
  if (launcher == 0) {
    ::close(report[0]);
    auto enclave = launch_process_enclave(spec);
    const pid_t pid = enclave ? (*enclave)->pid() : -1;
    (void)!::write(report[1], &pid, sizeof pid);
    if (!enclave) ::_exit(1);
    for (;;) ::pause();
  }
  ::close(report[1]);
  pid_t pid = -1;
  ASSERT_EQ(::read(report[0], &pid, sizeof pid), static_cast<ssize_t>(sizeof pid));
  ::close(report[0]);
  ASSERT_GT(pid, 0) << agent_log(spec);
  const auto processes = processes_in("pid", ns_of(pid, "pid"));
  EXPECT_EQ(mount_tables_naming(spec.run_dir.string()), 1);
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  ASSERT_GE(pidfd, 0);
  const std::string quote_path =
      "/proc/" + std::to_string(pid) + "/root/run/coffer-quote/quote.sock";
  EXPECT_TRUE(unix_socket_listed(quote_path));

  ASSERT_EQ(::kill(launcher, SIGKILL), 0);
  int st = 0;
  ASSERT_EQ(::waitpid(launcher, &st, 0), launcher);
  // PR_SET_PDEATHSIG kills the enclave's init; the PID namespace takes every process with it.
  pollfd pfd{pidfd, POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 10000), 1);
  ::close(pidfd);
  (void)::waitpid(pid, &st, 0);
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
  EXPECT_EQ(still_running(processes), 0);
  EXPECT_EQ(mount_tables_naming(spec.run_dir.string()), 0);
  EXPECT_FALSE(unix_socket_listed(quote_path));
  // Nothing answers on the agent socket any more (its file stays: nobody was left to remove it).
  auto [out, rc] = run({coffer(), "agent-ctl", "--socket",
                        (spec.run_dir / "agent/agent.sock").string(), "--timeout", "2", "health"});
  EXPECT_EQ(rc, 3) << out;
}

TEST_F(ProcessEnclaveTest, TwoEnclavesEachWithItsOwnQuoteServiceAndMeasurements) {
  std::unique_ptr<Enclave> a;
  std::unique_ptr<Enclave> b;
  ASSERT_NO_FATAL_FAILURE(launch_two(a, b));
  const Json ma = Json::parse(a->measurements_json());
  const Json mb = Json::parse(b->measurements_json());
  EXPECT_EQ(ma["tdx.mr_td"], mb["tdx.mr_td"]);  // the same image
  EXPECT_NE(ma["tdx.mr_config_id"], mb["tdx.mr_config_id"]);
  const std::vector<std::pair<Enclave*, const Json*>> both{{a.get(), &ma}, {b.get(), &mb}};
  for (const auto& [e, m] : both) {
    const std::string quote =
        "/proc/" + std::to_string(e->pid()) + "/root/run/coffer-quote/quote.sock";
    auto q = ask_unix(quote, Json{{"op", "measurements"}});
    ASSERT_TRUE(q) << q.error().to_string();
    EXPECT_EQ((*q)["mr_config_id"], (*m)["tdx.mr_config_id"]);
    auto [details, rc] =
        run({coffer(), "agent-ctl", "--socket", e->agent_socket().string(), "guest-details"});
    ASSERT_EQ(rc, 0) << details;
    EXPECT_NE(Json::parse(details)["init_data_digest"], "");
  }
  EXPECT_NE(ns_of(a->pid(), "pid"), ns_of(b->pid(), "pid"));
  EXPECT_NE(ns_of(a->pid(), "user"), ns_of(b->pid(), "user"));
}

// One enclave cannot trace or read the other: a process holding every capability of enclave A's
// user namespace, with the launcher's uid (more than anything inside A has: its seccomp filter
// also denies ptrace), can neither attach to B's agent nor open its memory. Only the agent's
// non-dumpability stops it (same uid otherwise suffices), and B's user namespace is not under A's.
// The control: the same process before joining A opens B's memory when it is root.
TEST_F(ProcessEnclaveTest, AnEnclaveCannotTraceAnother) {
  std::unique_ptr<Enclave> a;
  std::unique_ptr<Enclave> b;
  ASSERT_NO_FATAL_FAILURE(launch_two(a, b));
  const std::vector<std::pair<pid_t, pid_t>> pairs{{a->pid(), b->pid()}, {b->pid(), a->pid()}};
  for (const auto& [from, to] : pairs) {
    const std::string userns = "/proc/" + std::to_string(from) + "/ns/user";
    const std::string mem = "/proc/" + std::to_string(to) + "/mem";
    const bool root = ::geteuid() == 0;
    const pid_t child = ::fork();
    if (child == 0) {
      if (root) {
        const int m = ::open(mem.c_str(), O_RDONLY | O_CLOEXEC);
        if (m < 0) _exit(9);  // the control
        ::close(m);
      }
      const int ns = ::open(userns.c_str(), O_RDONLY | O_CLOEXEC);
      if (ns < 0 || ::setns(ns, CLONE_NEWUSER) != 0) _exit(10);
      if (::ptrace(PTRACE_ATTACH, to, nullptr, nullptr) == 0) _exit(11);
      if (errno != EPERM) _exit(12);
      if (::open(mem.c_str(), O_RDONLY | O_CLOEXEC) >= 0) _exit(13);
      if (errno != EACCES && errno != EPERM) _exit(14);
      _exit(0);
    }
    int st = 0;
    ASSERT_EQ(::waitpid(child, &st, 0), child);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0)
        << "from " << from << " to " << to << ": check " << WEXITSTATUS(st) << " failed";
  }
  // Both agents still serve: nothing was attached.
  for (const auto* e : {a.get(), b.get()}) {
    auto [details, rc] =
        run({coffer(), "agent-ctl", "--socket", e->agent_socket().string(), "health"});
    EXPECT_EQ(rc, 0) << details;
  }
}

}  // namespace
}  // namespace coffer::runtime::process

namespace coffer::runtime::process {
namespace {

// The key result: the agent in the enclave pulls an image from a loopback registry (host
// network) and runs a container with crun (no cgroups: the enclave has none), whose output and
// exit code come back through the API. The container cannot see host paths either.
TEST_F(ProcessEnclaveTest, ContainerRunsInTheEnclave) {
  auto [fixture, frc] =
      run({"/bin/bash", std::string(COFFER_SOURCE_DIR) + "/src/runtime/test/busybox_registry.sh",
           coffer(), tmp_.path().string()});
  if (frc == 77) GTEST_SKIP() << "docker-registry, umoci or busybox-static is not installed";
  ASSERT_EQ(frc, 0) << fixture;
  int port = 0;
  pid_t registry = 0;
  std::istringstream(fixture) >> port >> registry;
  ASSERT_GT(port, 0);
  struct KillRegistry {
    pid_t pid;
    ~KillRegistry() {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  } kill_registry{registry};

  const auto spec = spec_for(tmp_.path() / "run", init_data(port));
  auto enclave = launch_process_enclave(spec);
  ASSERT_TRUE(enclave) << enclave.error().to_string() << "\n" << agent_log(spec);
  const std::string socket = (*enclave)->agent_socket().string();
  auto ctl = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{coffer(), "agent-ctl", "--socket", socket};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  };
  const std::string image = "docker://127.0.0.1:" + std::to_string(port) + "/app:v1";
  auto [pulled, prc] = ctl({"pull", image});
  ASSERT_EQ(prc, 0) << pulled << agent_log(spec);
  EXPECT_NE(pulled.find("\"manifest_digest\":\"sha256:"), std::string::npos) << pulled;
  ASSERT_EQ(ctl({"create-sandbox", "s1"}).second, 0) << agent_log(spec);
  auto [created, crc] = ctl({"create-container", "c1", "--sandbox", "s1", "--image", image});
  ASSERT_EQ(crc, 0) << created << agent_log(spec);
  ASSERT_EQ(ctl({"start", "c1"}).second, 0) << agent_log(spec);
  auto [exited, wrc] = ctl({"--timeout", "0", "wait", "c1"});
  ASSERT_EQ(wrc, 0) << agent_log(spec);
  EXPECT_NE(exited.find("\"exit_code\":7"), std::string::npos) << exited;
  auto [output, orc] = ctl({"read-output", "c1", "--raw"});
  ASSERT_EQ(orc, 0);
  EXPECT_EQ(output.substr(0, output.find('\n')), "hello from the process enclave") << output;
  // host paths are not there for the container either
  EXPECT_NE(output.find("/work: No such file or directory"), std::string::npos) << output;
  EXPECT_NE(output.find("/etc/shadow: No such file or directory"), std::string::npos) << output;
  EXPECT_EQ(ctl({"remove", "c1"}).second, 0);
  EXPECT_EQ(ctl({"remove-sandbox", "s1"}).second, 0);
  EXPECT_TRUE((*enclave)->stop(std::chrono::seconds(5)));
}

}  // namespace
}  // namespace coffer::runtime::process

namespace coffer::runtime::process {
namespace {

TEST_F(ProcessEnclaveTest, SimSnpBindsInitDataInHostData) {
  auto spec = spec_for(tmp_.path() / "run",
                       std::string("version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n"));
  spec.tee = "sim-snp";
  auto enclave = launch_process_enclave(spec);
  ASSERT_TRUE(enclave) << enclave.error().to_string() << "\n" << agent_log(spec);
  const Json m = Json::parse((*enclave)->measurements_json());
  EXPECT_NE(m["snp.host_data"], "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
  auto [details, rc] = run(
      {coffer(), "agent-ctl", "--socket", (*enclave)->agent_socket().string(), "guest-details"});
  ASSERT_EQ(rc, 0) << details;
  EXPECT_EQ(Json::parse(details)["tee"], "snp");
}

// sim-sgx: an unsigned image does not launch; `coffer enclave sign` makes it launch with the
// signer's MRSIGNER; a signature over another MRENCLAVE is refused; the quote service gives the
// enclave SGX quotes, reports and sealing keys for itself.
TEST_F(ProcessEnclaveTest, SimSgxNeedsAValidSignatureAndServesItsIdentity) {
  const auto image = test::copy_image(tmp_.path() / "image");
  auto spec = spec_for(tmp_.path() / "run", kInitDataA);
  spec.tee = "sim-sgx";
  spec.enclave_image = image;
  auto unsigned_launch = launch_process_enclave(spec);
  ASSERT_FALSE(unsigned_launch);
  EXPECT_EQ(unsigned_launch.error().code, "enclave_not_signed");
  EXPECT_FALSE(fs::exists(spec.run_dir));

  // signed by a key over another MRENCLAVE (an image changed after signing)
  auto key = crypto::Key::generate(crypto::KeyType::kEcP256);
  ASSERT_TRUE(key);
  evidence::sim::SgxSigstruct other;
  other.mr_enclave.fill(0x01);
  ASSERT_TRUE(write_file_atomic(image / "enclave.sig",
                                as_bytes(evidence::sim::sign_sigstruct(other, *key).value())));
  auto wrong = launch_process_enclave(spec);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, "enclave_signature_invalid");
  EXPECT_FALSE(fs::exists(spec.run_dir));

  // coffer enclave sign with an RSA-3072 key, as SGX signers are
  auto rsa = crypto::Key::generate(crypto::KeyType::kRsa, 3072);
  ASSERT_TRUE(rsa);
  ASSERT_TRUE(
      write_file_atomic(tmp_.path() / "signer.pem", as_bytes(rsa->private_pem().value()), 0600));
  auto [signed_out, src] =
      run({coffer(), "enclave", "sign", "--key", (tmp_.path() / "signer.pem").string(),
           "--isv-prod-id", "3", "--isv-svn", "2", image.string()});
  ASSERT_EQ(src, 0) << signed_out;
  auto [em, emrc] = run({coffer(), "enclave", "measure", "--tee", "sim-sgx", image.string()});
  ASSERT_EQ(emrc, 0) << em;
  const Json rv = Json::parse(em);
  EXPECT_EQ(rv["sgx.mr_signer"], hex_encode(evidence::sim::sgx_mr_signer(*rsa).value()));
  EXPECT_EQ(rv["sgx.isv_prod_id"], "0300");
  EXPECT_EQ(rv["sgx.isv_svn"], "0200");
  // `coffer sim measure` of the image's components with its signature says the same
  auto [sm, smrc] =
      run({coffer(), "sim", "measure", "--agent", (image / "rootfs/usr/bin/coffer-agent").string(),
           "--rootfs-manifest", (image / "manifest").string(), "--sgx-signature",
           (image / "enclave.sig").string()});
  ASSERT_EQ(smrc, 0) << sm;
  for (const auto& [name, value] : rv.items()) EXPECT_EQ(Json::parse(sm)[name], value) << name;
  // ... and refuses a signature of another image
  auto [bad, badrc] =
      run({"/bin/sh", "-c",
           "\"$0\" sim measure --agent \"$0\" --rootfs-manifest \"$1\" "
           "--sgx-signature \"$2\" 2>&1",
           coffer(), (image / "manifest").string(), (image / "enclave.sig").string()});
  EXPECT_NE(badrc, 0);
  EXPECT_NE(bad.find("enclave_signature_invalid"), std::string::npos) << bad;

  auto enclave = launch_process_enclave(spec);
  ASSERT_TRUE(enclave) << enclave.error().to_string() << "\n" << agent_log(spec);
  const Json reported = Json::parse((*enclave)->measurements_json());
  for (const char* name : {"sgx.mr_enclave", "sgx.mr_signer", "sgx.isv_prod_id", "sgx.isv_svn"})
    EXPECT_EQ(reported[name], rv[name]) << name;
  auto [details, drc] = run(
      {coffer(), "agent-ctl", "--socket", (*enclave)->agent_socket().string(), "guest-details"});
  ASSERT_EQ(drc, 0) << details;
  EXPECT_EQ(Json::parse(details)["tee"], "sgx");
  EXPECT_EQ(Json::parse(details)["config_from_init_data"], true);

  const std::string quote =
      "/proc/" + std::to_string((*enclave)->pid()) + "/root/run/coffer-quote/quote.sock";
  auto q = ask_unix(
      quote, Json{{"op", "quote"}, {"tee", "sgx"}, {"report_data", base64_encode(Bytes(64, 7))}});
  ASSERT_TRUE(q) << q.error().to_string();
  auto raw = base64_decode((*q)["evidence"]["quote"].get<std::string>());
  ASSERT_TRUE(raw);
  auto parsed = evidence::sgx::parse_quote(*raw);
  ASSERT_TRUE(parsed) << parsed.error().to_string();
  EXPECT_EQ(hex_encode(parsed->body.mr_enclave), rv["sgx.mr_enclave"]);
  EXPECT_EQ(hex_encode(parsed->body.mr_signer), rv["sgx.mr_signer"]);
  // a report to itself verifies; a sealing key is served
  auto r = ask_unix(quote, Json{{"op", "report"},
                                {"target_info", {{"mr_enclave", rv["sgx.mr_enclave"]}}},
                                {"report_data", base64_encode(Bytes(8, 1))}});
  ASSERT_TRUE(r && r->contains("report")) << (r ? r->dump() : r.error().to_string());
  auto v = ask_unix(quote, Json{{"op", "verify_report"}, {"report", (*r)["report"]}});
  ASSERT_TRUE(v);
  EXPECT_EQ((*v).value("ok", false), true) << v->dump();
  auto k = ask_unix(
      quote,
      Json{{"op", "seal_key"}, {"policy", "mrsigner"}, {"key_id", hex_encode(Bytes(32, 0))}});
  ASSERT_TRUE(k);
  EXPECT_EQ((*k).value("key", std::string()).size(), 64u) << k->dump();
  EXPECT_TRUE((*enclave)->stop(std::chrono::seconds(5)));
}

// Two sim-sgx enclaves of the same signer launched from the same sim directory (one platform):
// the MRSIGNER sealing key is shared, the MRENCLAVE one is not; a report from one to the other
// verifies at its target only. Each quote service answers with its own enclave's identity.
TEST_F(ProcessEnclaveTest, TwoSimSgxEnclavesShareTheSignersSealKeyAndAttestLocally) {
  const auto image_a = test::copy_image(tmp_.path() / "image_a");
  std::ofstream(tmp_.path() / "app.txt") << "the app enclave";
  EnclaveImageOptions o;
  o.agent = test::agent_executable();
  o.extra_files = {tmp_.path() / "app.txt"};
  ASSERT_TRUE(build_enclave_image(o, tmp_.path() / "image_b"));
  const auto image_b = tmp_.path() / "image_b";
  auto key = crypto::Key::generate(crypto::KeyType::kEcP256);
  ASSERT_TRUE(key);
  ASSERT_TRUE(sign_enclave_image(image_a, *key, {.isv_prod_id = 1, .isv_svn = 1}));
  ASSERT_TRUE(sign_enclave_image(image_b, *key, {.isv_prod_id = 1, .isv_svn = 1}));
  auto spec_a = spec_for(tmp_.path() / "a", kInitDataA);
  spec_a.tee = "sim-sgx";
  spec_a.enclave_image = image_a;
  auto spec_b = spec_for(tmp_.path() / "b", kInitDataA);
  spec_b.tee = "sim-sgx";
  spec_b.enclave_image = image_b;
  auto a = launch_process_enclave(spec_a);
  ASSERT_TRUE(a) << a.error().to_string() << "\n" << agent_log(spec_a);
  auto b = launch_process_enclave(spec_b);
  ASSERT_TRUE(b) << b.error().to_string() << "\n" << agent_log(spec_b);
  const Json ma = Json::parse((*a)->measurements_json());
  const Json mb = Json::parse((*b)->measurements_json());
  EXPECT_NE(ma["sgx.mr_enclave"], mb["sgx.mr_enclave"]);
  EXPECT_EQ(ma["sgx.mr_signer"], mb["sgx.mr_signer"]);
  const auto socket = [](const Enclave& e) {
    return "/proc/" + std::to_string(e.pid()) + "/root/run/coffer-quote/quote.sock";
  };
  const std::string qa = socket(**a);
  const std::string qb = socket(**b);
  Json seal = {{"op", "seal_key"}, {"policy", "mrsigner"}, {"key_id", hex_encode(Bytes(32, 5))}};
  auto ka = ask_unix(qa, seal);
  auto kb = ask_unix(qb, seal);
  ASSERT_TRUE(ka && kb);
  ASSERT_TRUE(ka->contains("key")) << ka->dump();
  EXPECT_EQ((*ka)["key"], (*kb)["key"]);
  seal["policy"] = "mrenclave";
  EXPECT_NE(ask_unix(qa, seal).value()["key"], ask_unix(qb, seal).value()["key"]);
  // b (the app) reports to a (the agent): a verifies it and sees b's identity; b cannot
  auto r = ask_unix(qb, Json{{"op", "report"},
                             {"target_info", {{"mr_enclave", ma["sgx.mr_enclave"]}}},
                             {"report_data", base64_encode(Bytes(32, 0x2a))}});
  ASSERT_TRUE(r && r->contains("report")) << (r ? r->dump() : r.error().to_string());
  auto at_a = ask_unix(qa, Json{{"op", "verify_report"}, {"report", (*r)["report"]}});
  ASSERT_TRUE(at_a);
  EXPECT_EQ(at_a->value("ok", false), true) << at_a->dump();
  EXPECT_EQ((*at_a)["mr_enclave"], mb["sgx.mr_enclave"]);
  auto at_b = ask_unix(qb, Json{{"op", "verify_report"}, {"report", (*r)["report"]}});
  ASSERT_TRUE(at_b);
  EXPECT_EQ((*at_b)["error"]["code"], "report_mac_mismatch") << at_b->dump();
  EXPECT_TRUE((*a)->stop(std::chrono::seconds(5)));
  EXPECT_TRUE((*b)->stop(std::chrono::seconds(5)));
}

// An agent that refuses to start (SNP's HOST_DATA cannot hold a SHA-384 init-data digest, so the
// agent finds its init-data unbound) fails the launch, and everything is cleaned up.
TEST_F(ProcessEnclaveTest, AgentThatExitsFailsTheLaunchAndIsCleanedUp) {
  auto spec = spec_for(tmp_.path() / "run", kInitDataA);
  spec.tee = "sim-snp";
  auto enclave = launch_process_enclave(spec);
  ASSERT_FALSE(enclave);
  EXPECT_EQ(enclave.error().code, "agent_exited") << enclave.error().to_string();
  EXPECT_NE(agent_log(spec).find("init-data"), std::string::npos) << agent_log(spec);
  EXPECT_FALSE(fs::exists(spec.run_dir));
}

TEST_F(ProcessEnclaveTest, UnsupportedTeeOrRunDirectoryIsAUsageError) {
  auto spec = spec_for(tmp_.path() / "run", std::nullopt);
  spec.tee = "sample";
  auto enclave = launch_process_enclave(spec);
  ASSERT_FALSE(enclave);
  EXPECT_EQ(enclave.error().code, "usage");
  spec = spec_for(tmp_.path() / std::string(100, 'r'), std::nullopt);
  enclave = launch_process_enclave(spec);
  ASSERT_FALSE(enclave);
  EXPECT_EQ(enclave.error().code, "usage");
  EXPECT_FALSE(fs::exists(spec.run_dir));
}

TEST_F(ProcessEnclaveTest, CofferEnclaveMeasureRefusesAChangedImage) {
  const auto image = test::copy_image(tmp_.path() / "image");
  auto [ok_out, ok_rc] = run({coffer(), "enclave", "measure", image.string(), "--format", "rvps"});
  ASSERT_EQ(ok_rc, 0);
  EXPECT_NE(Json::parse(ok_out)["payload"], "");
  {
    std::fstream f(image / "rootfs/usr/bin/crun", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x01');
  }
  auto [out, rc] = run({coffer(), "enclave", "measure", image.string()});
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(out, "");
}

}  // namespace
}  // namespace coffer::runtime::process

namespace coffer::runtime::process {
namespace {

// A launcher that is not root: root inside maps to the launching user only.
TEST_F(ProcessEnclaveTest, LaunchesForAnUnprivilegedUser) {
  constexpr uid_t kNobody = 65534;
  const fs::path base = tmp_.path() / "nobody";
  fs::create_directories(base);
  fs::permissions(tmp_.path(), fs::perms(0755));
  const auto image = test::copy_image(base / "image");
  fs::copy(Shared::get().sim, base / "sim", fs::copy_options::recursive);
  for (const auto& e : fs::recursive_directory_iterator(base)) {
    ASSERT_EQ(::lchown(e.path().c_str(), kNobody, kNobody), 0);
  }
  ASSERT_EQ(::chown(base.c_str(), kNobody, kNobody), 0);
  auto spec = spec_for(base / "run", kInitDataA);
  spec.enclave_image = image;
  spec.sim_dir = base / "sim";
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(report[0]);
    if (::setgroups(0, nullptr) != 0 || ::setresgid(kNobody, kNobody, kNobody) != 0 ||
        ::setresuid(kNobody, kNobody, kNobody) != 0 ||
        // changing uids made this process non-dumpable; a user's own process is dumpable
        ::prctl(PR_SET_DUMPABLE, 1) != 0) {
      ::_exit(10);
    }
    auto enclave = launch_process_enclave(spec);
    std::string result = enclave ? "ok" : enclave.error().to_string();
    if (enclave) {
      auto [details, rc] = run({coffer(), "agent-ctl", "--socket",
                                (*enclave)->agent_socket().string(), "guest-details"});
      if (rc != 0) result = "guest-details failed";
      const auto uid_map =
          read_text_file("/proc/" + std::to_string((*enclave)->pid()) + "/uid_map");
      result += uid_map ? " " + *uid_map : " no uid_map";
      (void)(*enclave)->stop(std::chrono::seconds(5));
    }
    (void)!::write(report[1], result.data(), result.size());
    ::_exit(0);
  }
  ::close(report[1]);
  std::string result;
  std::array<char, 4096> buf{};
  for (ssize_t n; (n = ::read(report[0], buf.data(), buf.size())) > 0;) {
    result.append(buf.data(), static_cast<std::size_t>(n));
  }
  ::close(report[0]);
  int st = 0;
  ASSERT_EQ(::waitpid(child, &st, 0), child);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  EXPECT_TRUE(result.starts_with("ok ")) << result << "\n" << agent_log(spec);
  std::istringstream map(result.substr(3));
  std::string inside, outside, count;
  map >> inside >> outside >> count;
  EXPECT_EQ(inside + " " + outside + " " + count, "0 65534 1") << result;
  EXPECT_FALSE(fs::exists(spec.run_dir));
}

}  // namespace
}  // namespace coffer::runtime::process
