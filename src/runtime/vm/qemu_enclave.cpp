#include "runtime/vm/qemu_enclave.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "core/bytes.h"
#include "core/file.h"
#include "evidence/sim/measure.h"
#include "evidence/sim/quote_service.h"
#include "evidence/sim/sim_pki.h"
#include "net/ttrpc/frame.h"
#include "net/unix_socket.h"
#include "runtime/vm/qemu_spawn.h"
#include "ttrpc/ttrpc.pb.h"

namespace coffer::runtime::vm {

namespace {

namespace fs = std::filesystem;

// HealthResponse{status: "SERVING"} (proto/coffer/agent/v1/agent.proto): field 1, length 7.
constexpr std::string_view kServing{"\x0a\x07SERVING", 9};
constexpr std::size_t kMaxCmdline = 4096;

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

void report(const LaunchObserver& observer, std::string step, std::string detail) {
  if (observer) observer(LaunchEvent{std::move(step), std::move(detail)});
}

// The last lines of a log, printable, for error messages.
std::string log_tail(const fs::path& log, std::size_t max_bytes = 1500) {
  auto text = read_text_file(log, std::size_t{64} << 20);
  if (!text || text->empty()) return "(empty)";
  std::string_view t(*text);
  if (t.size() > max_bytes) {
    t.remove_prefix(t.size() - max_bytes);
    if (const auto nl = t.find('\n'); nl != std::string_view::npos) t.remove_prefix(nl + 1);
  }
  return printable_excerpt(t, max_bytes);
}

std::string cmdline_value(std::string_view cmdline, std::string_view key) {
  std::size_t pos = 0;
  while (pos < cmdline.size()) {
    auto end = cmdline.find(' ', pos);
    if (end == std::string_view::npos) end = cmdline.size();
    const auto w = cmdline.substr(pos, end - pos);
    if (w.size() > key.size() && w.starts_with(key) && w[key.size()] == '=') {
      return std::string(w.substr(key.size() + 1));
    }
    pos = end + 1;
  }
  return {};
}

class VmEnclave final : public Enclave {
 public:
  VmEnclave() = default;
  ~VmEnclave() override {
    (void)stop(std::chrono::seconds(3));
    if (pidfd_ >= 0) ::close(pidfd_);
  }
  VmEnclave(const VmEnclave&) = delete;
  VmEnclave& operator=(const VmEnclave&) = delete;

  [[nodiscard]] fs::path agent_socket() const override { return agent_socket_; }
  [[nodiscard]] std::string measurements_json() const override { return measurements_; }
  [[nodiscard]] pid_t pid() const override { return pid_; }

  // QEMU's exit status (0 when the guest powered off).
  Result<int> wait() override {
    {
      std::lock_guard lock(mu_);
      if (status_) return *status_;
      if (pidfd_ < 0) return make_error("not_running", "the enclave was not started");
    }
    pollfd pfd{pidfd_, POLLIN, 0};
    while (::poll(&pfd, 1, -1) < 0 && errno == EINTR) {
    }
    std::lock_guard lock(mu_);
    return reap(true);
  }

  // A clean stop first: "poweroff" on the control port makes the guest's init stop the agent
  // and power off (QEMU then exits 0), within `grace`. A guest that does not (or a VM that never
  // became ready) gets SIGTERM (QEMU exits at once; the guest's RAM goes with it), then SIGKILL.
  Status stop(std::chrono::milliseconds grace) override {
    std::lock_guard lock(mu_);
    if (pidfd_ >= 0 && !status_) {
      pollfd pfd{pidfd_, POLLIN, 0};
      bool asked = false;
      if (grace.count() > 0) {
        static constexpr std::string_view kPowerOff = "poweroff\n";
        std::lock_guard control_lock(control_mu_);
        asked = control_fd_ >= 0 && ::send(control_fd_, kPowerOff.data(), kPowerOff.size(),
                                           MSG_NOSIGNAL) == static_cast<ssize_t>(kPowerOff.size());
      }
      if (asked) {
        const int ms = static_cast<int>(grace.count());
        while (::poll(&pfd, 1, ms) < 0 && errno == EINTR) {
        }
      }
      if (!reap(false)) {
        (void)::syscall(SYS_pidfd_send_signal, pidfd_, SIGTERM, nullptr, 0);
        while (::poll(&pfd, 1, 1000) < 0 && errno == EINTR) {
        }
        if (!reap(false)) {
          (void)::syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0);
          (void)reap(true);
        }
      }
    }
    teardown();
    return ok();
  }

  // The exit status, once known. `block`: wait for the exit (else only look).
  Result<int> reap(bool block) {
    if (status_) return *status_;
    if (pidfd_ < 0) return make_error("not_running", "the enclave was not started");
    siginfo_t info{};
    for (;;) {
      const int rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_), &info,
                              WEXITED | (block ? 0 : WNOHANG));
      if (rc == 0) break;
      if (errno == EINTR) continue;
      return make_error("io_error", errno_text("waiting for QEMU"));
    }
    if (info.si_pid == 0) return make_error("running", "QEMU is running");
    status_ = info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
    return *status_;
  }

  void teardown() {
    if (torn_down_) return;
    torn_down_ = true;
    stop_mux();
    stop_port_bridge();
    std::error_code ec;
    for (const auto& f : created_files_) fs::remove(f, ec);
    if (created_run_dir_) fs::remove(run_dir_, ec);
  }

  // The launcher's side of the guest's two service ports, answered in this process by one
  // thread: "coffer.control" (always; QEMU exposes it at control_socket_) answers the guest
  // init's init-data request and carries the host's "poweroff" (stop()); "coffer.quote" (the
  // simulated TEEs; at quote_socket_) carries the simulated TEE's quote service. One connection
  // per port for the VM's life (a port is one stream; a port without a host side reads as end of
  // file in the guest, so the connections are made as soon as QEMU has created the sockets, before
  // the guest runs). One JSON line per request and per answer (evidence/sim/quote_service.h).
  void start_port_bridge(std::unique_ptr<evidence::sim::QuoteService> service) {
    quote_service_ = std::move(service);
    if (::pipe2(bridge_wake_, O_CLOEXEC) != 0) return;
    bridge_thread_ = std::thread([this] { port_bridge(); });
  }
  void stop_port_bridge() {
    if (!bridge_thread_.joinable()) return;
    (void)::write(bridge_wake_[1], "x", 1);
    bridge_thread_.join();
    ::close(bridge_wake_[0]);
    ::close(bridge_wake_[1]);
    std::lock_guard lock(control_mu_);
    if (control_fd_ >= 0) ::close(control_fd_);
    control_fd_ = -1;
  }
  // Connects to a socket QEMU creates; -1 when stopped first.
  int connect_port(const fs::path& socket) {
    for (;;) {
      if (auto addr = net::unix_address(socket); addr) {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 &&
            ::connect(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) == 0) {
          return fd;
        }
        if (fd >= 0) ::close(fd);
      }
      pollfd w{bridge_wake_[0], POLLIN, 0};
      if (::poll(&w, 1, 20) > 0) return -1;
    }
  }
  // One request line of a port: its answer.
  Json answer_port(bool control, const std::string& line) {
    auto request =
        parse_json(line, {.max_bytes = evidence::sim::kMaxQuoteRequestBytes, .max_depth = 8});
    if (!request) {
      return Json{{"error",
                   {{"code", "bad_request"},
                    {"message", "request is not JSON: " + request.error().message}}}};
    }
    if (!control) {
      ++quote_requests_;
      return quote_service_->handle(*request);
    }
    if (request->is_object() && request->value("op", "") == "init_data") {
      // the guest's init asks once, before the agent starts; MRCONFIGID / HOST_DATA bind it
      return Json{
          {"init_data", init_data_ ? Json(base64_encode(as_bytes(*init_data_))) : Json(nullptr)}};
    }
    return Json{{"error", {{"code", "bad_request"}, {"message", "unknown control request"}}}};
  }
  // One of the bridge's ports: its connection and the request line being read.
  struct BridgePort {
    bool control;
    int fd;
    std::string buffer;
    bool discarding = false;  // inside a line over the limit
  };
  void port_bridge() {
    std::vector<BridgePort> ports;
    const int control = connect_port(control_socket_);
    if (control < 0) return;
    {
      std::lock_guard lock(control_mu_);
      control_fd_ = control;
    }
    ports.push_back(BridgePort{true, control, {}});
    if (quote_service_) {
      const int quote = connect_port(quote_socket_);
      if (quote < 0) return;
      ports.push_back(BridgePort{false, quote, {}});
    }
    char chunk[4096];
    for (;;) {
      std::vector<pollfd> fds;
      for (const auto& p : ports) fds.push_back({p.fd, POLLIN, 0});
      fds.push_back({bridge_wake_[0], POLLIN, 0});
      if (::poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (fds.back().revents != 0) break;
      bool gone = false;
      for (std::size_t i = 0; i < ports.size() && !gone; ++i) {
        if (fds[i].revents == 0) continue;
        auto& port = ports[i];
        const ssize_t n = ::read(port.fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          gone = true;  // QEMU is gone
          break;
        }
        port.buffer.append(chunk, static_cast<std::size_t>(n));
        for (auto nl = port.buffer.find('\n'); nl != std::string::npos;
             nl = port.buffer.find('\n')) {
          const std::string line = port.buffer.substr(0, nl);
          port.buffer.erase(0, nl + 1);
          if (port.discarding) {
            port.discarding = false;
            continue;
          }
          if (!write_line(port, answer_port(port.control, line).dump())) gone = true;
        }
        if (port.buffer.size() > evidence::sim::kMaxQuoteRequestBytes) {
          // the port cannot be closed and reopened: answer, then skip to the end of that line
          (void)write_line(
              port,
              Json{{"error", {{"code", "too_large"}, {"message", "request line over 64 KiB"}}}}
                  .dump());
          port.buffer.clear();
          port.discarding = true;
        }
      }
      if (gone) break;
    }
    for (const auto& p : ports) {
      if (!p.control) ::close(p.fd);  // the control connection closes in stop_port_bridge
    }
  }
  bool write_line(const BridgePort& port, const std::string& line) {
    // stop() writes "poweroff" on the control connection from another thread
    std::unique_lock lock(control_mu_, std::defer_lock);
    if (port.control) lock.lock();
    return evidence::sim::write_all(port.fd, line + "\n");
  }

  // The agent's socket for the host (agent_socket_): the virtio-serial port is one byte stream
  // that QEMU lets one host connection use at a time, and ttrpc stream ids start at 1 on every
  // connection. This thread holds the one connection to the port (port_socket_) and accepts any
  // number of clients on agent_socket_: each request gets a stream id unique on the port and
  // its answer goes back to its client under the client's own id; the answers to a client that
  // has gone are dropped (a late answer never reaches another client).
  Status start_mux() {
    const auto paddr = COFFER_TRY(net::unix_address(port_socket_));
    const auto laddr = COFFER_TRY(net::unix_address(agent_socket_));
    // Normally the readiness probe's connection, kept: a new host connection would make the
    // agent reopen the port, and what arrived before it had would be lost.
    if (port_fd_ < 0) {
      port_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (port_fd_ < 0 ||
          ::connect(port_fd_, reinterpret_cast<const sockaddr*>(&paddr), sizeof paddr) != 0) {
        return make_error("io_error", errno_text("connecting to the agent's port"));
      }
    }
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0 ||
        ::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&laddr), sizeof laddr) != 0 ||
        ::listen(listen_fd_, 16) != 0) {
      return make_error("io_error", errno_text("listening on " + agent_socket_.string()));
    }
    if (::pipe2(mux_wake_, O_CLOEXEC) != 0) return make_error("io_error", errno_text("pipe"));
    mux_thread_ = std::thread([this] { mux(); });
    return ok();
  }
  void stop_mux() {
    if (mux_thread_.joinable()) {
      (void)::write(mux_wake_[1], "x", 1);
      mux_thread_.join();
    }
    for (int* fd : {&port_fd_, &listen_fd_, &mux_wake_[0], &mux_wake_[1]}) {
      if (*fd >= 0) ::close(*fd);
      *fd = -1;
    }
  }
  static bool send_frame(int fd, const net::ttrpc::Frame& f, std::uint32_t stream_id) {
    std::string out(net::ttrpc::kHeaderBytes, '\0');
    net::ttrpc::FrameHeader h = f.header;
    h.stream_id = stream_id;
    h.length = static_cast<std::uint32_t>(f.payload.size());
    net::ttrpc::encode_header(h, reinterpret_cast<std::uint8_t*>(out.data()));
    out += f.payload;
    return evidence::sim::write_all(fd, out);
  }
  void mux() {
    struct Client {
      int fd = -1;
      net::ttrpc::FrameDecoder decoder;
    };
    struct Route {
      std::uint64_t client = 0;
      std::uint32_t stream_id = 0;
    };
    std::map<std::uint64_t, Client> clients;
    std::map<std::uint32_t, Route> routes;  // port stream id -> the client's call
    std::uint64_t next_client = 1;
    std::uint32_t next_id = first_stream_id_;  // after the probe's (a late answer is dropped)
    net::ttrpc::FrameDecoder port_decoder;
    std::vector<net::ttrpc::Frame> frames;
    std::array<std::uint8_t, 65536> buf{};
    const auto drop = [&](std::uint64_t key) {
      ::close(clients[key].fd);
      clients.erase(key);
    };
    for (;;) {
      std::vector<pollfd> fds = {
          {mux_wake_[0], POLLIN, 0}, {port_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
      std::vector<std::uint64_t> keys;
      for (const auto& [key, c] : clients) {
        fds.push_back({c.fd, POLLIN, 0});
        keys.push_back(key);
      }
      if (::poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (fds[0].revents != 0) break;
      if (fds[1].revents != 0) {
        const ssize_t n = ::read(port_fd_, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // QEMU is gone
        port_decoder.feed(ByteView(buf.data(), static_cast<std::size_t>(n)), frames);
        for (const auto& f : frames) {
          auto r = routes.find(f.header.stream_id);
          if (r == routes.end()) continue;
          const Route route = r->second;
          if (f.header.type == static_cast<std::uint8_t>(net::ttrpc::FrameType::kResponse)) {
            routes.erase(r);
          }
          auto c = clients.find(route.client);
          if (c == clients.end() || f.oversized) continue;
          if (!send_frame(c->second.fd, f, route.stream_id)) drop(route.client);
        }
        frames.clear();
      }
      if (fds[2].revents != 0) {
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) clients[next_client++].fd = fd;
      }
      for (std::size_t i = 0; i < keys.size(); ++i) {
        if (fds[3 + i].revents == 0) continue;
        auto& c = clients[keys[i]];
        const ssize_t n = ::read(c.fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          drop(keys[i]);  // its calls' answers are dropped when they come
          continue;
        }
        c.decoder.feed(ByteView(buf.data(), static_cast<std::size_t>(n)), frames);
        for (const auto& f : frames) {
          if (f.oversized) continue;
          std::uint32_t id = 0;
          if (f.header.type == static_cast<std::uint8_t>(net::ttrpc::FrameType::kRequest)) {
            id = next_id;
            next_id = next_id >= 0x7ffffffdU ? 1 : next_id + 2;
            routes[id] = Route{keys[i], f.header.stream_id};
          } else {
            // data frames of a stream the client opened
            for (const auto& [pid, r] : routes) {
              if (r.client == keys[i] && r.stream_id == f.header.stream_id) id = pid;
            }
            if (id == 0) continue;
          }
          if (!send_frame(port_fd_, f, id)) {
            frames.clear();
            goto done;  // NOLINT(cppcoreguidelines-avoid-goto): the port is gone
          }
        }
        frames.clear();
      }
    }
  done:
    for (const auto& [key, c] : clients) ::close(c.fd);
  }

  pid_t pid_ = -1;
  int pidfd_ = -1;
  fs::path run_dir_, agent_socket_, port_socket_, console_log_, quote_socket_, control_socket_;
  std::mutex control_mu_;  // control_fd_: the bridge's connection to coffer.control
  int control_fd_ = -1;
  std::thread mux_thread_;
  int port_fd_ = -1, listen_fd_ = -1;
  std::uint32_t first_stream_id_ = 1;
  int mux_wake_[2] = {-1, -1};
  std::unique_ptr<evidence::sim::QuoteService> quote_service_;
  std::thread bridge_thread_;
  std::atomic<unsigned> quote_requests_{0};
  std::optional<std::string> init_data_;
  int bridge_wake_[2] = {-1, -1};
  std::vector<fs::path> created_files_;
  bool created_run_dir_ = false;
  std::string measurements_;

 private:
  std::mutex mu_;
  std::optional<int> status_;
  bool torn_down_ = false;
};

// A virtio-serial port NAME on a server socket chardev at SOCKET.
void add_port(std::vector<std::string>& args, const std::string& id, const std::string& name,
              const fs::path& socket) {
  args.insert(args.end(),
              {"-chardev", "socket,id=" + id + ",path=" + socket.string() + ",server=on,wait=off",
               "-device", "virtserialport,bus=vser0.0,chardev=" + id + ",name=" + name});
}

// The VM's command line: the ports coffer.agent and coffer.control, and coffer.quote when the
// TEE is simulated (quote_socket not empty).
std::vector<std::string> qemu_args(const VmOptions& o, const std::string& accel,
                                   const fs::path& image, const std::string& cmdline,
                                   const fs::path& console_log, const fs::path& agent_socket,
                                   const fs::path& control_socket, const fs::path& quote_socket) {
  const std::string mem = std::to_string(o.memory_mib) + "M";
  std::vector<std::string> args = {o.qemu,
                                   "-nodefaults",
                                   "-no-user-config",
                                   "-display",
                                   "none",
                                   "-machine",
                                   "pc,accel=" + accel + ",memory-backend=mem",
                                   "-cpu",
                                   "max",
                                   "-smp",
                                   std::to_string(o.vcpus),
                                   "-m",
                                   mem,
                                   "-object",
                                   "memory-backend-memfd,id=mem,size=" + mem,
                                   "-kernel",
                                   (image / "vmlinuz").string(),
                                   "-initrd",
                                   (image / "initrd").string(),
                                   "-append",
                                   cmdline,
                                   "-serial",
                                   "file:" + console_log.string(),
                                   "-no-reboot",
                                   "-device",
                                   "virtio-serial-pci,id=vser0",
                                   "-netdev",
                                   "user,id=net0",
                                   "-device",
                                   "virtio-net-pci,netdev=net0"};
  add_port(args, "agent", "coffer.agent", agent_socket);
  add_port(args, "control", "coffer.control", control_socket);
  if (!quote_socket.empty()) add_port(args, "quote", "coffer.quote", quote_socket);
  return args;
}

// One connection to the agent's port: Health every 2 s until one is answered SERVING; then the
// answers to the earlier requests are awaited (1 s at most). The port is one byte stream for the
// guest's whole life and the guest kernel drops what arrives before the agent opened it, so a
// request may never be answered; one that is answered late must be answered on this
// connection, not reach the next client (whose stream ids start at 1 again). Raw frames: the
// ttrpc client drops late answers without saying so. true: SERVING; false: the connection
// ended or the deadline passed; an error: nothing listens yet. On SERVING the connection is
// handed over in `kept_fd` (with the next free odd stream id) instead of being closed.
Result<bool> probe_health(const fs::path& socket, std::chrono::steady_clock::time_point deadline,
                          int& kept_fd, std::uint32_t& next_stream_id) {
  using Clock = std::chrono::steady_clock;
  const auto addr = COFFER_TRY(net::unix_address(socket));
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error("io_error", errno_text("socket"));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return make_error("not_listening", errno_text("connect"));
  }
  ::ttrpc::Request request;
  request.set_service("coffer.agent.v1.Agent");
  request.set_method("Health");
  const std::string payload = request.SerializeAsString();
  std::set<std::uint32_t> pending;
  std::uint32_t next_id = 1;
  std::optional<Clock::time_point> served_at;
  auto next_send = Clock::now();
  net::ttrpc::FrameDecoder decoder;
  std::vector<net::ttrpc::Frame> frames;
  std::array<std::uint8_t, 4096> buf{};
  bool result = false;
  for (;;) {
    const auto now = Clock::now();
    if (served_at && (pending.empty() || now - *served_at > std::chrono::seconds(1))) {
      result = true;
      break;
    }
    if (!served_at && now >= deadline) break;
    if (!served_at && now >= next_send) {
      if (!evidence::sim::write_all(
              fd, net::ttrpc::encode_frame(next_id, net::ttrpc::FrameType::kRequest, payload))) {
        break;
      }
      pending.insert(next_id);
      next_id += 2;
      next_send = now + std::chrono::seconds(2);
    }
    const auto until =
        served_at ? *served_at + std::chrono::seconds(1) : std::min(next_send, deadline);
    const auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count();
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::clamp<std::int64_t>(wait_ms, 1, 2000)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    decoder.feed(ByteView(buf.data(), static_cast<std::size_t>(n)), frames);
    for (const auto& f : frames) {
      if (f.header.type != static_cast<std::uint8_t>(net::ttrpc::FrameType::kResponse)) continue;
      pending.erase(f.header.stream_id);
      ::ttrpc::Response response;
      if (response.ParseFromString(f.payload) && response.status().code() == 0 &&
          response.payload() == kServing && !served_at) {
        served_at = Clock::now();
      }
    }
    frames.clear();
  }
  if (result) {
    kept_fd = fd;
    next_stream_id = next_id;
  } else {
    ::close(fd);
  }
  return result;
}

Status wait_ready(VmEnclave& e, const VmOptions& o) {
  const auto deadline = std::chrono::steady_clock::now() + o.ready_timeout;
  std::string last = "no answer";
  auto delay = std::chrono::milliseconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto status = e.reap(false); status) {
      return make_error("vm_exited", "the VM stopped (QEMU status " + std::to_string(*status) +
                                         ") before the agent answered Health; console log " +
                                         e.console_log_.string() + ":\n" +
                                         log_tail(e.console_log_));
    }
    if (auto probe = probe_health(e.port_socket_, deadline, e.port_fd_, e.first_stream_id_);
        probe) {
      if (*probe) return ok();
      last = "the connection to the port ended";
      // QEMU is going (its exit is reported above), or the agent restarted its session
      pollfd pfd{e.pidfd_, POLLIN, 0};
      while (::poll(&pfd, 1, 200) < 0 && errno == EINTR) {
      }
      continue;
    }
    // Readiness polling of a VM: nothing to wait on but its socket.
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(100));
  }
  return make_error("agent_not_ready", "the guest's agent did not answer Health within " +
                                           std::to_string(o.ready_timeout.count()) + " ms (" +
                                           last + "); console log " + e.console_log_.string() +
                                           ":\n" + log_tail(e.console_log_));
}

}  // namespace

Result<std::unique_ptr<Enclave>> launch_vm_enclave(const EnclaveSpec& spec,
                                                   const VmOptions& options,
                                                   const LaunchObserver& observer) {
  if (spec.run_dir.empty()) return make_error("usage", "the VM enclave needs a run directory");
  if (spec.app) return make_error("usage", "the VM enclave has no app role");
  const Accel wanted_accel = COFFER_TRY(parse_accel(spec.vm_accel));
  if (options.memory_mib < 64 || options.vcpus < 1) {
    return make_error("usage", "the VM needs at least 64 MiB and one vCPU");
  }
  // 1. the guest image
  const fs::path& image = spec.enclave_image;
  report(observer, "check_image", image.string());
  for (const char* f : {"vmlinuz", "initrd", "cmdline"}) {
    std::error_code ec;
    if (!fs::is_regular_file(image / f, ec)) {
      return make_error("bad_guest_image", (image / f).string() + " is missing");
    }
  }
  auto cmdline = read_text_file(image / "cmdline", kMaxCmdline);
  if (!cmdline) return std::unexpected(cmdline.error());
  const std::string guest_tee = cmdline_value(*cmdline, "coffer.tee");
  if (guest_tee != spec.tee) {
    return make_error("bad_guest_image", "the guest image runs the agent with coffer.tee=" +
                                             (guest_tee.empty() ? "(none)" : guest_tee) + ", not " +
                                             spec.tee);
  }
  const bool simulated = spec.tee == "sim-tdx" || spec.tee == "sim-snp";
  if (!simulated && spec.tee != "sample") {
    return make_error("not_supported",
                      "the VM enclave runs sim-tdx, sim-snp or sample, not " + spec.tee);
  }
  if (spec.init_data && !simulated) {
    return make_error("not_supported", "init-data needs a simulated TEE (sim-tdx, sim-snp)");
  }
  std::optional<evidence::sim::SimPki> pki;
  if (simulated) {
    if (spec.sim_dir.empty()) return make_error("usage", spec.tee + " needs the sim PKI directory");
    pki = COFFER_TRY(evidence::sim::load_sim_pki(spec.sim_dir));
  }
  // 2. what the VM will report
  report(observer, "measure", "kernel, initrd, command line");
  evidence::sim::EnclaveComponents c;
  c.kind = evidence::sim::EnclaveKind::kVm;
  c.kernel = image / "vmlinuz";
  c.initrd = image / "initrd";
  c.cmdline = *cmdline;
  c.init_data = spec.init_data;
  auto measured = COFFER_TRY(evidence::sim::measure_enclave(c));

  auto e = std::make_unique<VmEnclave>();
  e->measurements_ = measured.reference_values().dump();
  std::unique_ptr<evidence::sim::QuoteService> quote_service;
  if (pki) {
    quote_service = std::make_unique<evidence::sim::QuoteService>(
        std::move(*pki), std::move(measured), evidence::sim::QuoteServiceConfig{});
  }
  std::error_code ec;
  e->run_dir_ = spec.run_dir;
  if (!fs::exists(spec.run_dir, ec)) {
    fs::create_directories(spec.run_dir, ec);
    if (ec)
      return make_error("io_error", "creating " + spec.run_dir.string() + ": " + ec.message());
    e->created_run_dir_ = true;
  }
  fs::permissions(spec.run_dir, fs::perms::owner_all, ec);
  e->agent_socket_ = spec.run_dir / "agent.sock";
  e->port_socket_ = spec.run_dir / "agent-port.sock";
  if (e->port_socket_.string().size() >= 108) {
    return make_error("usage", "the run directory's path is too long for a Unix socket");
  }
  e->console_log_ =
      spec.agent_log_file.empty() ? spec.run_dir / "console.log" : spec.agent_log_file;
  const fs::path qemu_log = spec.run_dir / "qemu.log";
  e->quote_socket_ = spec.run_dir / "quote.sock";
  e->control_socket_ = spec.run_dir / "control.sock";
  fs::remove(e->control_socket_, ec);
  fs::remove(e->agent_socket_, ec);
  fs::remove(e->port_socket_, ec);
  fs::remove(e->quote_socket_, ec);
  e->created_files_ = {e->agent_socket_, e->port_socket_, e->quote_socket_, e->control_socket_,
                       qemu_log};
  if (spec.agent_log_file.empty()) e->created_files_.push_back(e->console_log_);

  // 3. QEMU, a child that dies with this thread
  AccelOptions accel_options;
  accel_options.qemu = options.qemu;
  accel_options.kernel = image / "vmlinuz";
  accel_options.cache_file = options.kvm_probe_cache;
  accel_options.scratch_dir = spec.run_dir;
  auto accel = choose_accel(wanted_accel, accel_options);
  if (!accel) return std::unexpected(accel.error());  // e's teardown removes the run dir
  report(observer, "start_vm", options.qemu + " (" + accel->reason + ")");
  const auto args =
      qemu_args(options, accel->accel, image, *cmdline, e->console_log_, e->port_socket_,
                e->control_socket_, quote_service ? e->quote_socket_ : fs::path());
  const int log_fd = ::open(qemu_log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (log_fd < 0) return make_error("io_error", errno_text("creating " + qemu_log.string()));
  auto spawned = spawn_qemu(args, log_fd);
  if (!spawned) {
    ::close(log_fd);
    return std::unexpected(spawned.error());
  }
  const pid_t pid = *spawned;
  ::close(log_fd);
  e->pid_ = pid;
  e->pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (e->pidfd_ < 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return make_error("launch_failed", errno_text("pidfd_open"));
  }
  e->init_data_ = options.delivered_init_data ? options.delivered_init_data : spec.init_data;
  const bool simulated_tee = quote_service != nullptr;
  e->start_port_bridge(std::move(quote_service));
  if (simulated_tee)
    report(observer, "quote_service", "answering the guest on its port coffer.quote");
  // 4. the agent through the port
  if (auto ready = wait_ready(*e, options); !ready) {
    // The console log stays (the error points at it); QEMU, the socket and its log go.
    std::erase(e->created_files_, e->console_log_);
    e->created_run_dir_ = false;
    (void)e->stop(std::chrono::milliseconds(0));
    auto err = ready.error();
    if (err.code == "vm_exited") {
      if (auto q = read_text_file(qemu_log, 1 << 20); q && !q->empty()) {
        err.message += "\nQEMU: " + printable_excerpt(*q, 1024);
      }
    }
    return std::unexpected(err);
  }
  if (auto m = e->start_mux(); !m) {
    (void)e->stop(std::chrono::milliseconds(0));
    return std::unexpected(m.error());
  }
  report(observer, "agent_ready",
         "Health: SERVING on " + e->agent_socket_.string() +
             (e->quote_service_ ? "; quote service requests answered: " +
                                      std::to_string(e->quote_requests_.load())
                                : std::string()));
  return std::unique_ptr<Enclave>(std::move(e));
}

}  // namespace coffer::runtime::vm
