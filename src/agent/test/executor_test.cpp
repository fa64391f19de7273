// The container executor against the real crun with a busybox-static root: lifecycle, stdio with
// backpressure, TTY, exec, sandboxes sharing namespaces, private writable roots, OOM, reaping.
// Must run as root (crun, mounts, namespaces).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "agent/executor/executor.h"
#include "agent/executor/reaper.h"
#include "core/file.h"
#include "core/test/temp_dir.h"
#include "crypto/digest.h"
#include "crypto/random.h"

namespace coffer::agent {
namespace {

namespace fs = std::filesystem;
using coffer::testing::TempDir;

class ReaperEnvironment : public ::testing::Environment {
 public:
  // The reaper runs for the whole binary: every executor test also checks that it never steals
  // the status of a container process or of crun.
  void SetUp() override { install_child_reaper(); }
};
const auto* const kReaperEnv = ::testing::AddGlobalTestEnvironment(new ReaperEnvironment);

const char* const kApplets[] = {
    "sh",    "cat",  "echo", "nc",    "stty", "id",    "hostname", "dd",  "sha256sum", "readlink",
    "sleep", "head", "test", "touch", "true", "false", "ls",       "env", "pwd",       "tee"};

// An unpacked image: busybox-static with applet links, /etc/passwd with an "app" user.
fs::path make_image_rootfs(const fs::path& dir) {
  fs::create_directories(dir / "bin");
  fs::create_directories(dir / "etc");
  fs::create_directories(dir / "work");
  fs::create_directories(dir / "tmp");
  fs::permissions(dir / "tmp", fs::perms(01777));
  (void)chown((dir / "work").c_str(), 1000, 1000);
  fs::copy_file("/bin/busybox", dir / "bin/busybox");
  for (const char* a : kApplets) fs::create_symlink("busybox", dir / "bin" / a);
  std::ofstream(dir / "etc/passwd")
      << "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/work:/bin/sh\n";
  std::ofstream(dir / "etc/group") << "root:x:0:\napp:x:1000:\n";
  return dir;
}

oci::ImageConfig image_config(std::vector<std::string> entrypoint,
                              std::vector<std::string> cmd = {}) {
  oci::ImageConfig c;
  c.json = {
      {"config", {{"Entrypoint", entrypoint}, {"Env", {"PATH=/bin", "IMAGE_VAR=from-image"}}}}};
  if (!cmd.empty()) c.json["config"]["Cmd"] = cmd;
  return c;
}

std::string read_all(ContainerExecutor& ex, const std::string& id, const std::string& exec_id,
                     OutputStream s) {
  std::string out;
  for (;;) {
    auto chunk = ex.read_output(id, exec_id, s, 65536, {});
    if (!chunk) {
      ADD_FAILURE() << chunk.error().to_string();
      return out;
    }
    if (chunk->empty()) return out;
    out += to_string(*chunk);
  }
}

class ExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (crun, mounts, namespaces)";
    if (!fs::exists("/bin/busybox")) GTEST_SKIP() << "busybox-static is not installed";
    image_ = make_image_rootfs(tmp_.path() / "image");
    auto ex = make_crun_executor({.runtime = "crun", .state_dir = tmp_.path() / "state"});
    if (!ex && (ex.error().code == "runtime_not_found" || ex.error().code == "runtime_failed")) {
      GTEST_SKIP() << "crun cannot run containers here: " << ex.error().to_string();
    }
    ASSERT_TRUE(ex) << ex.error().to_string();
    ex_ = std::move(*ex);
    ASSERT_TRUE(ex_->create_sandbox("pod1"));
  }
  void TearDown() override { ex_.reset(); }

  ContainerCreate request(const std::string& id, std::vector<std::string> entrypoint,
                          SpecOverrides o = {}) {
    return ContainerCreate{.id = id,
                           .sandbox_id = "pod1",
                           .image = "example/busybox:1",
                           .image_rootfs = image_,
                           .image_config = image_config(std::move(entrypoint)),
                           .overrides = std::move(o)};
  }

  struct Run {
    std::string out, err;
    ExitStatus status;
  };
  Run run(const std::string& id, std::vector<std::string> entrypoint, SpecOverrides o = {}) {
    Run r;
    auto st = ex_->create(request(id, std::move(entrypoint), std::move(o)));
    EXPECT_TRUE(st) << st.error().to_string();
    if (!st) return r;
    EXPECT_TRUE(ex_->start(id));
    std::thread err([&] { r.err = read_all(*ex_, id, "", OutputStream::kStderr); });
    r.out = read_all(*ex_, id, "", OutputStream::kStdout);
    err.join();
    auto w = ex_->wait(id, "", {});
    EXPECT_TRUE(w) << w.error().to_string();
    if (w) r.status = *w;
    return r;
  }

  TempDir tmp_;
  fs::path image_;
  std::unique_ptr<ContainerExecutor> ex_;
};

TEST(ExecutorFactory, MissingRuntimeIsRuntimeNotFound) {
  TempDir tmp;
  for (const char* rt : {"/nonexistent/crun", "no-such-runtime-coffer"}) {
    auto ex = make_crun_executor({.runtime = rt, .state_dir = tmp.path() / "s"});
    ASSERT_FALSE(ex);
    EXPECT_EQ(ex.error().code, "runtime_not_found") << rt;
  }
}

TEST(ExecutorFactory, RuntimeThatCannotRunIsRuntimeFailed) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  TempDir tmp;
  // /bin/false is executable but no container runtime: the probe says so.
  auto ex = make_crun_executor({.runtime = "/bin/false", .state_dir = tmp.path() / "s"});
  ASSERT_FALSE(ex);
  EXPECT_EQ(ex.error().code, "runtime_failed");
}

TEST_F(ExecutorTest, RunsEntrypointWithSeparateStreamsAndExitCode) {
  auto r = run("c1", {"/bin/sh", "-c", "echo out; echo err >&2; echo $IMAGE_VAR; exit 3"});
  EXPECT_EQ(r.out, "out\nfrom-image\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_EQ(r.status.exit_code, 3);
  EXPECT_EQ(r.status.signal, 0);
  EXPECT_FALSE(r.status.oom_killed);
  auto st = ex_->state("c1");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->status, ContainerStatus::kStopped);
  ASSERT_TRUE(st->exit);
  EXPECT_EQ(st->exit->exit_code, 3);
  EXPECT_EQ(st->image, "example/busybox:1");
  EXPECT_EQ(st->sandbox_id, "pod1");
}

TEST_F(ExecutorTest, WaitFirstThenOutputStaysReadable) {
  ASSERT_TRUE(ex_->create(request("c1", {"/bin/sh", "-c", "echo hello; exit 5"})));
  ASSERT_TRUE(ex_->start("c1"));
  auto w = ex_->wait("c1", "", {});
  ASSERT_TRUE(w) << w.error().to_string();
  EXPECT_EQ(w->exit_code, 5);
  EXPECT_EQ(read_all(*ex_, "c1", "", OutputStream::kStdout), "hello\n");
}

TEST_F(ExecutorTest, OverridesUserWorkdirEnvAndCommand) {
  SpecOverrides o;
  o.entrypoint = std::vector<std::string>{"/bin/sh", "-c"};
  o.command = std::vector<std::string>{"echo $(id -u):$(id -g) $(pwd) $IMAGE_VAR $EXTRA"};
  o.user = "app";
  o.working_dir = "/work";
  o.env = {"IMAGE_VAR=overridden", "EXTRA=x"};
  auto r = run("c1", {"/bin/false"}, o);
  EXPECT_EQ(r.out, "1000:1000 /work overridden x\n") << r.err;
  EXPECT_EQ(r.status.exit_code, 0);
}

TEST_F(ExecutorTest, SandboxContainersShareLoopbackIpcAndHostname) {
  auto netns = ex_->sandbox_netns("pod1");
  ASSERT_TRUE(netns);
  struct stat sb {};
  ASSERT_EQ(stat(netns->c_str(), &sb), 0);
  std::string expect_net = "net:[" + std::to_string(sb.st_ino) + "]";

  const char* ns =
      "readlink /proc/self/ns/net; readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts; "
      "hostname";
  auto a = run("a", {"/bin/sh", "-c", ns});
  auto b = run("b", {"/bin/sh", "-c", ns});
  EXPECT_EQ(a.out, b.out);
  EXPECT_TRUE(a.out.starts_with(expect_net + "\n")) << a.out << a.err;
  EXPECT_TRUE(a.out.ends_with("\npod1\n")) << a.out;

  // One listens on 127.0.0.1, the other connects: loopback is up and shared.
  // The server's stdin stays open: busybox nc stops at end of stdin, maybe before it read.
  SpecOverrides server;
  server.open_stdin = true;
  ASSERT_TRUE(ex_->create(request("server", {"/bin/sh", "-c", "nc -l -p 5000 127.0.0.1"}, server)));
  ASSERT_TRUE(ex_->start("server"));
  auto c = run("client",
               {"/bin/sh", "-c", "until echo ping-over-loopback | nc 127.0.0.1 5000; do :; done"});
  EXPECT_EQ(c.status.exit_code, 0) << c.err;
  EXPECT_EQ(read_all(*ex_, "server", "", OutputStream::kStdout), "ping-over-loopback\n");
  auto w = ex_->wait("server", "", {});
  ASSERT_TRUE(w);
  EXPECT_EQ(w->exit_code, 0);
}

TEST_F(ExecutorTest, WritableRootIsPrivateAndImageRootUntouched) {
  std::string passwd = read_text_file(image_ / "etc/passwd").value();
  auto a = run("a", {"/bin/sh", "-c",
                     "echo evil >> /etc/passwd && touch /newfile && rm /bin/ls && echo done"});
  EXPECT_EQ(a.out, "done\n") << a.err;
  EXPECT_EQ(read_text_file(image_ / "etc/passwd").value(), passwd);
  EXPECT_FALSE(fs::exists(image_ / "newfile"));
  EXPECT_TRUE(fs::is_symlink(image_ / "bin/ls"));
  auto b = run("b", {"/bin/sh", "-c", "test -e /newfile; echo $?; cat /etc/passwd"});
  EXPECT_EQ(b.out, "1\n" + passwd) << b.err;
}

bool is_overlay_mount(const fs::path& where) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(" " + where.string() + " ") != std::string::npos &&
        line.find(" - overlay ") != std::string::npos) {
      return true;
    }
  }
  return false;
}

TEST_F(ExecutorTest, OverlayRootAndCopyFallback) {
  ASSERT_TRUE(ex_->create(request("ov", {"/bin/true"})));
  EXPECT_TRUE(is_overlay_mount(tmp_.path() / "state/containers/ov/rootfs"));
  // A ',' cannot be written in overlayfs' lowerdir option: that image root is copied instead,
  // with the same guarantees.
  auto odd = make_image_rootfs(tmp_.path() / "im,age");
  auto req = request("copy", {"/bin/sh", "-c", "touch /newfile && id -u app >/dev/null; echo ok"});
  req.image_rootfs = odd;
  auto created = ex_->create(req);
  ASSERT_TRUE(created) << created.error().to_string();
  EXPECT_FALSE(is_overlay_mount(tmp_.path() / "state/containers/copy/rootfs"));
  ASSERT_TRUE(ex_->start("copy"));
  EXPECT_EQ(read_all(*ex_, "copy", "", OutputStream::kStdout), "ok\n");
  EXPECT_EQ(ex_->wait("copy", "", {}).value().exit_code, 0);
  EXPECT_FALSE(fs::exists(odd / "newfile"));
  struct stat st {};
  ASSERT_EQ(stat((tmp_.path() / "state/containers/copy/rootfs/work").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);  // owners kept
  ASSERT_TRUE(ex_->remove("copy"));
  ASSERT_TRUE(ex_->remove("ov"));
  EXPECT_FALSE(is_overlay_mount(tmp_.path() / "state/containers/ov/rootfs"));
}

TEST_F(ExecutorTest, BackpressureDelivers20MiBInOrderWhileTheContainerBlocks) {
  constexpr std::size_t kTotal = 20u << 20;
  Bytes data = crypto::random_bytes(kTotal);
  ASSERT_TRUE(write_file_atomic(image_ / "data", data));
  std::string expected = hex_encode(crypto::sha256(data));
  ASSERT_TRUE(ex_->create(request("big", {"/bin/cat", "/data"})));
  ASSERT_TRUE(ex_->start("big"));
  // Blocked: cat (the init) sleeps writing to the pipe ("pipe_write" or, since Linux 6.x,
  // "pipe_wait_writable") once it has written what the agent's buffer and the 64 KiB pipe hold,
  // and no more (/proc/<pid>/io's wchar).
  auto pid = ex_->state("big").value().pid;
  std::string proc = "/proc/" + std::to_string(pid);
  auto wchar = [&]() -> std::optional<std::uint64_t> {
    auto io = read_text_file(proc + "/io");
    if (!io) return std::nullopt;
    auto at = io->find("wchar: ");
    if (at == std::string::npos) return std::nullopt;
    return std::stoull(io->substr(at + 7));
  };
  std::string wchan;
  std::uint64_t written = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    wchan = read_text_file(proc + "/wchan").value_or("");
    written = wchar().value_or(0);
    if (wchan.starts_with("pipe_w") && written >= kOutputBufferBytes) break;
    if (ex_->state("big").value().status != ContainerStatus::kRunning) break;
    std::this_thread::yield();
  }
  ASSERT_TRUE(wchan == "pipe_write" || wchan == "pipe_wait_writable") << wchan;
  EXPECT_EQ(ex_->state("big").value().status, ContainerStatus::kRunning);

  // A slow reader (small reads) gets every byte, in order; at every step the container has
  // written at most what was read plus the agent's buffer and the pipe: it is held back.
  constexpr std::uint64_t kSlack = kOutputBufferBytes + (256u << 10);
  std::uint64_t worst = 0;
  Bytes all;
  for (;;) {
    auto chunk = ex_->read_output("big", "", OutputStream::kStdout, 4096, {});
    ASSERT_TRUE(chunk);
    if (chunk->empty()) break;
    all.insert(all.end(), chunk->begin(), chunk->end());
    if (auto w = wchar()) worst = std::max(worst, *w - std::min<std::uint64_t>(*w, all.size()));
  }
  EXPECT_LE(worst, kSlack) << "the agent buffered more than its bound";
  EXPECT_EQ(all.size(), kTotal);
  EXPECT_EQ(hex_encode(crypto::sha256(all)), expected);
  auto w = ex_->wait("big", "", {});
  ASSERT_TRUE(w);
  EXPECT_EQ(w->exit_code, 0);
}

TEST_F(ExecutorTest, StdinWriteAndClose) {
  SpecOverrides o;
  o.open_stdin = true;
  ASSERT_TRUE(ex_->create(request("cat", {"/bin/cat"}, o)));
  ASSERT_TRUE(ex_->start("cat"));
  ASSERT_TRUE(ex_->write_stdin("cat", "", as_bytes("hello "), {}));
  ASSERT_TRUE(ex_->write_stdin("cat", "", as_bytes("stdin\n"), {}));
  ASSERT_TRUE(ex_->close_stdin("cat", ""));
  EXPECT_EQ(read_all(*ex_, "cat", "", OutputStream::kStdout), "hello stdin\n");
  EXPECT_EQ(ex_->wait("cat", "", {}).value().exit_code, 0);
  EXPECT_EQ(ex_->close_stdin("cat", "").error().code, "bad_state");
  EXPECT_EQ(ex_->write_stdin("cat", "", as_bytes("x"), {}).error().code, "bad_state");

  // A write the container does not read blocks (the pipe is full) until it is cancelled.
  ASSERT_TRUE(ex_->create(request("deaf", {"/bin/sleep", "1000"}, o)));
  ASSERT_TRUE(ex_->start("deaf"));
  std::stop_source stop;
  std::thread canceller([&] { stop.request_stop(); });
  Bytes big(4u << 20, 'x');
  auto blocked = ex_->write_stdin("deaf", "", big, stop.get_token());
  canceller.join();
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().code, "cancelled");

  // Without open_stdin there is no stdin to write.
  ASSERT_TRUE(ex_->create(request("nostdin", {"/bin/cat"})));
  EXPECT_EQ(ex_->write_stdin("nostdin", "", as_bytes("x"), {}).error().code, "bad_state");
}

TEST_F(ExecutorTest, TtyResizeIsSeenByStty) {
  SpecOverrides o;
  o.terminal = true;
  o.open_stdin = true;
  ASSERT_TRUE(ex_->create(request("tty", {"/bin/sh", "-c", "read x; stty size; test -t 1"}, o)));
  ASSERT_TRUE(ex_->start("tty"));
  ASSERT_TRUE(ex_->resize_tty("tty", "", 30, 100));
  ASSERT_TRUE(ex_->write_stdin("tty", "", as_bytes("go\n"), {}));
  std::string out = read_all(*ex_, "tty", "", OutputStream::kStdout);
  EXPECT_NE(out.find("30 100"), std::string::npos) << out;
  EXPECT_EQ(read_all(*ex_, "tty", "", OutputStream::kStderr), "");
  EXPECT_EQ(ex_->wait("tty", "", {}).value().exit_code, 0);
  // No TTY: resize is refused.
  ASSERT_TRUE(ex_->create(request("notty", {"/bin/true"})));
  EXPECT_EQ(ex_->resize_tty("notty", "", 1, 1).error().code, "bad_state");
}

TEST_F(ExecutorTest, ExecRunsInTheContainerWithItsOwnStdio) {
  SpecOverrides o;
  o.open_stdin = true;
  ASSERT_TRUE(ex_->create(request("svc", {"/bin/cat"}, o)));
  // Not started yet: no exec.
  EXPECT_EQ(ex_->exec("svc", {.args = {"/bin/true"}}).error().code, "bad_state");
  ASSERT_TRUE(ex_->start("svc"));

  auto e1 = ex_->exec("svc", {.args = {"/bin/sh", "-c", "echo $FOO $(id -u) $(pwd) >&2; exit 4"},
                              .env = {"FOO=bar"},
                              .cwd = "/work",
                              .user = "app"});
  ASSERT_TRUE(e1) << e1.error().to_string();
  EXPECT_EQ(read_all(*ex_, "svc", *e1, OutputStream::kStderr), "bar 1000 /work\n");
  EXPECT_EQ(read_all(*ex_, "svc", *e1, OutputStream::kStdout), "");
  EXPECT_EQ(ex_->wait("svc", *e1, {}).value().exit_code, 4);

  auto e2 = ex_->exec("svc", {.args = {"/bin/cat"}, .open_stdin = true});
  ASSERT_TRUE(e2);
  EXPECT_NE(*e1, *e2);
  ASSERT_TRUE(ex_->write_stdin("svc", *e2, as_bytes("to exec\n"), {}));
  ASSERT_TRUE(ex_->close_stdin("svc", *e2));
  EXPECT_EQ(read_all(*ex_, "svc", *e2, OutputStream::kStdout), "to exec\n");
  EXPECT_EQ(ex_->wait("svc", *e2, {}).value().exit_code, 0);

  auto tty = ex_->exec("svc", {.args = {"/bin/sh", "-c", "stty size"}, .terminal = true});
  ASSERT_TRUE(tty) << tty.error().to_string();
  (void)read_all(*ex_, "svc", *tty, OutputStream::kStdout);
  EXPECT_EQ(ex_->wait("svc", *tty, {}).value().exit_code, 0);

  EXPECT_EQ(ex_->exec("svc", {.args = {"/bin/true"}, .user = "nobody"}).error().code, "bad_spec");

  // The container rewrites its /etc/passwd so that "app" would be root: exec's user names
  // still resolve in the image.
  auto rewrite = ex_->exec(
      "svc", {.args = {"/bin/sh", "-c", "echo app:x:0:0::/:/bin/sh > /etc/passwd; id -u app"}});
  ASSERT_TRUE(rewrite);
  EXPECT_EQ(read_all(*ex_, "svc", *rewrite, OutputStream::kStdout), "0\n");
  EXPECT_EQ(ex_->wait("svc", *rewrite, {}).value().exit_code, 0);
  auto as_app = ex_->exec("svc", {.args = {"/bin/id", "-u"}, .user = "app"});
  ASSERT_TRUE(as_app);
  EXPECT_EQ(read_all(*ex_, "svc", *as_app, OutputStream::kStdout), "1000\n");
  EXPECT_EQ(ex_->wait("svc", *as_app, {}).value().exit_code, 0);
  EXPECT_EQ(ex_->exec("svc", {.args = {}}).error().code, "bad_spec");
  EXPECT_EQ(ex_->exec("svc", {.args = {"/bin/true"}, .cwd = "rel"}).error().code, "bad_spec");
  auto missing = ex_->exec("svc", {.args = {"/no/such/binary"}});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, "runtime_failed");
  EXPECT_NE(missing.error().message.find("/no/such/binary"), std::string::npos)
      << missing.error().message;
  EXPECT_EQ(ex_->wait("svc", "exec-999", {}).error().code, "process_not_found");

  ASSERT_TRUE(ex_->close_stdin("svc", ""));
  EXPECT_EQ(ex_->wait("svc", "", {}).value().exit_code, 0);
  EXPECT_EQ(ex_->exec("svc", {.args = {"/bin/true"}}).error().code, "bad_state");
}

TEST_F(ExecutorTest, SignalsAndExitBySignal) {
  ASSERT_TRUE(ex_->create(request("s", {"/bin/sh", "-c",
                                        "trap 'exit 7' TERM; echo up; "
                                        "while :; do sleep 1; done"})));
  ASSERT_TRUE(ex_->start("s"));
  auto up = ex_->read_output("s", "", OutputStream::kStdout, 16, {});
  ASSERT_TRUE(up);
  EXPECT_EQ(to_string(*up), "up\n");
  ASSERT_TRUE(ex_->signal("s", "", SIGTERM));
  EXPECT_EQ(ex_->wait("s", "", {}).value().exit_code, 7);
  EXPECT_EQ(ex_->signal("s", "", SIGTERM).error().code, "bad_state");

  ASSERT_TRUE(ex_->create(request("k", {"/bin/sleep", "1000"})));
  ASSERT_TRUE(ex_->start("k"));
  EXPECT_EQ(ex_->signal("k", "", 0).error().code, "bad_spec");
  EXPECT_EQ(ex_->signal("k", "", 1000).error().code, "bad_spec");
  ASSERT_TRUE(ex_->signal("k", "", SIGKILL));
  auto w = ex_->wait("k", "", {});
  ASSERT_TRUE(w);
  EXPECT_EQ(w->signal, SIGKILL);
  EXPECT_EQ(w->exit_code, 128 + SIGKILL);
  EXPECT_FALSE(w->oom_killed);
}

TEST_F(ExecutorTest, OomKillIsReported) {
  SpecOverrides o;
  o.memory_limit_bytes = 16u << 20;
  auto r = run("oom", {"/bin/dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"}, o);
  EXPECT_TRUE(r.status.oom_killed) << r.err;
  EXPECT_EQ(r.status.signal, SIGKILL);
}

TEST_F(ExecutorTest, StatsOfARunningContainer) {
  SpecOverrides o;
  o.open_stdin = true;
  ASSERT_TRUE(ex_->create(request("st", {"/bin/cat"}, o)));
  ASSERT_TRUE(ex_->start("st"));
  auto s = ex_->stats("st");
  ASSERT_TRUE(s) << s.error().to_string();
  EXPECT_GT(s->memory_bytes, 0u);
  EXPECT_GE(s->pids, 1u);
  EXPECT_EQ(ex_->stats("nope").error().code, "container_not_found");
}

TEST_F(ExecutorTest, LifecycleErrors) {
  EXPECT_EQ(ex_->start("nope").error().code, "container_not_found");
  EXPECT_EQ(ex_->wait("nope", "", {}).error().code, "container_not_found");
  EXPECT_EQ(ex_->signal("nope", "", SIGTERM).error().code, "container_not_found");
  EXPECT_EQ(ex_->exec("nope", {.args = {"/bin/true"}}).error().code, "container_not_found");
  EXPECT_EQ(ex_->remove("nope").error().code, "container_not_found");
  EXPECT_EQ(ex_->state("nope").error().code, "container_not_found");
  EXPECT_EQ(ex_->read_output("nope", "", OutputStream::kStdout, 1, {}).error().code,
            "container_not_found");
  EXPECT_EQ(ex_->resize_tty("nope", "", 1, 1).error().code, "container_not_found");
  EXPECT_EQ(ex_->close_stdin("nope", "").error().code, "container_not_found");

  EXPECT_EQ(ex_->create_sandbox("pod1").error().code, "sandbox_exists");
  EXPECT_EQ(ex_->create_sandbox("../x").error().code, "bad_spec");
  EXPECT_EQ(ex_->sandbox_netns("nope").error().code, "sandbox_not_found");
  EXPECT_EQ(ex_->remove_sandbox("nope").error().code, "sandbox_not_found");
  auto req = request("c", {"/bin/sleep", "1000"});
  req.sandbox_id = "nope";
  EXPECT_EQ(ex_->create(req).error().code, "sandbox_not_found");
  EXPECT_EQ(ex_->create(request("../c", {"/bin/true"})).error().code, "bad_spec");

  SpecOverrides bad_mount;
  bad_mount.mounts = {{.destination = "relative/dir", .type = "tmpfs", .source = "tmpfs"}};
  EXPECT_EQ(ex_->create(request("c", {"/bin/true"}, bad_mount)).error().code, "bad_spec");
  SpecOverrides bad_user;
  bad_user.user = "nobody";
  EXPECT_EQ(ex_->create(request("c", {"/bin/true"}, bad_user)).error().code, "bad_spec");
  auto missing = ex_->create(request("c", {"/no/such/entrypoint"}));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, "runtime_failed");
  EXPECT_NE(missing.error().message.find("/no/such/entrypoint"), std::string::npos)
      << missing.error().message;
  EXPECT_TRUE(ex_->list().empty());  // failed creates leave nothing

  ASSERT_TRUE(ex_->create(request("c", {"/bin/sleep", "1000"})));
  EXPECT_EQ(ex_->create(request("c", {"/bin/true"})).error().code, "container_exists");
  EXPECT_EQ(ex_->state("c").value().status, ContainerStatus::kCreated);
  ASSERT_TRUE(ex_->start("c"));
  EXPECT_EQ(ex_->start("c").error().code, "bad_state");
  EXPECT_EQ(ex_->state("c").value().status, ContainerStatus::kRunning);
  ASSERT_EQ(ex_->list().size(), 1u);
  EXPECT_EQ(ex_->remove_sandbox("pod1").error().code, "bad_state");

  // Removing a running container kills it and leaves nothing behind.
  pid_t pid = ex_->state("c").value().pid;
  ASSERT_GT(pid, 0);
  auto state_dir = tmp_.path() / "state";
  EXPECT_TRUE(fs::exists(state_dir / "containers/c"));
  ASSERT_TRUE(ex_->remove("c"));
  EXPECT_FALSE(fs::exists(state_dir / "containers/c"));
  EXPECT_FALSE(fs::exists(state_dir / "crun/c"));
  EXPECT_NE(kill(pid, 0), 0);
  EXPECT_EQ(ex_->state("c").error().code, "container_not_found");
  EXPECT_TRUE(ex_->list().empty());
  ASSERT_TRUE(ex_->remove_sandbox("pod1"));
  EXPECT_FALSE(fs::exists(state_dir / "sandboxes/pod1"));
}

TEST_F(ExecutorTest, RemoveWakesAPendingWaitWithTheKill) {
  ASSERT_TRUE(ex_->create(request("c", {"/bin/sleep", "1000"})));
  ASSERT_TRUE(ex_->start("c"));
  auto e = ex_->exec("c", {.args = {"/bin/sleep", "1000"}});
  ASSERT_TRUE(e) << e.error().to_string();
  Result<ExitStatus> pending = make_error("none", "");
  std::thread waiter([&] { pending = ex_->wait("c", "", {}); });
  ASSERT_TRUE(ex_->remove("c"));
  waiter.join();
  // The waiter either was waiting (it gets the kill) or came after the removal; it never hangs.
  if (pending) {
    EXPECT_EQ(pending->signal, SIGKILL);
  } else {
    EXPECT_EQ(pending.error().code, "container_not_found");
  }
  EXPECT_EQ(ex_->wait("c", *e, {}).error().code, "container_not_found");
}

TEST_F(ExecutorTest, WaitAndReadAreCancellable) {
  ASSERT_TRUE(ex_->create(request("c", {"/bin/sleep", "1000"})));
  ASSERT_TRUE(ex_->start("c"));
  std::stop_source stop;
  std::thread canceller([&] { stop.request_stop(); });
  auto w = ex_->wait("c", "", stop.get_token());
  canceller.join();
  EXPECT_EQ(w.error().code, "cancelled");
  EXPECT_EQ(ex_->read_output("c", "", OutputStream::kStdout, 1, stop.get_token()).error().code,
            "cancelled");
}

TEST(BuildOciSpec, OverridesFollowKubernetesSemantics) {
  TempDir tmp;
  auto rootfs = make_image_rootfs(tmp.path() / "rootfs");
  auto image = image_config({"/bin/ep"}, {"arg1"});
  auto plain = build_oci_spec(image, rootfs, {});
  ASSERT_TRUE(plain) << plain.error().to_string();
  EXPECT_EQ((*plain)["process"]["args"], Json({"/bin/ep", "arg1"}));
  EXPECT_EQ((*plain)["process"]["noNewPrivileges"], true);
  EXPECT_EQ((*plain)["process"]["capabilities"]["bounding"].size(), 14u);
  EXPECT_TRUE((*plain)["linux"].contains("maskedPaths"));
  EXPECT_FALSE((*plain)["linux"].contains("resources"));

  SpecOverrides o;
  o.entrypoint = std::vector<std::string>{"/bin/other"};
  EXPECT_EQ(build_oci_spec(image, rootfs, o).value()["process"]["args"], Json({"/bin/other"}));
  o.entrypoint.reset();
  o.command = std::vector<std::string>{"x", "y"};
  EXPECT_EQ(build_oci_spec(image, rootfs, o).value()["process"]["args"],
            Json({"/bin/ep", "x", "y"}));

  SpecOverrides env;
  env.env = {"IMAGE_VAR=new", "B=1"};
  EXPECT_EQ(build_oci_spec(image, rootfs, env).value()["process"]["env"],
            Json({"PATH=/bin", "IMAGE_VAR=new", "B=1"}));

  SpecOverrides priv;
  priv.privileged = true;
  priv.memory_limit_bytes = 1u << 26;
  priv.terminal = true;
  auto p = build_oci_spec(image, rootfs, priv).value();
  EXPECT_EQ(p["process"]["capabilities"]["bounding"].size(), 41u);
  EXPECT_EQ(p["process"]["noNewPrivileges"], false);
  EXPECT_FALSE(p["linux"].contains("maskedPaths"));
  EXPECT_EQ(p["linux"]["resources"]["memory"]["limit"], 1u << 26);
  EXPECT_EQ(p["process"]["terminal"], true);

  SpecOverrides user;
  user.user = "app:root";
  auto u = build_oci_spec(image, rootfs, user).value();
  EXPECT_EQ(u["process"]["user"]["uid"], 1000);
  EXPECT_EQ(u["process"]["user"]["gid"], 0);
}

TEST(BuildOciSpec, RefusesBadOverrides) {
  TempDir tmp;
  auto rootfs = make_image_rootfs(tmp.path() / "rootfs");
  auto image = image_config({"/bin/ep"});
  auto code = [&](SpecOverrides o) {
    auto r = build_oci_spec(image, rootfs, o);
    return r ? std::string("ok") : r.error().code;
  };
  EXPECT_EQ(code({.user = "nobody"}), "bad_spec");
  EXPECT_EQ(code({.user = "app:nogroup"}), "bad_spec");
  EXPECT_EQ(code({.user = ""}), "bad_spec");
  EXPECT_EQ(code({.env = {"NOEQUALS"}}), "bad_spec");
  EXPECT_EQ(code({.env = {"=x"}}), "bad_spec");
  EXPECT_EQ(code({.working_dir = "relative"}), "bad_spec");
  EXPECT_EQ(code({.working_dir = "/a/../b"}), "bad_spec");
  EXPECT_EQ(code({.mounts = {{.destination = "rel", .type = "tmpfs", .source = "tmpfs"}}}),
            "bad_spec");
  EXPECT_EQ(code({.mounts = {{.destination = "/d/../../etc", .type = "tmpfs", .source = "t"}}}),
            "bad_spec");
  EXPECT_EQ(code({.mounts = {{.destination = "/d", .type = "", .source = "t"}}}), "bad_spec");
  EXPECT_EQ(code({.mounts = {{.destination = "/d", .type = "bind", .source = "rel/src"}}}),
            "bad_spec");
  EXPECT_EQ(
      code(
          {.mounts = {{.destination = "/d", .type = "none", .source = "x", .options = {"rbind"}}}}),
      "bad_spec");
  EXPECT_EQ(code({.memory_limit_bytes = 1}), "bad_spec");
  EXPECT_EQ(code({.mounts = {{.destination = "/d", .type = "tmpfs", .source = "tmpfs"}}}), "ok");
}

// A registered child's status is never taken by the reaper; an orphan re-parented to us is
// reaped.
TEST(ChildReaper, ReapsOrphansButNotRegisteredChildren) {
  install_child_reaper();
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  int hold[2];
  ASSERT_EQ(pipe2(hold, O_CLOEXEC), 0);
  // sh starts a background grandchild that blocks reading `hold`, prints its pid, exits 3.
  auto child = spawn({.argv = {"/bin/busybox", "sh", "-c",
                               "exec 3<&0; busybox cat <&3 >/dev/null & echo $!; exit 3"},
                      .cwd = {},
                      .stdin_fd = hold[0],
                      .stdout_fd = p[1],
                      .stderr_fd = -1,
                      .hide_unified_cgroup = false});
  ASSERT_TRUE(child) << child.error().to_string();
  close(p[1]);
  close(hold[0]);
  std::string out;
  char buf[64];
  ssize_t n = 0;
  while ((n = read(p[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  close(p[0]);
  auto status = child->wait();
  ASSERT_TRUE(status) << status.error().to_string();
  EXPECT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 3);
  pid_t orphan = std::stoi(out);
  EXPECT_EQ(kill(orphan, 0), 0);  // alive, now our child (subreaper)
  close(hold[1]);                 // it reads EOF and exits
  EXPECT_TRUE(wait_until_reaped(orphan, std::chrono::seconds(20)));
}

}  // namespace
}  // namespace coffer::agent
