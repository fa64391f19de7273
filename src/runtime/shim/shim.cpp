// containerd-shim-coffer-v2's actions: start, serve (the daemon), delete (shim.h).
#include "runtime/shim/shim.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <vector>

#include "core/bytes.h"
#include "core/fd.h"
#include "core/file.h"
#include "core/json.h"
#include "core/log.h"
#include "core/version.h"
#include "crypto/digest.h"
#include "github.com/containerd/containerd/runtime/v2/task/shim.pb.h"
#include "net/ttrpc/client.h"
#include "net/ttrpc/server.h"
#include "runtime/shim/events.h"
#include "runtime/shim/options.h"
#include "runtime/shim/task_service.h"

namespace coffer::runtime::shim {

namespace fs = std::filesystem;

namespace {

constexpr const char* kProgram = "containerd-shim-coffer-v2";
constexpr std::string_view kStateFile = "coffer-shim.json";

int g_wake[2] = {-1, -1};

extern "C" void on_stop_signal(int /*signo*/) {
  const int saved = errno;
  if (g_wake[1] >= 0) (void)!::write(g_wake[1], "s", 1);
  errno = saved;
}

extern "C" void on_sigpipe(int /*signo*/) {}

int fail(const std::string& message) {
  std::fprintf(stderr, "%s: %s\n", kProgram, message.c_str());
  return 1;
}

Result<std::string> read_stdin(std::size_t limit) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(0, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::string();  // no stdin (closed): no options
    if (n == 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > limit) return make_error("bad_runtime_options", "runtime options too large");
  }
}

// The configuration: the runtime options' config path, else $COFFER_SHIM_CONFIG, else defaults.
Result<ShimConfig> load_config(const std::optional<fs::path>& from_options) {
  fs::path path;
  if (from_options) {
    path = *from_options;
  } else if (const char* env = std::getenv("COFFER_SHIM_CONFIG"); env != nullptr && *env != 0) {
    path = env;
  }
  if (path.empty()) return ShimConfig{};
  auto text = read_text_file(path, 256 * 1024);
  if (!text) return wrap_error(text.error(), "the shim config " + path.string());
  auto c = parse_config(*text);
  if (!c) return wrap_error(c.error(), "the shim config " + path.string());
  return c;
}

bool answers(const fs::path& socket) {
  auto c = net::ttrpc::Client::connect_unix(socket);
  if (!c) return false;
  containerd::task::v2::ConnectRequest req;
  auto r = (*c)->call("containerd.task.v2.Task", "Connect", req.SerializeAsString(),
                      std::chrono::seconds(5));
  return r.has_value();
}

// The bundle's record of which shim serves it (for `delete`).
Status write_bundle_state(const fs::path& bundle, const fs::path& socket, const fs::path& pod_dir) {
  Json j = {{"socket", socket.string()}, {"pod_dir", pod_dir.string()}};
  const std::string text = j.dump();
  COFFER_TRY_STATUS(write_file_atomic(bundle / kStateFile, as_bytes(text), 0600));
  const std::string address = "unix://" + socket.string();
  return write_file_atomic(bundle / "address", as_bytes(address), 0600);
}

// The daemon's log: the bundle's `log` FIFO containerd reads (its own stderr), else a file.
void open_log(const fs::path& bundle, const fs::path& pod_dir) {
  int fd = ::open((bundle / "log").c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd >= 0) {
    const int flags = ::fcntl(fd, F_GETFL);
    (void)::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  } else {
    fd = ::open((pod_dir / "shim.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  }
  if (fd >= 0) {
    ::dup2(fd, 2);
    ::close(fd);
  }
}

// The daemon: serves until Shutdown (or SIGTERM/SIGINT), then tears the pod down. Reports "ok" or
// the reason it could not serve on `ready_fd`.
[[noreturn]] void serve(const ShimFlags& flags, const ShimConfig& config, const fs::path& bundle,
                        const fs::path& socket, const fs::path& pod_dir, int ready_fd) {
  ::setsid();
  const int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull >= 0) {
    ::dup2(devnull, 0);
    ::dup2(devnull, 1);
    ::close(devnull);
  }
  open_log(bundle, pod_dir);
  log::init(flags.debug ? "debug" : "info");
  if (::chdir(pod_dir.c_str()) != 0) {
    (void)write_all(ready_fd, "chdir " + pod_dir.string() + ": " + std::strerror(errno) + "\n");
    ::_exit(1);
  }
  if (::pipe2(g_wake, O_CLOEXEC | O_NONBLOCK) != 0) ::_exit(1);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  // a closed FIFO or socket must not kill the shim; handlers are not inherited across exec
  struct sigaction pipe_sa {};
  pipe_sa.sa_handler = on_sigpipe;
  sigemptyset(&pipe_sa.sa_mask);
  ::sigaction(SIGPIPE, &pipe_sa, nullptr);

  const char* ttrpc_address = std::getenv("TTRPC_ADDRESS");
  int code = 0;
  {
    Publisher events(ttrpc_address != nullptr ? ttrpc_address : "", flags.ns);
    TaskService service(config, flags.ns, pod_dir, events,
                        [] { (void)!::write(g_wake[1], "q", 1); });
    net::ttrpc::Server server;
    service.register_methods(server);
    if (auto s = server.listen_unix(socket); !s) {
      (void)write_all(ready_fd,
                      "listening on " + socket.string() + ": " + s.error().to_string() + "\n");
      ::_exit(1);
    }
    spdlog::info("{} {}: namespace {}, pod key {}, serving {}", kProgram, version(), flags.ns,
                 socket.stem().string(), socket.string());
    (void)write_all(ready_fd, "ok\n");
    ::close(ready_fd);
    for (;;) {
      pollfd p{g_wake[0], POLLIN, 0};
      if (::poll(&p, 1, -1) < 0 && errno != EINTR) break;
      char c = 0;
      if (::read(g_wake[0], &c, 1) == 1) {
        spdlog::info(c == 'q' ? "shutdown: no task left" : "stop signal: tearing the pod down");
        break;
      }
    }
    service.teardown();
    events.flush(std::chrono::seconds(5));
    server.stop();
  }
  std::error_code ec;
  fs::remove(socket, ec);
  fs::remove_all(pod_dir, ec);
  if (ec) {
    spdlog::warn("removing {}: {}", pod_dir.string(), ec.message());
    code = 1;
  }
  spdlog::info("exited");
  spdlog::shutdown();
  ::_exit(code);
}

int start(const ShimFlags& flags) {
  const fs::path bundle = flags.bundle.empty() ? fs::current_path() : fs::path(flags.bundle);
  auto spec = read_text_file(bundle / "config.json", kMaxSpecBytes);
  if (!spec) return fail("reading the bundle's config.json: " + spec.error().to_string());
  auto annotations = spec_annotations(*spec);
  if (!annotations) return fail(annotations.error().to_string());
  auto opts_bytes = read_stdin(kMaxRuntimeOptionsBytes);
  if (!opts_bytes) return fail(opts_bytes.error().to_string());
  auto config_path = parse_runtime_options(*opts_bytes);
  if (!config_path) return fail(config_path.error().to_string());
  auto config = load_config(*config_path);
  if (!config) return fail(config.error().to_string());

  const std::string pod = pod_of(flags.id, *annotations);
  if (!valid_id(pod)) return fail("bad_annotation: io.kubernetes.cri.sandbox-id is not an id");
  const std::string key = pod_key(flags.address, flags.ns, pod);
  const fs::path socket = config->run_dir / (key + ".sock");
  const fs::path pod_dir = config->run_dir / key;
  if (socket.string().size() >= 108) {
    return fail("bad_config: run_dir is too long for a Unix socket path (" + socket.string() + ")");
  }
  if (answers(socket)) {
    if (pod == flags.id) return fail("already_exists: a shim already serves " + flags.id);
    // a further container of a pod: the pod's shim and enclave serve it (as runc's shim groups)
    if (auto s = write_bundle_state(bundle, socket, pod_dir); !s)
      return fail(s.error().to_string());
    std::cout << "unix://" << socket.string() << std::flush;
    return 0;
  }
  if (pod != flags.id) {
    return fail("no shim serves pod " + pod + ": its sandbox must be created first");
  }
  std::error_code ec;
  fs::create_directories(config->run_dir, ec);
  if (ec) return fail("creating " + config->run_dir.string() + ": " + ec.message());
  fs::permissions(config->run_dir, fs::perms::owner_all, ec);
  if (::mkdir(pod_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return fail("creating " + pod_dir.string() + ": " + std::strerror(errno));
  }
  if (auto s = write_bundle_state(bundle, socket, pod_dir); !s) return fail(s.error().to_string());

  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return fail(std::string("pipe: ") + std::strerror(errno));
  std::cout.flush();
  const pid_t child = ::fork();
  if (child < 0) return fail(std::string("fork: ") + std::strerror(errno));
  if (child == 0) {
    ::close(ready[0]);
    serve(flags, *config, bundle, socket, pod_dir, ready[1]);
  }
  ::close(ready[1]);
  std::string line;
  char buf[1024];
  for (;;) {
    const ssize_t n = ::read(ready[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    line.append(buf, static_cast<std::size_t>(n));
    if (line.find('\n') != std::string::npos) break;
  }
  ::close(ready[0]);
  if (line != "ok\n") {
    fs::remove_all(pod_dir, ec);
    if (!line.empty() && line.back() == '\n') line.pop_back();
    return fail(line.empty() ? "the shim daemon exited before serving" : line);
  }
  // only the address on stdout: containerd reads it
  std::cout << "unix://" << socket.string() << std::flush;
  return 0;
}

// After the shim is gone (or to make sure it is): what it left, removed; a DeleteResponse.
int remove(const ShimFlags& flags) {
  const fs::path bundle = flags.bundle.empty() ? fs::current_path() : fs::path(flags.bundle);
  if (auto text = read_text_file(bundle / kStateFile, 64 * 1024); text) {
    auto j = parse_json(*text);
    if (j && j->is_object()) {
      const fs::path socket = json_optional_string(*j, "socket").value_or("");
      const fs::path pod_dir = json_optional_string(*j, "pod_dir").value_or("");
      // a live shim cleans up after itself; a dead one's processes died with it (PDEATHSIG)
      if (!socket.empty() && socket.extension() == ".sock" && !answers(socket)) {
        std::error_code ec;
        fs::remove(socket, ec);
        if (!pod_dir.empty() && pod_dir.parent_path() == socket.parent_path() &&
            pod_dir.filename() == socket.stem()) {
          fs::remove_all(pod_dir, ec);
        }
      }
    }
  }
  containerd::task::v2::DeleteResponse resp;
  resp.set_exit_status(128U + SIGKILL);
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  resp.mutable_exited_at()->set_seconds(
      std::chrono::duration_cast<std::chrono::seconds>(now).count());
  resp.mutable_exited_at()->set_nanos(static_cast<std::int32_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(now).count() % 1000000000));
  const std::string out = resp.SerializeAsString();
  return write_all(1, out) ? 0 : 1;
}

}  // namespace

std::string pod_key(std::string_view address, std::string_view ns, std::string_view pod) {
  std::string in(address);
  in.push_back('\0');
  in.append(ns);
  in.push_back('\0');
  in.append(pod);
  return hex_encode(crypto::sha256(as_bytes(in))).substr(0, 32);
}

int shim_main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto flags = parse_flags(args);
  if (!flags) return fail(flags.error().to_string());
  if (flags->version) {
    std::cout << version_line(kProgram) << "\n";
    return 0;
  }
  if (flags->action == "start") return start(*flags);
  if (flags->action == "delete") return remove(*flags);
  return fail("run by containerd: `start` starts the shim, `delete` cleans up after it");
}

}  // namespace coffer::runtime::shim
