// coffer-guest-init: PID 1 of the VM enclave's guest (docs/vm-enclave.md). It is /init in the
// initramfs that `coffer guest-image build` writes:
//   1. mounts proc, sysfs, devtmpfs, devpts, cgroup2 (crun) and tmpfs (/run, /tmp, /dev/shm:
//      container storage stays in guest RAM)
//   2. loads the kernel modules listed in /etc/coffer/modules, in that (dependency) order
//   3. brings up lo and, if present, eth0 as QEMU's user networking expects it (10.0.2.15/24,
//      gateway 10.0.2.2)
//   4. starts coffer-agent on the virtio-serial port named "coffer.agent", with the TEE given on
//      the kernel command line (coffer.tee=..., coffer.log=...); when the VM has a port named
//      "coffer.quote" (the simulated TEE's quote service, answered by the launcher), a proxy
//      serves it to the agent as the Unix socket /run/coffer-quote/quote.sock
//   5. reaps every child (orphans are re-parented to PID 1) and powers the VM off when the agent
//      exits (the agent exits when told to stop), or when any step above fails.
// It links coffer_core only (JSON and base64 for the init-data answer) and writes its messages to
// the console.
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "core/fd.h"
#include "core/json.h"

namespace {

namespace fs = std::filesystem;

void say(const std::string& msg) { std::fprintf(stderr, "coffer-guest-init: %s\n", msg.c_str()); }

std::string err(const std::string& what) { return what + ": " + std::strerror(errno); }

[[noreturn]] void power_off(const std::string& why) {
  say("powering off (" + why + ")");
  ::sync();
  ::reboot(RB_POWER_OFF);
  for (;;) ::pause();  // not PID 1 (a test run): nothing to power off
}

bool mount_fs(const char* src, const char* target, const char* type, unsigned long flags,
              const char* data = nullptr) {
  ::mkdir(target, 0755);
  if (::mount(src, target, type, flags, data) != 0 && errno != EBUSY) {
    say(err(std::string("mounting ") + type + " on " + target));
    return false;
  }
  return true;
}

bool load_modules() {
  std::ifstream list("/etc/coffer/modules");
  std::string path;
  while (std::getline(list, path)) {
    if (path.empty()) continue;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      say(err("opening " + path));
      return false;
    }
    const long rc = ::syscall(SYS_finit_module, fd, "", 0);
    const int saved = errno;
    ::close(fd);
    if (rc != 0 && saved != EEXIST) {
      errno = saved;
      say(err("loading " + path));
      return false;
    }
  }
  return true;
}

bool set_addr(int s, const char* ifname, unsigned long req, const char* addr) {
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  ::inet_pton(AF_INET, addr, &sin.sin_addr);
  std::memcpy(&ifr.ifr_addr, &sin, sizeof sin);
  if (::ioctl(s, req, &ifr) != 0) {
    say(err(std::string("configuring ") + ifname));
    return false;
  }
  return true;
}

bool link_up(int s, const char* ifname) {
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  if (::ioctl(s, SIOCGIFFLAGS, &ifr) != 0) return false;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) {
    say(err(std::string("bringing up ") + ifname));
    return false;
  }
  return true;
}

bool network_up() {
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    say(err("socket"));
    return false;
  }
  bool ok = link_up(s, "lo");
  if (ok && fs::exists("/sys/class/net/eth0")) {
    ok = set_addr(s, "eth0", SIOCSIFADDR, "10.0.2.15") &&
         set_addr(s, "eth0", SIOCSIFNETMASK, "255.255.255.0") && link_up(s, "eth0");
    if (ok) {
      rtentry rt{};
      sockaddr_in any{}, gw{};
      any.sin_family = AF_INET;
      gw.sin_family = AF_INET;
      ::inet_pton(AF_INET, "10.0.2.2", &gw.sin_addr);
      std::memcpy(&rt.rt_dst, &any, sizeof any);
      std::memcpy(&rt.rt_genmask, &any, sizeof any);
      std::memcpy(&rt.rt_gateway, &gw, sizeof gw);
      rt.rt_flags = RTF_UP | RTF_GATEWAY;
      char dev[] = "eth0";
      rt.rt_dev = dev;
      if (::ioctl(s, SIOCADDRT, &rt) != 0) {
        say(err("adding the default route"));
        ok = false;
      }
    }
  }
  ::close(s);
  return ok;
}

// /dev/vportNpM of the virtio-serial port with this name ("" if there is none).
std::string find_port(const std::string& name) {
  std::error_code ec;
  for (const auto& d : fs::directory_iterator("/sys/class/virtio-ports", ec)) {
    std::ifstream f(d.path() / "name");
    std::string n;
    std::getline(f, n);
    if (n == name) return "/dev/" + d.path().filename().string();
  }
  return {};
}

// The initramfs is the kernel's rootfs, which pivot_root(2) cannot leave, and crun pivots into
// each container's root. So PID 1 first moves the image into a tmpfs and makes that the root
// (what switch_root does), then runs itself again from there.
void move_to_tmpfs_root() {
  const char* newroot = "/.root";
  ::mkdir(newroot, 0755);
  if (::mount("tmpfs", newroot, "tmpfs", 0, "mode=0755") != 0)
    power_off(err("mounting the root tmpfs"));
  std::error_code ec;
  // directories, regular files and symlinks (the image holds nothing else; the kernel's own
  // /dev/console node is not copied: devtmpfs has one)
  for (const auto& top : fs::directory_iterator("/", ec)) {
    if (top.path() == newroot) continue;
    std::vector<fs::path> todo{top.path()};
    while (!todo.empty() && !ec) {
      const fs::path src = todo.back();
      todo.pop_back();
      const fs::path dst = fs::path(newroot) / src.relative_path();
      const auto st = fs::symlink_status(src, ec);
      if (ec) break;
      if (fs::is_directory(st)) {
        fs::create_directory(dst, ec);
        for (const auto& e : fs::directory_iterator(src, ec)) todo.push_back(e.path());
      } else if (fs::is_regular_file(st)) {
        fs::copy_file(src, dst, ec);
      } else if (fs::is_symlink(st)) {
        fs::copy_symlink(src, dst, ec);
      }
    }
    if (ec) power_off("copying " + top.path().string() + " to the tmpfs root: " + ec.message());
    fs::remove_all(top.path(), ec);  // frees the initramfs' memory as it goes
    ec.clear();
  }
  if (ec) power_off("reading the initramfs: " + ec.message());
  if (::chdir(newroot) != 0 || ::mount(".", "/", nullptr, MS_MOVE, nullptr) != 0 ||
      ::chroot(".") != 0 || ::chdir("/") != 0) {
    power_off(err("switching to the tmpfs root"));
  }
  char self[] = "/init";
  char* argv[] = {self, nullptr};
  char stage[] = "COFFER_INIT_STAGE=tmpfs-root";
  char* envp[] = {stage, nullptr};
  ::execve(self, argv, envp);
  power_off(err("running /init from the tmpfs root"));
}

// Set (in the environment of the second run) once the root is the tmpfs copy.
bool on_initramfs_root() { return ::getenv("COFFER_INIT_STAGE") == nullptr; }

using coffer::write_all;

constexpr std::size_t kMaxQuoteLine = 64 * 1024 + 1;

// The simulated TEE's quote service for the agent: a Unix socket in the guest whose clients'
// request lines go to the virtio-serial port "coffer.quote" (the launcher answers there), each
// answer line back. One client at a time, one request then its answer: the port's single stream
// stays in step.
[[noreturn]] void quote_proxy(int listen_fd, const std::string& port) {
  const int pfd = ::open(port.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (pfd < 0) {
    say(err("opening " + port));
    ::_exit(1);
  }
  std::string answers;
  std::array<char, 4096> buf{};
  for (;;) {
    const int c = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR) continue;
      say(err("quote proxy: accept"));
      ::_exit(1);
    }
    std::string requests;
    for (;;) {
      const auto nl = requests.find('\n');
      if (nl == std::string::npos) {
        if (requests.size() > kMaxQuoteLine) break;
        const ssize_t n = ::read(c, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        requests.append(buf.data(), static_cast<std::size_t>(n));
        continue;
      }
      if (!write_all(pfd, std::string_view(requests).substr(0, nl + 1))) {
        say(err("quote proxy: writing to " + port));
        ::_exit(1);
      }
      requests.erase(0, nl + 1);
      std::size_t end = answers.find('\n');
      while (end == std::string::npos) {
        const ssize_t n = ::read(pfd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          say("quote proxy: the host side of " + port + " is not connected");
          ::_exit(1);
        }
        answers.append(buf.data(), static_cast<std::size_t>(n));
        end = answers.find('\n');
      }
      const bool sent = write_all(c, std::string_view(answers).substr(0, end + 1));
      answers.erase(0, end + 1);
      if (!sent) break;
    }
    ::close(c);
  }
}

// The init-data the launcher hands in on the control port (a request of its own, before the
// agent runs). Empty: none. The TEE binds its digest (MRCONFIGID / HOST_DATA): the agent
// checks that before it uses any of it.
std::optional<std::string> fetch_init_data(const std::string& port) {
  const int pfd = ::open(port.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (pfd < 0) power_off(err("opening " + port));
  if (!write_all(pfd, "{\"op\":\"init_data\"}\n")) power_off(err("writing to " + port));
  std::string line;
  std::array<char, 4096> buf{};
  while (!line.contains('\n')) {
    if (line.size() > (std::size_t{1} << 20)) power_off("init-data answer over 1 MiB");
    const ssize_t n = ::read(pfd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) power_off("no init-data answer on " + port);
    line.append(buf.data(), static_cast<std::size_t>(n));
  }
  ::close(pfd);
  line.resize(line.find('\n'));
  auto answer = coffer::parse_json(line, {.max_bytes = std::size_t{1} << 20, .max_depth = 4});
  if (!answer || !answer->is_object() || !answer->contains("init_data")) {
    power_off("a bad init-data answer on " + port);
  }
  const auto& v = (*answer)["init_data"];
  if (v.is_null()) return std::nullopt;
  if (!v.is_string()) power_off("a bad init-data answer on " + port);
  auto bytes = coffer::base64_decode(v.get<std::string>());
  if (!bytes) power_off("a bad init-data answer on " + port);
  return std::string(bytes->begin(), bytes->end());
}

// Binds the agent's quote service socket and starts the proxy; its pid (-1 on failure).
pid_t start_quote_proxy(const std::string& port, const std::string& socket_path) {
  ::mkdir("/run/coffer-quote", 0700);
  const int l = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof addr.sun_path - 1);
  if (l < 0 || ::bind(l, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(l, 16) != 0) {
    say(err("quote proxy: " + socket_path));
    return -1;
  }
  const pid_t pid = ::fork();
  if (pid == 0) quote_proxy(l, port);
  ::close(l);
  return pid;
}

// The launcher's control port (docs/vm-enclave.md): "poweroff" asks for a clean stop. The agent
// gets SIGTERM (it stops serving and exits; init then powers off, as for any agent exit), and
// SIGKILL if it is still there 2 s later. Runs as a child of init, after init's init-data
// request on the same port.
[[noreturn]] void watch_control(const std::string& port, pid_t agent) {
  std::string line;
  for (;;) {
    const int fd = ::open(port.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) power_off(err("opening " + port));
    std::array<char, 64> buf{};
    for (;;) {
      const ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // the host side is not connected (yet, or any more)
      line.append(buf.data(), static_cast<std::size_t>(n));
      if (line.size() > 256) line.erase(0, line.size() - 256);
      if (line.find("poweroff\n") != std::string::npos) {
        say("the host asked for power-off: stopping coffer-agent");
        ::kill(agent, SIGTERM);
        for (int i = 0; i < 200 && ::kill(agent, 0) == 0; ++i) {
          ::usleep(10000);  // NOLINT: the agent is init's child, not ours: nothing to wait on
        }
        if (::kill(agent, 0) == 0) {
          say("coffer-agent did not stop within 2 s: killing it");
          ::kill(agent, SIGKILL);
        }
        ::_exit(0);  // init powers off when the agent has exited
      }
    }
    ::close(fd);
    ::usleep(100000);  // NOLINT: a port without a host side reads as end of file at once
  }
}

std::string cmdline_value(const std::string& cmdline, const std::string& key) {
  std::istringstream words(cmdline);
  std::string w;
  while (words >> w) {
    if (w.starts_with(key + "=")) return w.substr(key.size() + 1);
  }
  return {};
}

int run() {
  const bool pid1 = ::getpid() == 1;
  if (!pid1) say("not PID 1: nothing is mounted, loaded or powered off");
  if (pid1 && on_initramfs_root()) move_to_tmpfs_root();
  if (pid1) {
    if (!mount_fs("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC) ||
        !mount_fs("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC) ||
        !mount_fs("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755") ||
        !mount_fs("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") ||
        !mount_fs("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") ||
        !mount_fs("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                  "newinstance,ptmxmode=0666,mode=0620") ||
        !mount_fs("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") ||
        !mount_fs("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "nsdelegate")) {
      power_off("mounting failed");
    }
    if (!load_modules()) power_off("loading the kernel modules failed");
    if (!network_up()) power_off("the network failed");
  }
  std::string cmdline;
  std::getline(std::ifstream("/proc/cmdline"), cmdline);
  std::string tee = cmdline_value(cmdline, "coffer.tee");
  if (tee.empty()) tee = "auto";
  std::string log = cmdline_value(cmdline, "coffer.log");
  if (log.empty()) log = "info";
  // Ports appear (and get their names) a little after virtio_console is loaded. The agent's
  // port is always there; the quote service's when the TEE is simulated (the launcher adds it).
  const bool simulated = tee.starts_with("sim-");
  std::string port, quote_port, control_port;
  for (int i = 0; i < 1000; ++i) {  // 10 s
    port = find_port("coffer.agent");
    control_port = find_port("coffer.control");
    if (simulated) quote_port = find_port("coffer.quote");
    if (!port.empty() && !control_port.empty() && (!simulated || !quote_port.empty())) break;
    ::usleep(10000);  // NOLINT: polling sysfs, nothing to wait on
  }
  if (port.empty()) power_off("no virtio-serial port named coffer.agent");
  if (control_port.empty()) power_off("no virtio-serial port named coffer.control");
  if (simulated && quote_port.empty()) power_off("no virtio-serial port named coffer.quote");

  // the simulated TEE's quote service, when the launcher gave the VM one
  const std::string quote_socket = "/run/coffer-quote/quote.sock";
  pid_t quote_proxy_pid = -1;
  const std::string init_data_file = "/run/coffer/init-data.toml";
  bool have_init_data = false;
  if (auto text = fetch_init_data(control_port)) {
    ::mkdir("/run/coffer", 0700);
    const int f = ::open(init_data_file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
    if (f < 0 || !write_all(f, *text)) power_off(err("writing " + init_data_file));
    ::close(f);
    have_init_data = true;
  }
  if (!quote_port.empty()) {
    quote_proxy_pid = start_quote_proxy(quote_port, quote_socket);
    if (quote_proxy_pid < 0) power_off("the quote service proxy failed");
  }

  const pid_t agent = ::fork();
  if (agent < 0) power_off(err("fork"));
  if (agent == 0) {
    std::vector<std::string> args = {
        "/usr/bin/coffer-agent", "--serial-device",   port,          "--tee", tee,
        "--state-dir",           "/run/coffer-agent", "--log-level", log};
    if (!quote_port.empty()) {
      args.emplace_back("--quote-service");
      args.push_back(quote_socket);
    }
    if (have_init_data) {
      args.emplace_back("--init-data");
      args.push_back(init_data_file);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    char path[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
    char* envp[] = {path, nullptr};
    ::execve(argv[0], argv.data(), envp);
    say(err("starting coffer-agent"));
    ::_exit(127);
  }
  say("coffer-agent started on " + port + " (tee " + tee + ")");
  const pid_t control = ::fork();
  if (control == 0) watch_control(control_port, agent);
  if (control < 0) power_off(err("fork"));
  for (;;) {
    int status = 0;
    const pid_t pid = ::wait(&status);
    if (pid < 0) {
      if (errno == EINTR) continue;
      power_off(err("wait"));
    }
    if (pid == quote_proxy_pid) say("the quote service proxy exited");
    if (pid == agent) {
      const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      power_off("coffer-agent exited with " + std::to_string(code));
    }
  }
}

}  // namespace

int main() {
  try {
    return run();
  } catch (const std::exception& e) {
    power_off(std::string("unexpected error: ") + e.what());
  } catch (...) {
    power_off("unexpected error");
  }
}
