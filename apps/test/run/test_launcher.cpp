// TEST ONLY: launch_enclave() for the `coffer-run-test` executable. The "enclave" is coffer-agent
// as a plain host process (no namespaces, no measurement of what runs) with a real simulated
// quote service (`coffer sim quote-service`) for its init-data; nothing here isolates anything.
// It exists so that `coffer run` can be tested through real executables before the process
// enclave launcher (src/runtime/process) is in; the shipped `coffer` never links it.
//
// Guarantees: the agent and the quote service run in their own sessions (a Ctrl-C on the terminal
// reaches `coffer run` only) with PR_SET_PDEATHSIG=SIGKILL, so they die with the process that
// launched them, even when it is SIGKILLed. The agent runs under `unshare --pid --fork
// --mount-proc --kill-child` (new PID and mount namespaces, as the process enclave has): when it
// dies, the kernel kills its containers and drops their mounts. stop() terminates the agent
// (SIGTERM to it inside the namespace, SIGKILL after the grace) and the quote service, and removes
// the run directory.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "cli/enclave_factory.h"
#include "core/file.h"
#include "runtime/agent_client.h"

namespace coffer::cli {

namespace {

namespace fs = std::filesystem;

pid_t spawn(const std::vector<std::string>& argv, const fs::path& log) {
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid != 0) {
    ::close(fd);
    return pid;
  }
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);
  ::setsid();
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (const int s : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGUSR1, SIGWINCH}) ::signal(s, SIG_DFL);
  const int devnull = ::open("/dev/null", O_RDONLY);
  ::dup2(devnull, 0);
  ::dup2(fd, 1);
  ::dup2(fd, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execv(args[0], args.data());
  ::_exit(127);
}

// The first child of `pid` (unshare's: the agent).
pid_t first_child(pid_t pid) {
  auto text = read_text_file(
      "/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children", 4096);
  if (!text || text->empty()) return -1;
  return static_cast<pid_t>(std::strtol(text->c_str(), nullptr, 10));
}

void terminate(pid_t& pid, std::chrono::milliseconds grace, bool via_child = false) {
  if (pid <= 0) return;
  const pid_t target = via_child ? first_child(pid) : pid;
  if (target > 0) ::kill(target, SIGTERM);
  const auto end = std::chrono::steady_clock::now() + grace;
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) break;
    if (std::chrono::steady_clock::now() >= end) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pid = -1;
}

class TestEnclave final : public runtime::Enclave {
 public:
  explicit TestEnclave(fs::path run_dir) : run_dir_(std::move(run_dir)) {}
  ~TestEnclave() override { (void)stop(std::chrono::seconds(5)); }

  [[nodiscard]] fs::path agent_socket() const override { return run_dir_ / "agent.sock"; }
  [[nodiscard]] std::string measurements_json() const override { return "{}"; }
  [[nodiscard]] pid_t pid() const override { return agent_; }
  Result<int> wait() override {
    int status = 0;
    if (agent_ <= 0 || ::waitpid(agent_, &status, 0) != agent_) {
      return make_error("not_running", "the agent is not running");
    }
    agent_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  Status stop(std::chrono::milliseconds grace) override {
    terminate(agent_, grace, true);
    terminate(quote_service_, grace);
    std::error_code ec;
    fs::remove_all(run_dir_, ec);
    return {};
  }

  fs::path run_dir_;
  pid_t agent_ = -1;
  pid_t quote_service_ = -1;
};

// Waits until `probe` is true or `pid` exits; false on exit or after 20 s.
template <typename Probe>
bool wait_ready(pid_t pid, Probe probe) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < end) {
    if (probe()) return true;
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace

Result<std::unique_ptr<runtime::Enclave>> launch_enclave(std::string_view kind,
                                                         const runtime::EnclaveSpec& spec,
                                                         const runtime::LaunchObserver& observer) {
  if (kind != "process") return make_error("enclave_unavailable", "test launcher: process only");
  const auto report = [&](const char* step, const std::string& detail) {
    if (observer) observer(runtime::LaunchEvent{step, detail});
  };
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return make_error("io_error", "/proc/self/exe: " + ec.message());
  const fs::path agent_bin = self.parent_path() / "coffer-agent";
  fs::create_directories(spec.run_dir, ec);
  fs::permissions(spec.run_dir, fs::perms::owner_all, ec);
  auto enclave = std::make_unique<TestEnclave>(spec.run_dir);
  const fs::path dir = spec.run_dir;
  const auto write = [&](const fs::path& p, const std::string& text) {
    return write_file_atomic(
        p, ByteView(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()), 0600);
  };
  if (auto s = write(dir / "rootfs.manifest", "rootfs manifest v1\n"); !s) {
    return std::unexpected(s.error());
  }
  std::vector<std::string> init;
  if (spec.init_data) {
    if (auto s = write(dir / "init-data.toml", *spec.init_data); !s) {
      return std::unexpected(s.error());
    }
    init = {"--init-data", (dir / "init-data.toml").string()};
  }
  report("quote_service", spec.tee);
  std::vector<std::string> qs = {self.string(),
                                 "sim",
                                 "quote-service",
                                 "--dir",
                                 spec.sim_dir.string(),
                                 "--socket",
                                 (dir / "qs.sock").string(),
                                 "--agent",
                                 agent_bin.string(),
                                 "--rootfs-manifest",
                                 (dir / "rootfs.manifest").string()};
  qs.insert(qs.end(), init.begin(), init.end());
  enclave->quote_service_ = spawn(qs, dir / "qs.log");
  if (!wait_ready(enclave->quote_service_, [&] { return fs::exists(dir / "qs.sock"); })) {
    auto log = read_text_file(dir / "qs.log", 4096);
    return make_error("enclave_launch_failed",
                      "the quote service did not start: " + (log ? *log : std::string()));
  }
  report("start_agent", agent_bin.string());
  std::vector<std::string> agent = {"/usr/bin/unshare",
                                    "--pid",
                                    "--fork",
                                    "--mount-proc",
                                    "--kill-child=SIGKILL",
                                    "--",
                                    agent_bin.string(),
                                    "--socket",
                                    (dir / "agent.sock").string(),
                                    "--tee",
                                    spec.tee,
                                    "--quote-service",
                                    (dir / "qs.sock").string(),
                                    "--state-dir",
                                    (dir / "state").string(),
                                    "--log-level",
                                    spec.agent_log_level};
  agent.insert(agent.end(), init.begin(), init.end());
  const fs::path agent_log = spec.agent_log_file.empty() ? dir / "agent.log" : spec.agent_log_file;
  enclave->agent_ = spawn(agent, agent_log);
  const bool up = wait_ready(enclave->agent_, [&] {
    auto c = runtime::AgentClient::connect(dir / "agent.sock");
    return c && (*c)->health().has_value();
  });
  if (!up) {
    auto log = read_text_file(agent_log, 4096);
    return make_error("enclave_launch_failed",
                      "the agent did not start: " + (log ? *log : std::string()));
  }
  report("agent_ready", "");
  return std::unique_ptr<runtime::Enclave>(std::move(enclave));
}

}  // namespace coffer::cli
