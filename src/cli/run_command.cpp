// `coffer run`, `ps`, `logs`, `stop`, `rm` (docs/run.md).
//
// One Session drives one container: launch the enclave (enclave_factory.h), connect to its agent,
// pull, create the sandbox and container, start, stream output, forward stdin and signals, then
// tear everything down (container, sandbox, enclave, terminal mode) on every way out: the
// container's exit, an error, an exception, a second Ctrl-C. With --detach the Session runs in a
// supervisor process (double fork, setsid) that writes the container's output to a log file and
// its state to the run directory.
#include "cli/run_command.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cli/exit.h"
#include "cli/run_support.h"
#include "core/bytes.h"
#include "core/fd.h"
#include "core/file.h"
#include "core/json.h"
#include "crypto/random.h"
#include "runtime/agent_client.h"
#include "runtime/enclave_factory.h"

namespace coffer::cli {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
constexpr std::string_view kPrefix = "coffer run";

struct RunOptions {
  std::string tee = "sim-tdx";
  std::string enclave = "process";
  std::string enclave_image;
  std::string guest_image;        // --enclave vm: `coffer guest-image build`'s directory
  std::string vm_accel = "auto";  // --enclave vm: auto, tcg, kvm
  // sim-sgx: the app enclave's image and how the filesystem key reaches it (docs/two-enclave.md)
  std::string app_enclave_image;
  std::string key_handover = "seal";
  std::string sim_dir;
  std::string trustee;
  std::string kbs_ca_file;
  std::string image_policy;
  bool require_encrypted = false;
  std::vector<std::string> insecure_registries;
  std::string agent_policy_file;
  std::string init_data_file;
  std::vector<std::string> env;
  bool tty = false;
  bool detach = false;
  bool quiet = false;
  bool print_init_data = false;
  bool timings = false;
  std::string name;
  std::string run_dir;
  std::string agent_log_level = "info";
  std::string image;
  std::vector<std::string> command;
};

// ---- signals: a self-pipe the handlers write the signal number to --------------------------

int g_sig_pipe[2] = {-1, -1};

extern "C" void on_signal(int signo) {
  const int saved = errno;
  const auto b = static_cast<unsigned char>(signo);
  if (g_sig_pipe[1] >= 0) (void)!::write(g_sig_pipe[1], &b, 1);
  errno = saved;
}

extern "C" void on_sigpipe(int /*signo*/) {}

void install_signal_handlers() {
  if (g_sig_pipe[0] < 0) {
    if (::pipe2(g_sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
      fail(kPrefix, ExitCode::kRefused, std::string("pipe: ") + std::strerror(errno));
    }
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (const int s : {SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGUSR1}) ::sigaction(s, &sa, nullptr);
  // A closed stdout or agent socket must not kill us; a handler (unlike SIG_IGN) is not
  // inherited by what the launcher executes, so the enclave and its containers keep the default.
  struct sigaction pipe_sa {};
  pipe_sa.sa_handler = on_sigpipe;
  sigemptyset(&pipe_sa.sa_mask);
  ::sigaction(SIGPIPE, &pipe_sa, nullptr);
}

std::string seconds(Clock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f s", std::chrono::duration<double>(d).count());
  return buf;
}

// ---- progress on stderr --------------------------------------------------------------------

class Progress {
 public:
  Progress(bool quiet, int fd) : quiet_(quiet), fd_(fd), tty_(::isatty(fd) == 1) {}
  void begin(const std::string& what) {
    step_ = what;
    started_ = Clock::now();
    if (!quiet_ && tty_) write_all(fd_, "\r\033[K... " + what);
  }
  void detail(const std::string& d) {
    if (!quiet_ && tty_) write_all(fd_, "\r\033[K... " + step_ + ": " + d);
  }
  void done(const std::string& result) {
    if (quiet_) return;
    const std::string line = result + " (" + seconds(Clock::now() - started_) + ")";
    write_all(fd_, tty_ ? "\r\033[K" + line + "\n" : std::string(kPrefix) + ": " + line + "\n");
  }
  void abandon() {
    if (!quiet_ && tty_) write_all(fd_, "\r\033[K");
  }
  // A line of its own when not on a terminal (where detail() shows it instead).
  void plain(const std::string& line) {
    if (!quiet_ && !tty_) write_all(fd_, std::string(kPrefix) + ": " + line + "\n");
  }
  [[nodiscard]] bool tty() const { return tty_; }

 private:
  bool quiet_;
  int fd_;
  bool tty_;
  std::string step_;
  Clock::time_point started_;
};

// ---- --timings: where a run's time went (bench/run_cold_start.sh reads these lines) ---------

class Timings {
 public:
  // The first time `step` is reached (later ones are ignored: first output happens once).
  void mark(const std::string& step) {
    std::lock_guard lock(mu_);
    if (std::ranges::find(marks_, step, &Mark::step) != marks_.end()) return;
    marks_.push_back({step, Clock::now()});
  }
  void agent(const std::string& name, std::uint64_t us) {
    std::lock_guard lock(mu_);
    agent_.emplace_back(name, us);
  }
  // "coffer run: timing STEP +DELTA_MS AT_MS" per step, then the agent's own figures.
  [[nodiscard]] std::string report() const {
    std::lock_guard lock(mu_);
    std::string out;
    char buf[160];
    auto prev = start_;
    for (const auto& m : marks_) {
      std::snprintf(buf, sizeof buf, ": timing %-20s +%8.1f ms  at %8.1f ms\n", m.step.c_str(),
                    ms(m.at - prev), ms(m.at - start_));
      out += std::string(kPrefix) + buf;
      prev = m.at;
    }
    for (const auto& [name, value] : agent_) {
      std::snprintf(buf, sizeof buf, ": timing agent.%-14s %9.1f %s\n", name.c_str(),
                    name.ends_with("rss") ? static_cast<double>(value) / 1024.0
                                          : static_cast<double>(value) / 1000.0,
                    name.ends_with("rss") ? "MiB" : "ms");
      out += std::string(kPrefix) + buf;
    }
    return out;
  }

 private:
  struct Mark {
    std::string step;
    Clock::time_point at;
  };
  static double ms(Clock::duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
  }
  Clock::time_point start_ = Clock::now();
  mutable std::mutex mu_;
  std::vector<Mark> marks_;
  std::vector<std::pair<std::string, std::uint64_t>> agent_;  // us, or KiB for "*rss"
};

// ---- pull progress: PullProgress polled on a second connection while PullImage runs ---------

std::string mib(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

// "layer 2/5: 3.1 MiB of 12.0 MiB, 41.2 MiB/s"
std::string describe(const runtime::agentpb::PullInFlight& p) {
  std::string s =
      "layer " + std::to_string(p.layer_index() + 1) + "/" + std::to_string(p.layer_count()) + ": ";
  if (p.layer_bytes() == 0) {
    // its blob is still being downloaded (and, encrypted, its MAC checked)
    s += "fetching";
    if (p.layer_total() >= 0) s += " " + mib(static_cast<std::uint64_t>(p.layer_total()));
    return s;
  }
  s += mib(p.layer_bytes());
  if (p.layer_total() >= 0) s += " of " + mib(static_cast<std::uint64_t>(p.layer_total()));
  if (p.elapsed_us() > 0) {
    const double rate = static_cast<double>(p.bytes_done()) / (1024.0 * 1024.0) /
                        (static_cast<double>(p.elapsed_us()) / 1e6);
    char buf[32];
    std::snprintf(buf, sizeof buf, ", %.1f MiB/s", rate);
    s += buf;
  }
  return s;
}

// Asks the agent every `period` for the pulls in flight and hands `image`'s to `report`, until
// destroyed. An agent without PullProgress (an older one, or a policy denying it) shows nothing.
class PullPoller {
 public:
  PullPoller(const fs::path& socket, std::string image,
             std::function<void(const runtime::agentpb::PullInFlight&)> report,
             std::chrono::milliseconds period = std::chrono::milliseconds(100))
      : thread_([socket, image = std::move(image), report = std::move(report),
                 period](const std::stop_token& stop) {
          auto client = runtime::AgentClient::connect(socket);
          if (!client) return;
          (*client)->set_timeout(std::chrono::seconds(2));
          std::mutex m;
          std::condition_variable_any cv;
          for (;;) {
            runtime::agentpb::PullProgressResponse resp;
            if (!(*client)->call("PullProgress", runtime::agentpb::PullProgressRequest(), resp,
                                 std::chrono::seconds(2))) {
              return;
            }
            for (const auto& p : resp.pulls()) {
              if (p.image() == image) report(p);
            }
            std::unique_lock lock(m);
            // a display period, not a synchronisation: the pull's end stops the thread
            if (cv.wait_for(lock, stop, period, [] { return false; }); stop.stop_requested()) {
              return;
            }
          }
        }) {}

 private:
  std::jthread thread_;
};

// VmHWM of a process (KiB), 0 if unknown.
std::uint64_t peak_rss_kib(pid_t pid) {
  auto text = read_text_file("/proc/" + std::to_string(pid) + "/status", 64 * 1024);
  if (!text) return 0;
  const auto at = text->find("VmHWM:");
  if (at == std::string::npos) return 0;
  return std::strtoull(text->c_str() + at + 6, nullptr, 10);
}

// ---- the local terminal in raw mode, restored on every way out -----------------------------

class RawTerminal {
 public:
  RawTerminal() = default;
  ~RawTerminal() { restore(); }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;
  void enter(int fd) {
    if (::isatty(fd) != 1 || ::tcgetattr(fd, &saved_) != 0) return;
    termios raw = saved_;
    ::cfmakeraw(&raw);
    if (::tcsetattr(fd, TCSANOW, &raw) == 0) fd_ = fd;
  }
  void restore() {
    if (fd_ >= 0) (void)::tcsetattr(fd_, TCSANOW, &saved_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  termios saved_{};
};

// Why a step failed, in the user's words, from the agent's error code.
std::string explain(std::string_view step, const Error& e, bool overrides) {
  std::string why;
  const std::string& c = e.code;
  if (c == "policy_denied" && overrides) {
    why =
        "the agent policy denied the container (its overrides: command, --env); the built-in "
        "policy denies every override, so give --init-data whose policy.rego allows them "
        "(policy_data allowed_commands / allowed_env, docs/run.md)";
  } else if (c == "policy_denied") {
    why = "the agent policy denied it";
  } else if (c == "missing_decryption_key" || c.starts_with("kbs_") || c == "unauthorized" ||
             c == "no_kbs" ||
             (c == "decrypt_failed" &&
              e.message.find("key provider (kbs:///") != std::string::npos)) {
    why = "the trustee refused the image key";
  } else if (c == "no_valid_signature" || c == "signature_invalid" || c == "identity_mismatch" ||
             c == "policy_rejected" || c == "no_image_policy" || c == "layer_not_encrypted") {
    why = "the image security policy refused the image";
  } else if (c == "manifest_unknown" || c == "not_found" || c == "blob_unknown" ||
             c == "image_not_found") {
    why = "the image does not exist";
  } else if (c == "registry_error") {
    why = "the registry could not be reached";
  } else if (c == "agent_unavailable") {
    why = "the enclave's agent went away";
  }
  std::string m = std::string(step) + ": ";
  if (!why.empty()) m += why + ": ";
  return m + e.code + ": " + e.message;
}

std::string new_id() { return hex_encode(crypto::random_bytes(6)); }

fs::path run_root(const std::string& flag) {
  return flag.empty() ? default_run_dir(std::getenv("XDG_RUNTIME_DIR")) : fs::path(flag);
}

// ---- one container's run -------------------------------------------------------------------

class Session {
 public:
  Session(const RunOptions& o, fs::path dir, RunState state, bool detached, int out_fd, int err_fd)
      : o_(o),
        dir_(std::move(dir)),
        state_(std::move(state)),
        detached_(detached),
        out_fd_(out_fd),
        err_fd_(err_fd),
        progress_(o.quiet, 2),
        container_id_(state_.id) {}
  ~Session() { teardown(); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Runs the container to its end; its exit code. A failure of the CLI's own steps leaves
  // through fail() (after the terminal is restored; the destructor tears down).
  int run(const std::string& init_data, const std::function<void()>& on_started);

  [[nodiscard]] const RunState& state() const { return state_; }

 private:
  [[noreturn]] void die(std::string_view step, const Error& e, bool overrides = false);
  void check_interrupted();
  void controller();
  void stdin_pump();
  void output_pump(bool err);
  void teardown();
  // sim-sgx: the agent enclave exports the bundle, the app enclave runs it.
  int run_app_enclave(const std::function<void()>& on_started);

  const RunOptions& o_;
  fs::path dir_;
  RunState state_;
  bool detached_;
  int out_fd_;
  int err_fd_;
  Progress progress_;
  Timings timings_;
  std::string container_id_;  // also the sandbox id
  RawTerminal terminal_;
  std::unique_ptr<runtime::Enclave> enclave_;
  std::unique_ptr<runtime::Enclave> app_;  // the two-enclave flow's app enclave
  std::atomic<pid_t> app_pid_{0};
  std::mutex mu_;  // guards client_
  std::shared_ptr<runtime::AgentClient> client_;
  bool sandbox_created_ = false;
  bool container_created_ = false;
  bool container_exited_ = false;
  std::atomic<bool> running_{false};
  std::atomic<int> interrupted_{0};  // the first terminating signal
  std::atomic<int> forwarded_{0};
  std::atomic<bool> forced_{false};
  int stop_pipe_[2] = {-1, -1};
  std::thread controller_;
  std::thread stdin_thread_;
  std::thread out_thread_;
  std::thread err_thread_;
  bool torn_down_ = false;
};

void Session::die(std::string_view step, const Error& e, bool overrides) {
  terminal_.restore();
  progress_.abandon();
  if (interrupted_ != 0) {
    std::cerr << kPrefix << ": interrupted (" << step << ")\n";
    throw CLI::RuntimeError(128 + interrupted_);
  }
  state_.error = explain(step, e, overrides);
  fail(kPrefix, exit_code_for(e.code), state_.error);
}

void Session::check_interrupted() {
  if (interrupted_ != 0) die("setup", Error{"interrupted", "interrupted"});
}

void Session::controller() {
  for (;;) {
    pollfd p[2] = {{g_sig_pipe[0], POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents != 0) return;
    unsigned char b = 0;
    if (::read(g_sig_pipe[0], &b, 1) != 1) continue;
    const int sig = b;
    std::shared_ptr<runtime::AgentClient> c;
    {
      std::lock_guard lock(mu_);
      c = client_;
    }
    if (sig == SIGWINCH) {
      winsize ws{};
      if (running_ && o_.tty && c && ::ioctl(0, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) {
        (void)c->resize_tty(container_id_, ws.ws_row, ws.ws_col);
      }
      continue;
    }
    if (!running_) {
      // during setup: stop what is in flight and tear down
      if (interrupted_ == 0) interrupted_ = sig == SIGUSR1 ? SIGKILL : sig;
      if (c) c->close();
      continue;
    }
    if (const pid_t app = app_pid_; app > 0) {
      // the two-enclave flow: the app enclave's first process forwards to the workload; the
      // second signal kills the app enclave (its PID namespace) outright
      if (sig == SIGWINCH) continue;
      if (sig == SIGUSR1 || forwarded_ > 0) {
        forced_ = true;
        if (interrupted_ == 0) interrupted_ = sig == SIGUSR1 ? SIGKILL : sig;
        (void)::kill(app, SIGKILL);
      } else {
        ++forwarded_;
        (void)::kill(app, sig);
      }
      continue;
    }
    if (sig == SIGUSR1 || forwarded_ > 0) {
      // the second one (or `coffer stop` after its grace): kill and tear down
      forced_ = true;
      if (interrupted_ == 0) interrupted_ = sig == SIGUSR1 ? SIGKILL : sig;
      if (c) {
        (void)c->signal_process(container_id_, SIGKILL);
        c->close();
      }
      continue;
    }
    ++forwarded_;
    if (c) (void)c->signal_process(container_id_, static_cast<std::uint32_t>(sig));
  }
}

void Session::stdin_pump() {
  std::shared_ptr<runtime::AgentClient> c;
  {
    std::lock_guard lock(mu_);
    c = client_;
  }
  std::string buf(64 * 1024, '\0');
  for (;;) {
    pollfd p[2] = {{0, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents != 0) return;
    const ssize_t n = ::read(0, buf.data(), buf.size());
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      (void)c->close_stdin(container_id_);
      return;
    }
    if (!c->write_stdin(container_id_, std::string_view(buf.data(), static_cast<std::size_t>(n)))) {
      return;  // the container's stdin is gone (it exited or closed it)
    }
  }
}

void Session::output_pump(bool err) {
  std::shared_ptr<runtime::AgentClient> c;
  {
    std::lock_guard lock(mu_);
    c = client_;
  }
  const int fd = err ? err_fd_ : out_fd_;
  for (;;) {
    auto chunk = c->read_output(container_id_, err);
    if (!chunk || (chunk->eof && chunk->data.empty())) return;
    if (!chunk->data.empty()) timings_.mark("first_output");
    (void)write_all(fd, chunk->data);  // a closed local stdout: keep draining
  }
}

int Session::run(const std::string& init_data, const std::function<void()>& on_started) {
  if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) {
    die("setup", Error{"io_error", std::string("pipe: ") + std::strerror(errno)});
  }
  install_signal_handlers();
  controller_ = std::thread([this] { controller(); });
  const bool overrides = !o_.command.empty() || !o_.env.empty();

  // 1. the enclave
  runtime::EnclaveSpec spec;
  spec.tee = o_.tee;
  spec.enclave_image = o_.enclave == "vm" ? o_.guest_image : o_.enclave_image;
  spec.vm_accel = o_.vm_accel;
  spec.sim_dir = o_.sim_dir;
  spec.init_data = init_data;
  spec.run_dir = dir_ / "enclave";
  spec.agent_log_level = o_.agent_log_level;
  spec.agent_log_file = dir_ / "agent.log";
  if (o_.tee == "sim-sgx") spec.storage_dir = dir_ / "storage";
  progress_.begin("launching the " + o_.enclave + " enclave (" + o_.tee + ")");
  auto enclave = runtime::launch_enclave(o_.enclave, spec, [this](const runtime::LaunchEvent& ev) {
    timings_.mark(ev.step);
    progress_.detail(ev.step + (ev.detail.empty() ? "" : ": " + ev.detail));
  });
  if (!enclave) die("launching the enclave", enclave.error());
  enclave_ = std::move(*enclave);
  {
    auto c = runtime::AgentClient::connect(enclave_->agent_socket());
    if (!c) die("connecting to the agent", c.error());
    std::lock_guard lock(mu_);
    client_ = std::move(*c);
  }
  auto& agent = *client_;
  auto details = agent.guest_details();
  if (!details) die("asking the agent for its details", details.error());
  timings_.mark("enclave_up");
  progress_.done("enclave up: agent pid " + std::to_string(enclave_->pid()) + ", tee " +
                 printable_excerpt(details->tee(), 32) + ", init-data " +
                 (details->init_data_digest().empty()
                      ? std::string("none")
                      : printable_excerpt(details->init_data_digest().substr(0, 16), 16) + "...") +
                 ", agent policy " +
                 (details->policy_from_init_data() ? "from init-data" : "built-in"));
  check_interrupted();

  // 2. attestation, keys and the image, inside the enclave
  progress_.begin("attesting and pulling " + o_.image);
  auto pulled = [&] {
    std::uint32_t shown_layer = 0;  // plain lines: one per layer seen in flight
    PullPoller poller(enclave_->agent_socket(), o_.image,
                      [&](const runtime::agentpb::PullInFlight& p) {
                        if (progress_.tty()) {
                          progress_.detail(describe(p));
                        } else if (p.layer_index() + 1 > shown_layer) {
                          shown_layer = p.layer_index() + 1;
                          progress_.plain("pulling " + describe(p));
                        }
                      });
    return agent.pull_image(o_.image);
  }();
  if (!pulled) die("pulling the image", pulled.error());
  timings_.mark("pulled");
  timings_.agent("attestation", pulled->attestation_us());
  timings_.agent("verify", pulled->verify_us());
  timings_.agent("key_fetch", pulled->key_fetch_us());
  timings_.agent("layers", pulled->layers_us());
  timings_.agent("pull", pulled->pull_us());
  progress_.done(std::string(pulled->from_cache() ? "image in the enclave's cache " : "pulled ") +
                 o_.image + " " + pulled->manifest_digest());
  check_interrupted();
  if (o_.tee == "sim-sgx") return run_app_enclave(on_started);

  // 3. sandbox and container
  progress_.begin("creating the container");
  if (auto s = agent.create_sandbox(container_id_); !s) die("creating the sandbox", s.error());
  sandbox_created_ = true;
  runtime::agentpb::CreateContainerRequest req;
  req.set_container_id(container_id_);
  req.set_sandbox_id(container_id_);
  req.set_image(o_.image);
  if (!o_.command.empty()) {
    for (const auto& a : o_.command) req.mutable_command()->add_values(a);
  }
  for (const auto& e : o_.env) req.add_env(e);
  req.set_terminal(o_.tty);
  req.set_open_stdin(!detached_);
  auto created = agent.create_container(req);
  if (!created) die("creating the container", created.error(), overrides);
  container_created_ = true;
  timings_.mark("created");
  progress_.done("created container " + state_.id);
  check_interrupted();

  // 4. start and stream (the TTY has its size before the container runs)
  winsize ws{};
  const bool sized = o_.tty && !detached_ && ::ioctl(0, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0;
  if (sized) {
    if (auto s = agent.resize_tty(container_id_, ws.ws_row, ws.ws_col); !s) {
      std::cerr << kPrefix << ": sizing the TTY: " << s.error().to_string() << "\n";
    }
  }
  progress_.begin("starting");
  if (auto s = agent.start_container(container_id_); !s) die("starting the container", s.error());
  timings_.mark("started");
  progress_.done("started");
  if (o_.tty && !detached_) terminal_.enter(0);
  running_ = true;
  state_.status = "running";
  if (on_started) on_started();
  if (interrupted_ != 0) {
    // a signal during setup that arrived after the last check: forward it now
    (void)agent.signal_process(container_id_, static_cast<std::uint32_t>(interrupted_.load()));
    ++forwarded_;
  }
  out_thread_ = std::thread([this] { output_pump(false); });
  err_thread_ = std::thread([this] { output_pump(true); });
  if (!detached_) stdin_thread_ = std::thread([this] { stdin_pump(); });

  auto exit = agent.wait_process(container_id_);
  timings_.mark("exited");
  out_thread_.join();  // the exit status counts only once the output is drained
  err_thread_.join();
  // A second signal killed the container: that, not the kill's own status (137) or the closed
  // connection, is how the run ended, whichever the wait saw first.
  if (forced_) {
    if (exit) container_exited_ = true;
    terminal_.restore();
    std::cerr << kPrefix << ": torn down after a second signal\n";
    return 128 + interrupted_;
  }
  if (!exit) die("waiting for the container", exit.error());
  container_exited_ = true;
  const int code = container_exit_code(exit->exit_code(), exit->signal());
  state_.status = "exited";
  state_.exit_code = code;
  return code;
}

int Session::run_app_enclave(const std::function<void()>& on_started) {
  const bool overrides = !o_.command.empty() || !o_.env.empty();
  auto& agent = *client_;

  // 3. the bundle, from the agent enclave into the encrypted filesystem on host storage
  progress_.begin(
      "exporting the bundle into the encrypted filesystem (key handover: " + o_.key_handover + ")");
  runtime::agentpb::ExportBundleRequest req;
  req.set_bundle_id(container_id_);
  req.set_key_handover(o_.key_handover);
  auto* c = req.mutable_container();
  c->set_image(o_.image);
  if (!o_.command.empty()) {
    for (const auto& a : o_.command) c->mutable_command()->add_values(a);
  }
  for (const auto& e : o_.env) c->add_env(e);
  runtime::agentpb::ExportBundleResponse exported;
  if (auto s = agent.call("ExportBundle", req, exported, std::chrono::minutes(10)); !s) {
    die("exporting the bundle", s.error(), overrides);
  }
  progress_.done("bundle " + container_id_ + ": " + std::to_string(exported.files()) + " files, " +
                 std::to_string(exported.bytes()) + " bytes, encrypted (generation " +
                 std::to_string(exported.generation()) + ")");
  check_interrupted();
  const auto stop_agent_enclave = [this] {
    std::shared_ptr<runtime::AgentClient> old;
    {
      std::lock_guard lock(mu_);
      old = std::move(client_);
    }
    if (old) old->close();
    if (enclave_) {
      if (auto s = enclave_->stop(std::chrono::seconds(5)); !s) {
        std::cerr << kPrefix << ": stopping the agent enclave: " << s.error().to_string() << "\n";
      }
      enclave_.reset();
    }
  };
  std::string agent_mr_enclave;
  if (o_.key_handover == "seal") {
    // the key is on the storage, sealed to the signer: the agent enclave has done its part
    stop_agent_enclave();
  } else {
    auto m = parse_json(enclave_->measurements_json());
    if (!m || !m->contains("sgx.mr_enclave") || !(*m)["sgx.mr_enclave"].is_string()) {
      die("launching the app enclave",
          Error{"internal_error", "the agent enclave reported no sgx.mr_enclave"});
    }
    agent_mr_enclave = (*m)["sgx.mr_enclave"].get<std::string>();
  }

  // 4. the app enclave: key, filesystem, workload
  runtime::EnclaveSpec spec;
  spec.tee = o_.tee;
  spec.enclave_image = o_.app_enclave_image;
  spec.sim_dir = o_.sim_dir;
  spec.run_dir = dir_ / "app-enclave";
  spec.agent_log_file = dir_ / "app-enclave.log";
  spec.storage_dir = dir_ / "storage";
  runtime::EnclaveSpec::AppRole role;
  role.args = {"--bundle", container_id_, "--key-handover", o_.key_handover};
  if (o_.key_handover == "local") {
    role.agent_dir = enclave_->agent_socket().parent_path();
    role.args.insert(role.args.end(), {"--agent-socket", "/run/coffer-agent/agent.sock",
                                       "--agent-mr-enclave", agent_mr_enclave});
  }
  role.stdin_fd = detached_ ? -1 : 0;
  role.stdout_fd = out_fd_;
  role.stderr_fd = err_fd_;
  spec.app = std::move(role);
  progress_.begin("launching the app enclave (" + o_.tee + ")");
  auto app = runtime::launch_enclave(o_.enclave, spec, [this](const runtime::LaunchEvent& ev) {
    progress_.detail(ev.step + (ev.detail.empty() ? "" : ": " + ev.detail));
  });
  if (!app) die("starting the app enclave", app.error());
  app_ = std::move(*app);
  app_pid_ = app_->pid();
  progress_.done("app enclave pid " + std::to_string(app_->pid()) + ": the filesystem key " +
                 (o_.key_handover == "seal" ? "unsealed (MRSIGNER policy)"
                                            : "handed over after local attestation") +
                 ", workload started");
  // local attestation done: the agent enclave is not needed any more
  if (enclave_) stop_agent_enclave();
  running_ = true;
  state_.status = "running";
  if (on_started) on_started();
  if (interrupted_ != 0) {
    (void)::kill(app_pid_, interrupted_.load());
    ++forwarded_;
  }
  auto status = app_->wait();
  if (forced_) {
    terminal_.restore();
    std::cerr << kPrefix << ": torn down after a second signal\n";
    return 128 + interrupted_;
  }
  if (!status) die("waiting for the app enclave", status.error());
  state_.status = "exited";
  state_.exit_code = *status;
  return *status;
}

void Session::teardown() {
  if (torn_down_) return;
  torn_down_ = true;
  running_ = false;
  terminal_.restore();
  app_pid_ = 0;
  if (app_) {
    if (auto s = app_->stop(std::chrono::seconds(5)); !s) {
      std::cerr << kPrefix << ": stopping the app enclave: " << s.error().to_string() << "\n";
    }
    app_.reset();
  }
  if (stop_pipe_[1] >= 0) (void)!::write(stop_pipe_[1], "x", 1);
  if (stdin_thread_.joinable()) stdin_thread_.join();
  std::shared_ptr<runtime::AgentClient> c;
  {
    std::lock_guard lock(mu_);
    c = std::move(client_);
  }
  if (c) c->close();
  if (out_thread_.joinable()) out_thread_.join();
  if (err_thread_.joinable()) err_thread_.join();
  if (controller_.joinable()) controller_.join();
  if (enclave_) {
    // a fresh connection: the one above may have been closed to unblock calls
    if (o_.timings) timings_.agent("peak_rss", peak_rss_kib(enclave_->pid()));
    auto fresh = runtime::AgentClient::connect(enclave_->agent_socket());
    if (fresh) {
      auto& a = **fresh;
      a.set_timeout(std::chrono::seconds(10));
      if (container_created_) {
        if (!container_exited_) {
          (void)a.signal_process(container_id_, SIGKILL);
          runtime::agentpb::WaitProcessRequest w;
          w.set_container_id(container_id_);
          runtime::agentpb::WaitProcessResponse wr;
          (void)a.call("WaitProcess", w, wr, std::chrono::seconds(10));
        }
        if (auto s = a.remove_container(container_id_); !s) {
          std::cerr << kPrefix << ": removing the container: " << s.error().to_string() << "\n";
        }
      }
      if (sandbox_created_) {
        if (auto s = a.remove_sandbox(container_id_); !s) {
          std::cerr << kPrefix << ": removing the sandbox: " << s.error().to_string() << "\n";
        }
      }
      a.close();
    }
    if (auto s = enclave_->stop(std::chrono::seconds(5)); !s) {
      std::cerr << kPrefix << ": stopping the enclave: " << s.error().to_string() << "\n";
    }
    enclave_.reset();
  }
  if (o_.timings && !detached_) {
    timings_.mark("torn_down");
    timings_.agent("launcher_peak_rss", peak_rss_kib(::getpid()));
    (void)write_all(2, timings_.report());
  }
  for (int& fd : stop_pipe_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
}

// ---- the command ---------------------------------------------------------------------------

std::string init_data_text(const RunOptions& o) {
  if (!o.init_data_file.empty()) {
    auto t = read_text_file(o.init_data_file, 512 * 1024);
    if (!t) fail(kPrefix, ExitCode::kUsage, "--init-data: " + t.error().to_string());
    return *t;
  }
  if (o.trustee.empty()) {
    fail(kPrefix, ExitCode::kUsage,
         "give --trustee URL (the KBS the enclave attests to) or a complete --init-data FILE");
  }
  InitDataOptions g;
  g.tee = o.tee;
  g.trustee_url = o.trustee;
  g.image_policy_uri = o.image_policy;
  g.require_encrypted = o.require_encrypted;
  g.insecure_registries = o.insecure_registries;
  if (!o.kbs_ca_file.empty()) {
    auto t = read_text_file(o.kbs_ca_file, 256 * 1024);
    if (!t) fail(kPrefix, ExitCode::kUsage, "--kbs-ca-file: " + t.error().to_string());
    g.kbs_cert_pem = *t;
  }
  if (!o.agent_policy_file.empty()) {
    auto t = read_text_file(o.agent_policy_file, 256 * 1024);
    if (!t) fail(kPrefix, ExitCode::kUsage, "--agent-policy: " + t.error().to_string());
    g.agent_policy_rego = *t;
  }
  auto text = generate_init_data(g);
  if (!text) fail(kPrefix, ExitCode::kUsage, text.error().to_string());
  return *text;
}

// The enclave files (<id>/enclave: the agent's socket directory and the enclave root's mount
// point) of containers whose supervisor died without tearing down (SIGKILL, OOM): its processes
// went with it (they die with the launcher), only these files stay. A live supervisor (same pid
// and start time) is never touched; the state and logs stay for `coffer ps -a`/`logs`/`rm`.
void sweep_dead_enclaves(const fs::path& root) {
  for (const auto& s : list_states(root)) {
    if (supervisor_alive(s)) continue;
    const fs::path enclave = root / s.id / "enclave";
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(enclave, ec))) continue;
    fs::remove_all(enclave, ec);  // does not follow symlinks
    if (ec)
      std::cerr << kPrefix << ": removing the stale " << enclave << ": " << ec.message() << "\n";
  }
}

// Creates `<root>/<id>` (0700) with its first state; a usage/conflict failure otherwise.
fs::path make_container_dir(const RunOptions& o, RunState& st) {
  const fs::path root = run_root(o.run_dir);
  std::error_code ec;
  // a run directory we create is private: it holds the logs of every container
  if (fs::create_directories(root, ec)) fs::permissions(root, fs::perms::owner_all, ec);
  if (ec || !fs::is_directory(root)) {
    fail(kPrefix, ExitCode::kUsage, "the run directory " + root.string() + ": " + ec.message());
  }
  sweep_dead_enclaves(root);
  const auto all = list_states(root);
  for (const auto& s : all) {
    if (s.name == st.name) {
      fail(kPrefix, ExitCode::kConflict,
           "a container named '" + st.name + "' exists (" + s.id + "): `coffer rm` it first");
    }
  }
  const fs::path dir = root / st.id;
  if (::mkdir(dir.c_str(), 0700) != 0) {
    fail(kPrefix, ExitCode::kConflict, dir.string() + ": " + std::strerror(errno));
  }
  if (auto s = write_state(dir, st); !s) fail(kPrefix, s.error());
  return dir;
}

void run_foreground(const RunOptions& o, const std::string& init_data, RunState st) {
  const fs::path dir = make_container_dir(o, st);
  int code = 0;
  {
    struct Cleanup {
      fs::path d;
      ~Cleanup() {
        std::error_code ec;
        fs::remove_all(d, ec);
      }
    } cleanup{dir};
    Session session(o, dir, st, false, 1, 2);
    code = session.run(init_data, [&] { (void)write_state(dir, session.state()); });
  }
  if (code != 0) throw CLI::RuntimeError(code);
}

// The supervisor: the grandchild of `coffer run --detach`, in its own session. It reports one
// line on `report_fd` ("ok" or the error) once the container runs or the run failed.
[[noreturn]] void supervise(const RunOptions& o, const std::string& init_data, RunState st,
                            const fs::path& dir, int report_fd) {
  const int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  const int log =
      ::open((dir / "container.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  const int slog =
      ::open((dir / "supervisor.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (devnull < 0 || log < 0 || slog < 0) {
    (void)write_all(report_fd, "cannot open the log files in " + dir.string() + "\n");
    ::_exit(1);
  }
  ::dup2(devnull, 0);
  ::dup2(slog, 1);
  ::dup2(slog, 2);
  st.supervisor_pid = ::getpid();
  st.supervisor_start = process_start_time(st.supervisor_pid).value_or(0);
  (void)write_state(dir, st);
  int code = 1;
  bool reported = false;
  RunOptions quiet = o;
  quiet.quiet = false;  // the supervisor's log keeps the plain progress lines
  try {
    Session session(quiet, dir, st, true, log, log);
    try {
      code = session.run(init_data, [&] {
        (void)write_state(dir, session.state());
        (void)write_all(report_fd, "ok\n");
        reported = true;
      });
      st = session.state();
    } catch (const CLI::RuntimeError& e) {
      code = e.get_exit_code();
      st = session.state();
      st.status = "failed";
    }
  } catch (const std::exception& e) {
    st.status = "failed";
    st.error = e.what();
  }
  if (!reported) {
    const std::string why = st.error.empty()
                                ? "the run failed (see " + (dir / "supervisor.log").string() + ")"
                                : st.error;
    (void)write_all(report_fd, why + "\n");
  }
  if (st.status != "failed") st.status = "exited";
  if (!st.exit_code) st.exit_code = code;
  (void)write_state(dir, st);
  ::_exit(0);
}

void run_detached(const RunOptions& o, const std::string& init_data, RunState st) {
  const fs::path dir = make_container_dir(o, st);
  std::cout.flush();
  std::cerr.flush();
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) {
    fail(kPrefix, ExitCode::kRefused, std::string("pipe: ") + std::strerror(errno));
  }
  const pid_t child = ::fork();
  if (child < 0) fail(kPrefix, ExitCode::kRefused, std::string("fork: ") + std::strerror(errno));
  if (child == 0) {
    ::close(report[0]);
    ::setsid();
    const pid_t grandchild = ::fork();
    if (grandchild != 0) ::_exit(grandchild < 0 ? 1 : 0);
    supervise(o, init_data, std::move(st), dir, report[1]);
  }
  ::close(report[1]);
  int status = 0;
  ::waitpid(child, &status, 0);
  std::string line;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(report[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    line.append(buf, static_cast<std::size_t>(n));
    if (line.find('\n') != std::string::npos) break;
  }
  ::close(report[0]);
  if (!line.empty() && line.back() == '\n') line.pop_back();
  if (line == "ok") {
    std::cout << st.id << "\n";
    return;
  }
  fail(kPrefix, ExitCode::kRefused,
       line.empty() ? "the supervisor exited before the container started" : line);
}

void run_command(const RunOptions& o) {
  if (o.tee != "sim-tdx" && o.tee != "sim-snp" && o.tee != "sim-sgx") {
    fail(kPrefix, ExitCode::kUsage, "--tee must be sim-tdx, sim-snp or sim-sgx");
  }
  if (o.tee.starts_with("sim-") && o.sim_dir.empty()) {
    fail(kPrefix, ExitCode::kUsage,
         "--sim-dir DIR is needed with a simulated TEE (the PKI of `coffer sim init`)");
  }
  for (const auto& e : o.env) {
    const auto eq = e.find('=');
    if (eq == std::string::npos || eq == 0) {
      fail(kPrefix, ExitCode::kUsage, "--env takes KEY=VALUE, not '" + printable(e) + "'");
    }
  }
  if (o.image.empty() && !o.print_init_data) fail(kPrefix, ExitCode::kUsage, "IMAGE is required");
  if (o.detach && o.tty) fail(kPrefix, ExitCode::kUsage, "--tty and --detach exclude each other");
  if (o.tee == "sim-sgx" && !o.print_init_data) {
    if (o.app_enclave_image.empty()) {
      fail(kPrefix, ExitCode::kUsage,
           "--tee sim-sgx runs the two-enclave flow: give the app enclave's image with "
           "--app-enclave-image DIR (or COFFER_APP_ENCLAVE_IMAGE; docs/two-enclave.md)");
    }
    if (o.tty) {
      fail(kPrefix, ExitCode::kUsage,
           "--tty is not supported by the two-enclave flow (sim-sgx) yet: the workload gets "
           "the CLI's stdin, stdout and stderr as they are");
    }
  } else if (o.key_handover != "seal") {
    fail(kPrefix, ExitCode::kUsage, "--key-handover is for --tee sim-sgx only");
  }
  if (o.enclave == "vm") {
    // the guest image is built for one TEE (its command line's coffer.tee, checked at launch)
    if (o.tee == "sim-sgx") {
      fail(kPrefix, ExitCode::kUsage,
           "--enclave vm runs a VM-based TEE: --tee must be sim-tdx or sim-snp");
    }
    if (o.guest_image.empty() && !o.print_init_data) {
      fail(kPrefix, ExitCode::kUsage,
           "--enclave vm needs the guest image: --guest-image DIR (or COFFER_GUEST_IMAGE; "
           "`coffer guest-image build`, docs/vm-enclave.md)");
    }
    // QEMU's user networking: the guest's 127.0.0.1 is its own; the host's loopback is 10.0.2.2
    std::vector<std::pair<std::string, std::string>> addresses = {{"the image", o.image}};
    if (o.init_data_file.empty()) {
      addresses.emplace_back("--trustee", o.trustee);
      for (const auto& r : o.insecure_registries) addresses.emplace_back("--insecure-registry", r);
    }
    for (const auto& [what, address] : addresses) {
      if (names_loopback(address)) {
        fail(kPrefix, ExitCode::kUsage,
             "--enclave vm: " + what + " '" + printable(address) +
                 "' names the loopback, which in the guest is its own: the guest reaches the "
                 "host's loopback as 10.0.2.2 (docs/vm-enclave.md)");
      }
    }
  } else if (o.vm_accel != "auto") {
    fail(kPrefix, ExitCode::kUsage, "--accel is for --enclave vm only");
  }
  const std::string init_data = init_data_text(o);
  if (o.print_init_data) {
    // what the enclave would get (for `coffer sim measure --init-data` and reference values)
    std::cout << init_data << std::flush;
    return;
  }
  RunState st;
  st.id = new_id();
  st.name = o.name.empty() ? st.id : o.name;
  if (!valid_container_name(st.name)) {
    fail(kPrefix, ExitCode::kUsage, "--name must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}");
  }
  st.image = o.image;
  st.supervisor_pid = ::getpid();
  st.supervisor_start = process_start_time(st.supervisor_pid).value_or(0);
  st.status = "starting";
  st.created_unix = std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
  if (o.detach) {
    run_detached(o, init_data, std::move(st));
  } else {
    run_foreground(o, init_data, std::move(st));
  }
}

// ---- ps, logs, stop, rm --------------------------------------------------------------------

RunState find_container(const std::string& run_dir, const std::string& ref,
                        std::string_view prefix) {
  auto s = resolve_container(list_states(run_root(run_dir)), ref);
  if (!s)
    fail(prefix, s.error().code == "container_not_found" ? ExitCode::kNotFound : ExitCode::kUsage,
         s.error().message);
  return *s;
}

bool is_live(const RunState& s) {
  return (s.status == "running" || s.status == "starting") && supervisor_alive(s);
}

void ps_command(const std::string& run_dir, bool all) {
  std::printf("%-12s  %-20s  %-40s  %-12s  %s\n", "ID", "NAME", "IMAGE", "STATUS", "PID");
  for (const auto& s : list_states(run_root(run_dir))) {
    const bool alive = supervisor_alive(s);
    const std::string status = display_status(s, alive);
    if (!all && status != "running" && status != "starting") continue;
    std::printf("%-12s  %-20s  %-40s  %-12s  %d\n", s.id.c_str(), s.name.c_str(),
                printable_excerpt(s.image, 40).c_str(), status.c_str(), s.supervisor_pid);
  }
}

bool wait_gone(const RunState& s, std::chrono::milliseconds limit) {
  const auto end = Clock::now() + limit;
  while (supervisor_alive(s)) {
    if (Clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

void logs_command(const std::string& run_dir, const std::string& ref, bool follow) {
  const RunState s = find_container(run_dir, ref, "coffer logs");
  const fs::path log = run_root(run_dir) / s.id / "container.log";
  const int fd = ::open(log.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (!follow) return;
    fail("coffer logs", ExitCode::kNotFound, "no log for " + s.id);
  }
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      if (!write_all(1, std::string_view(buf, static_cast<std::size_t>(n)))) break;
      continue;
    }
    if (!follow) break;
    auto now = read_state(run_root(run_dir) / s.id);
    if (!now || !is_live(*now)) {
      // drain what the supervisor wrote last, then stop
      ssize_t m = 0;
      while ((m = ::read(fd, buf, sizeof buf)) > 0) {
        (void)write_all(1, std::string_view(buf, static_cast<std::size_t>(m)));
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::close(fd);
}

void stop_command(const std::string& run_dir, const std::string& ref, int timeout_s) {
  const RunState s = find_container(run_dir, ref, "coffer stop");
  if (!is_live(s)) {
    std::cout << s.id << "\n";
    return;
  }
  // is_live() checked the pid's start time: the signals go to the supervisor, not a reused pid
  ::kill(s.supervisor_pid, SIGTERM);  // forwarded to the container
  if (!wait_gone(s, std::chrono::seconds(timeout_s))) {
    if (supervisor_alive(s)) ::kill(s.supervisor_pid, SIGUSR1);  // kill and tear down
    if (!wait_gone(s, std::chrono::seconds(20))) {
      if (supervisor_alive(s)) ::kill(s.supervisor_pid, SIGKILL);
      fail("coffer stop", ExitCode::kRefused,
           "the supervisor of " + s.id + " did not tear down in time and was killed");
    }
  }
  std::cout << s.id << "\n";
}

void rm_command(const std::string& run_dir, const std::string& ref, bool force) {
  const RunState s = find_container(run_dir, ref, "coffer rm");
  if (is_live(s)) {
    if (!force) {
      fail("coffer rm", ExitCode::kConflict,
           s.id + " is running: `coffer stop` it first, or `coffer rm -f`");
    }
    stop_command(run_dir, s.id, 0);
  }
  std::error_code ec;
  fs::remove_all(run_root(run_dir) / s.id, ec);
  if (ec) fail("coffer rm", ExitCode::kRefused, ec.message());
  sweep_dead_enclaves(run_root(run_dir));
  std::cout << s.id << "\n";
}

void add_run_dir(CLI::App* cmd, std::string& dir) {
  cmd->add_option("--run-dir", dir,
                  "containers' state (default $XDG_RUNTIME_DIR/coffer, else /run/coffer)")
      ->envname("COFFER_RUN_DIR");
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  auto* run = app.add_subcommand(
      "run", "Run a confidential container: enclave, attestation, pull, start (docs/run.md)");
  run->add_option("--tee", o->tee, "sim-tdx, sim-snp or sim-sgx (a signed enclave image)")
      ->capture_default_str();
  run->add_option("--enclave", o->enclave,
                  "the enclave kind: process, or vm (a QEMU guest, docs/vm-enclave.md)")
      ->check(CLI::IsMember({"process", "vm"}))
      ->capture_default_str();
  run->add_option("--enclave-image", o->enclave_image,
                  "the enclave image directory (`coffer enclave build`)")
      ->envname("COFFER_ENCLAVE_IMAGE");
  run->add_option("--guest-image", o->guest_image,
                  "--enclave vm: the guest image directory (`coffer guest-image build` for the "
                  "same --tee); the guest reaches the host's loopback as 10.0.2.2")
      ->envname("COFFER_GUEST_IMAGE");
  run->add_option("--accel", o->vm_accel,
                  "--enclave vm: QEMU's accelerator: auto (KVM only if a probe guest runs under "
                  "it, else TCG), tcg, or kvm")
      ->check(CLI::IsMember({"auto", "tcg", "kvm"}))
      ->capture_default_str();
  run->add_option("--app-enclave-image", o->app_enclave_image,
                  "sim-sgx: the app enclave's image (`coffer enclave build --no-crun` of "
                  "coffer-app-enclave, signed by the agent enclave's signer)")
      ->envname("COFFER_APP_ENCLAVE_IMAGE");
  run->add_option("--key-handover", o->key_handover,
                  "sim-sgx: how the filesystem key reaches the app enclave: seal (MRSIGNER "
                  "sealing) or local (local attestation with the agent enclave)")
      ->check(CLI::IsMember({"seal", "local"}))
      ->capture_default_str();
  run->add_option("--sim-dir", o->sim_dir, "the simulation PKI (`coffer sim init --dir`)")
      ->envname("COFFER_SIM_DIR");
  run->add_option("--trustee", o->trustee, "the trustee (KBS) URL the enclave attests to")
      ->transform(http_url());
  run->add_option("--kbs-ca-file", o->kbs_ca_file, "the CA of an https trustee (PEM)")
      ->envname("COFFER_KBS_CA_FILE");
  run->add_option("--image-policy", o->image_policy,
                  "kbs:///repo/type/tag of the image security policy (policy.json)");
  run->add_flag("--require-encrypted", o->require_encrypted, "refuse images with plain layers");
  run->add_option("--insecure-registry", o->insecure_registries,
                  "HOST[:PORT] the enclave may pull from over plain HTTP (repeat)");
  run->add_option("--agent-policy", o->agent_policy_file,
                  "the agent policy (rego) to put in the generated init-data");
  auto* idata = run->add_option("--init-data", o->init_data_file,
                                "CoCo init-data TOML as it is (instead of generating one)");
  // --kbs-ca-file is not among them: COFFER_KBS_CA_FILE, shared by every KBS command, may be set
  // in the environment; with --init-data it is not used.
  for (const char* opt : {"--trustee", "--image-policy", "--require-encrypted",
                          "--insecure-registry", "--agent-policy"}) {
    idata->excludes(run->get_option(opt));
  }
  run->add_flag("--print-init-data", o->print_init_data,
                "print the init-data the enclave would get and exit (for reference values)");
  run->add_option("--env,-e", o->env, "KEY=VALUE for the container (repeat; policy-checked)");
  run->add_flag("--tty,-t", o->tty, "a TTY for the container (local terminal in raw mode)");
  run->add_flag("--detach,-d", o->detach, "run in the background (coffer ps/logs/stop/rm)");
  run->add_option("--name", o->name, "a name for the container");
  run->add_flag("--quiet,-q", o->quiet, "no progress");
  run->add_flag("--timings", o->timings,
                "print where the time went (launch steps, the agent's pull) at the end");
  run->add_option("--agent-log-level", o->agent_log_level, "the agent's log level")
      ->capture_default_str();
  add_run_dir(run, o->run_dir);
  run->add_option("IMAGE", o->image, "the image reference (docker://...)");
  run->add_option("COMMAND", o->command, "the command instead of the image's (after --)");
  run->callback([o] { run_command(*o); });

  auto dir = std::make_shared<std::string>();
  auto all = std::make_shared<bool>(false);
  auto* ps = app.add_subcommand("ps", "List the containers of `coffer run`");
  add_run_dir(ps, *dir);
  ps->add_flag("--all,-a", *all, "exited ones too");
  ps->callback([dir, all] { ps_command(*dir, *all); });

  auto ref = std::make_shared<std::string>();
  auto follow = std::make_shared<bool>(false);
  auto* logs = app.add_subcommand("logs", "A detached container's output");
  add_run_dir(logs, *dir);
  logs->add_flag("--follow,-f", *follow, "keep following until it exits");
  logs->add_option("CONTAINER", *ref, "id, id prefix or name")->required();
  logs->callback([dir, ref, follow] { logs_command(*dir, *ref, *follow); });

  auto timeout = std::make_shared<int>(10);
  auto* stop = app.add_subcommand("stop", "Stop a detached container (SIGTERM, then kill)");
  add_run_dir(stop, *dir);
  stop->add_option("--time,-t", *timeout, "seconds before it is killed")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  stop->add_option("CONTAINER", *ref, "id, id prefix or name")->required();
  stop->callback([dir, ref, timeout] { stop_command(*dir, *ref, *timeout); });

  auto force = std::make_shared<bool>(false);
  auto* rm = app.add_subcommand("rm", "Remove a stopped container's state and logs");
  add_run_dir(rm, *dir);
  rm->add_flag("--force,-f", *force, "stop it first if it runs");
  rm->add_option("CONTAINER", *ref, "id, id prefix or name")->required();
  rm->callback([dir, ref, force] { rm_command(*dir, *ref, *force); });
}

}  // namespace coffer::cli
