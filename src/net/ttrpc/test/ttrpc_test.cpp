// ttrpc over real Unix sockets and a real character device (a pty in raw mode): calls, statuses,
// many calls in flight, deadlines, disconnects, hostile frames and limits.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <future>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>

#include "core/test/temp_dir.h"
#include "net/ttrpc/client.h"
#include "net/ttrpc/server.h"
#include "ttrpc/ttrpc.pb.h"

namespace coffer::net::ttrpc {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

// Failure detection only: a correct run never waits this long.
constexpr auto kStuck = 20s;

constexpr std::string_view kService = "coffer.test.v1.Echo";

// Counts arrivals; wait_for_count fails (false) instead of hanging when they never come.
class Arrivals {
 public:
  void arrive() {
    std::lock_guard lock(mu_);
    ++count_;
    cv_.notify_all();
  }
  bool wait_for_count(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kStuck, [&] { return count_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int count_ = 0;
};

// Blocks the calling handler until its call is asked to stop (deadline, disconnect) or kStuck.
bool block_until_stopped(const CallContext& ctx) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  return cv.wait_for(lock, ctx.stop, kStuck, [] { return false; }) || ctx.stop.stop_requested();
}

void add_echo(Server& server) {
  server.add_method(kService, "Echo",
                    [](const CallContext&, std::string_view request) -> CallResult {
                      return std::string(request);
                    });
  server.add_method(kService, "Metadata",
                    [](const CallContext& ctx, std::string_view) -> CallResult {
                      std::string out;
                      for (const auto& [k, v] : ctx.metadata) out += k + "=" + v + ";";
                      return out;
                    });
  server.add_method(kService, "Deny", [](const CallContext&, std::string_view) -> CallResult {
    return status_error(Code::kPermissionDenied, "policy says no");
  });
}

// "Hang": counts its arrival, then blocks until the call is asked to stop.
void add_hang(Server& server, Arrivals& entered) {
  server.add_method(kService, "Hang", [&](const CallContext& ctx, std::string_view) -> CallResult {
    entered.arrive();
    block_until_stopped(ctx);
    return "";
  });
}

struct Served {
  TempDir dir;
  std::filesystem::path socket = dir.path() / "ttrpc.sock";
  Server server;
  explicit Served(ServerConfig config = {}) : server(config) {}
  void start() { ASSERT_TRUE(server.listen_unix(socket)); }
  std::unique_ptr<Client> client() { return std::move(*Client::connect_unix(socket)); }
};

TEST(Ttrpc, CallsReturnPayloadsStatusesAndMetadata) {
  Served s;
  add_echo(s.server);
  s.start();
  auto client = s.client();
  EXPECT_EQ(client->call(kService, "Echo", "hello"), CallResult("hello"));
  EXPECT_EQ(client->call(kService, "Echo", ""), CallResult(""));
  std::string big(1 << 20, 'x');
  EXPECT_EQ(client->call(kService, "Echo", big), CallResult(big));
  EXPECT_EQ(
      *client->call(kService, "Metadata", "", 0ns, {{"containerd-namespace-ttrpc", "k8s.io"}}),
      "containerd-namespace-ttrpc=k8s.io;");
  auto denied = client->call(kService, "Deny", "");
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error(), (RpcStatus{Code::kPermissionDenied, "policy says no"}));
  auto missing = client->call(kService, "Nope", "");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Code::kUnimplemented);
  auto other = client->call("other.Service", "Echo", "");
  EXPECT_EQ(other.error().code, Code::kUnimplemented);
}

TEST(Ttrpc, SocketIsPrivateAndNeverReplacesAFile) {
  Served s;
  add_echo(s.server);
  s.start();
  struct stat st {};
  ASSERT_EQ(::stat(s.socket.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);
  Server other;
  auto file = s.dir.path() / "not-a-socket";
  { std::ofstream(file) << "data"; }
  auto r = other.listen_unix(file);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "socket_path_in_use");
  EXPECT_TRUE(std::filesystem::is_regular_file(file));
  EXPECT_EQ(Client::connect_unix(s.dir.path() / "absent.sock").error().code, "ttrpc_unavailable");
}

TEST(Ttrpc, SixteenCallsInFlightOnOneConnection) {
  // Every handler waits until all 16 have arrived: a server that ran one call at a time per
  // connection would never answer.
  Served s;
  Arrivals arrived;
  s.server.add_method(kService, "Gather",
                      [&](const CallContext&, std::string_view request) -> CallResult {
                        arrived.arrive();
                        if (!arrived.wait_for_count(16)) {
                          return status_error(Code::kInternal, "calls were not concurrent");
                        }
                        return "re:" + std::string(request);
                      });
  s.start();
  auto client = s.client();
  std::vector<std::future<CallResult>> calls;
  for (int i = 0; i < 16; ++i) {
    calls.push_back(std::async(std::launch::async, [&, i] {
      return client->call(kService, "Gather", std::to_string(i));
    }));
  }
  for (int i = 0; i < 16; ++i) EXPECT_EQ(calls[i].get(), CallResult("re:" + std::to_string(i)));
}

// The largest timeout is a deadline the steady clock cannot hold: the client waits for the answer
// (now + timeout overflowed into a passed deadline: DEADLINE_EXCEEDED before any answer) and
// sends it as timeout_nano 2^63-1, which the server reads as no deadline.
TEST(Ttrpc, ClientLargestTimeoutWaitsForTheAnswer) {
  Served s;
  std::promise<bool> had_deadline;
  s.server.add_method(kService, "Deadline", [&](const CallContext& ctx, std::string_view) {
    had_deadline.set_value(ctx.deadline.has_value());
    return CallResult("answered");
  });
  s.start();
  auto client = s.client();
  EXPECT_EQ(client->call(kService, "Deadline", "", std::chrono::nanoseconds::max()),
            CallResult("answered"));
  auto seen = had_deadline.get_future();
  ASSERT_EQ(seen.wait_for(kStuck), std::future_status::ready);
  EXPECT_FALSE(seen.get());
}

TEST(Ttrpc, DeadlinePassesTheCallIsAnsweredAndStopped) {
  Served s;
  std::promise<bool> handler_stopped;
  s.server.add_method(kService, "Slow",
                      [&](const CallContext& ctx, std::string_view) -> CallResult {
                        const bool stopped = block_until_stopped(ctx);
                        handler_stopped.set_value(stopped && ctx.deadline.has_value());
                        return "too late";
                      });
  add_echo(s.server);
  s.start();
  auto client = s.client();
  auto r = client->call(kService, "Slow", "", 100ms);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Code::kDeadlineExceeded);
  auto stopped = handler_stopped.get_future();
  ASSERT_EQ(stopped.wait_for(kStuck), std::future_status::ready);
  EXPECT_TRUE(stopped.get());
  // the late "too late" answer went nowhere; the connection still works
  EXPECT_EQ(client->call(kService, "Echo", "after"), CallResult("after"));
}

TEST(Ttrpc, ServerAnswersDeadlineExceededItself) {
  // A raw client that keeps listening after its deadline sees the server's own answer.
  Served s;
  s.server.add_method(kService, "Slow",
                      [&](const CallContext& ctx, std::string_view) -> CallResult {
                        block_until_stopped(ctx);
                        return "too late";
                      });
  s.start();
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, s.socket.c_str());
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::ttrpc::Request req;
  req.set_service(std::string(kService));
  req.set_method("Slow");
  req.set_timeout_nano(50'000'000);
  std::string frame = encode_frame(1, FrameType::kRequest, req.SerializeAsString());
  ASSERT_EQ(::write(fd, frame.data(), frame.size()), static_cast<ssize_t>(frame.size()));
  FrameDecoder decoder;
  std::vector<Frame> frames;
  while (frames.empty()) {
    pollfd p{fd, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(kStuck).count())), 1);
    std::uint8_t buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    ASSERT_GT(n, 0);
    decoder.feed(ByteView(buf, static_cast<std::size_t>(n)), frames);
  }
  ::close(fd);
  ASSERT_EQ(frames.size(), 1U);
  ::ttrpc::Response resp;
  ASSERT_TRUE(resp.ParseFromString(frames[0].payload));
  EXPECT_EQ(frames[0].header.stream_id, 1U);
  EXPECT_EQ(resp.status().code(), static_cast<int>(Code::kDeadlineExceeded));
}

TEST(Ttrpc, ClientGoneMidCallStopsTheCallAndTheServerGoesOn) {
  Served s;
  Arrivals entered;
  std::promise<bool> handler_stopped;
  s.server.add_method(kService, "Hang",
                      [&](const CallContext& ctx, std::string_view) -> CallResult {
                        entered.arrive();
                        handler_stopped.set_value(block_until_stopped(ctx));
                        return "nobody listens";
                      });
  add_echo(s.server);
  s.start();
  auto client = s.client();
  auto pending = std::async(std::launch::async, [&] { return client->call(kService, "Hang", ""); });
  ASSERT_TRUE(entered.wait_for_count(1));
  client->close();
  auto r = pending.get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Code::kUnavailable);
  auto stopped = handler_stopped.get_future();
  ASSERT_EQ(stopped.wait_for(kStuck), std::future_status::ready);
  EXPECT_TRUE(stopped.get());
  EXPECT_EQ(client->call(kService, "Echo", "x").error().code, Code::kUnavailable);
  EXPECT_EQ(s.client()->call(kService, "Echo", "next"), CallResult("next"));
}

// A raw connection for hostile frames: writes bytes, reads answers by stream id.
class RawConnection {
 public:
  explicit RawConnection(const std::filesystem::path& socket) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, socket.c_str());
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~RawConnection() { ::close(fd_); }
  [[nodiscard]] bool connected() const { return connected_; }
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  // The next response frame's status code, or -1 when none came or the connection closed.
  int next_status(std::uint32_t* id = nullptr) {
    while (frames_.empty()) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(kStuck).count())) != 1) {
        return -1;
      }
      std::uint8_t buf[4096];
      const ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) return -1;
      decoder_.feed(ByteView(buf, static_cast<std::size_t>(n)), frames_);
    }
    Frame f = std::move(frames_.front());
    frames_.erase(frames_.begin());
    if (id != nullptr) *id = f.header.stream_id;
    ::ttrpc::Response resp;
    if (!resp.ParseFromString(f.payload)) return -1;
    return resp.status().code();
  }
  // True when the server closed the connection (EOF) within kStuck.
  bool closed_by_peer() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(kStuck).count())) != 1) {
      return false;
    }
    char c = 0;
    return ::read(fd_, &c, 1) == 0;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  FrameDecoder decoder_;
  std::vector<Frame> frames_;
};

std::string request_frame(std::uint32_t id, std::string_view method, std::string_view payload) {
  ::ttrpc::Request req;
  req.set_service(std::string(kService));
  req.set_method(std::string(method));
  req.set_payload(std::string(payload));
  return encode_frame(id, FrameType::kRequest, req.SerializeAsString());
}

// containerd's Go client sends timeout_nano = deadline - now: negative when its context expired
// just before the send. Such a call ran without a deadline; it is answered DEADLINE_EXCEEDED
// and never started (the client has given up: a create must not happen behind its back).
TEST(Ttrpc, NegativeTimeoutIsAnsweredDeadlineExceededAndNotRun) {
  Served s;
  std::atomic<bool> ran{false};
  s.server.add_method(kService, "Slow",
                      [&](const CallContext& ctx, std::string_view) -> CallResult {
                        ran = true;
                        block_until_stopped(ctx);
                        return "too late";
                      });
  add_echo(s.server);
  s.start();
  RawConnection raw(s.socket);
  ::ttrpc::Request req;
  req.set_service(std::string(kService));
  req.set_method("Slow");
  req.set_timeout_nano(-1);
  ASSERT_TRUE(raw.send(encode_frame(1, FrameType::kRequest, req.SerializeAsString())));
  EXPECT_EQ(raw.next_status(), static_cast<int>(Code::kDeadlineExceeded));
  ASSERT_TRUE(raw.send(request_frame(3, "Echo", "next")));
  EXPECT_EQ(raw.next_status(), 0);
  s.server.stop();  // joins every call the server started
  EXPECT_FALSE(ran);
}

// A deadline beyond what a Go time.Duration holds makes the Go client send timeout_nano =
// 2^63-1; steady_clock::now() + that overflowed (into a passed deadline: DEADLINE_EXCEEDED at
// once). A timeout the clock cannot represent is no deadline.
TEST(Ttrpc, LargestTimeoutIsNoDeadline) {
  Served s;
  std::promise<std::optional<std::chrono::steady_clock::time_point>> seen;
  Arrivals release;
  s.server.add_method(kService, "Deadline",
                      [&](const CallContext& ctx, std::string_view) -> CallResult {
                        seen.set_value(ctx.deadline);
                        // still running when a wrongly passed deadline would be enforced
                        release.wait_for_count(1);
                        return "answered";
                      });
  s.start();
  RawConnection raw(s.socket);
  auto send = [&](std::uint32_t id, std::int64_t nanos) {
    ::ttrpc::Request req;
    req.set_service(std::string(kService));
    req.set_method("Deadline");
    req.set_timeout_nano(nanos);
    return raw.send(encode_frame(id, FrameType::kRequest, req.SerializeAsString()));
  };
  ASSERT_TRUE(send(1, std::numeric_limits<std::int64_t>::max()));
  auto deadline = seen.get_future();
  ASSERT_EQ(deadline.wait_for(kStuck), std::future_status::ready);
  EXPECT_FALSE(deadline.get().has_value());
  release.arrive();
  EXPECT_EQ(raw.next_status(), 0);
}

TEST(Ttrpc, HostileFramesGetErrorsAndTheConnectionGoesOn) {
  Served s;
  add_echo(s.server);
  s.start();
  RawConnection raw(s.socket);
  ASSERT_TRUE(raw.connected());
  const int kInvalid = static_cast<int>(Code::kInvalidArgument);
  std::uint32_t id = 0;

  // not a ttrpc.Request (a truncated varint field)
  ASSERT_TRUE(raw.send(encode_frame(1, FrameType::kRequest, "\x0a\xff\xff\xff")));
  EXPECT_EQ(raw.next_status(&id), kInvalid);
  EXPECT_EQ(id, 1U);
  // invalid UTF-8 in a string field
  ASSERT_TRUE(raw.send(encode_frame(3, FrameType::kRequest, std::string("\x0a\x02\xff\xfe", 4))));
  EXPECT_EQ(raw.next_status(), kInvalid);
  // an even (server-side) stream id
  ASSERT_TRUE(raw.send(request_frame(4, "Echo", "x")));
  EXPECT_EQ(raw.next_status(&id), kInvalid);
  EXPECT_EQ(id, 4U);
  // a response frame from the client is ignored; an unknown frame type too
  ASSERT_TRUE(raw.send(encode_frame(5, FrameType::kResponse, "junk")));
  ASSERT_TRUE(raw.send(encode_frame(7, static_cast<FrameType>(9), "junk")));
  // an oversized frame is skipped without being buffered, answered, and the stream stays in sync
  std::string big = request_frame(9, "Echo", std::string(kMaxMessageBytes + 1, 'z'));
  ASSERT_TRUE(raw.send(big));
  EXPECT_EQ(raw.next_status(&id), static_cast<int>(Code::kResourceExhausted));
  EXPECT_EQ(id, 9U);
  ASSERT_TRUE(raw.send(request_frame(11, "Echo", "still here")));
  EXPECT_EQ(raw.next_status(&id), 0);
  EXPECT_EQ(id, 11U);
  // half a header, then the client goes: the server ends this connection quietly
  ASSERT_TRUE(raw.send(std::string("\x00\x00\x00", 3)));
}

TEST(Ttrpc, SameStreamIdTwiceInFlightIsRefused) {
  Served s;
  Arrivals entered;
  add_hang(s.server, entered);
  s.start();
  RawConnection raw(s.socket);
  ASSERT_TRUE(raw.send(request_frame(7, "Hang", "")));
  ASSERT_TRUE(entered.wait_for_count(1));
  ASSERT_TRUE(raw.send(request_frame(7, "Hang", "")));
  std::uint32_t id = 0;
  EXPECT_EQ(raw.next_status(&id), static_cast<int>(Code::kInvalidArgument));
  EXPECT_EQ(id, 7U);
}

// A stream id is free again once its answer is out: a peer that reuses ids (a new host
// connection on a virtio-serial port, which is one byte stream for the guest's whole life, starts
// again at 1) must never be told the id is still in flight.
TEST(Ttrpc, StreamIdIsFreeOnceAnswered) {
  Served s;
  add_echo(s.server);
  s.start();
  RawConnection raw(s.socket);
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(raw.send(request_frame(1, "Echo", "again")));
    std::uint32_t id = 0;
    ASSERT_EQ(raw.next_status(&id), 0) << "round " << i;
    ASSERT_EQ(id, 1U);
  }
}

TEST(Ttrpc, InFlightAndConnectionLimits) {
  Served s(ServerConfig{.max_connections = 2, .max_in_flight = 2});
  Arrivals entered;
  add_hang(s.server, entered);
  s.start();
  RawConnection raw(s.socket);
  ASSERT_TRUE(raw.send(request_frame(1, "Hang", "")));
  ASSERT_TRUE(raw.send(request_frame(3, "Hang", "")));
  ASSERT_TRUE(entered.wait_for_count(2));
  ASSERT_TRUE(raw.send(request_frame(5, "Hang", "")));
  std::uint32_t id = 0;
  EXPECT_EQ(raw.next_status(&id), static_cast<int>(Code::kResourceExhausted));
  EXPECT_EQ(id, 5U);
  RawConnection second(s.socket);
  ASSERT_TRUE(second.send(request_frame(1, "Hang", "")));
  ASSERT_TRUE(entered.wait_for_count(3));  // the second connection is served
  RawConnection third(s.socket);
  EXPECT_TRUE(third.closed_by_peer());  // over max_connections: closed at accept
}

// A pty pair in raw mode is a real character device carrying one byte stream with no accept,
// as a virtio-serial port (/dev/vport0p1) does in a VM guest.
TEST(Ttrpc, ServesACharacterDevice) {
  const int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(master, 0);
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  const std::string device = ::ptsname(master);
  const int port = ::open(device.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(port, 0);
  struct stat st {};
  ASSERT_EQ(::fstat(port, &st), 0);
  ASSERT_TRUE(S_ISCHR(st.st_mode));
  termios tio{};
  ASSERT_EQ(::tcgetattr(port, &tio), 0);
  ::cfmakeraw(&tio);
  ASSERT_EQ(::tcsetattr(port, TCSANOW, &tio), 0);
  ASSERT_EQ(::tcgetattr(master, &tio), 0);
  ::cfmakeraw(&tio);
  ASSERT_EQ(::tcsetattr(master, TCSANOW, &tio), 0);

  Server server;
  add_echo(server);
  std::thread serving([&] { server.serve_fd(port); });
  {
    Client client(master);
    std::string binary;
    for (int i = 0; i < 256; ++i) binary += static_cast<char>(i);  // every byte value, raw
    EXPECT_EQ(client.call(kService, "Echo", binary), CallResult(binary));
    std::vector<std::future<CallResult>> calls;
    for (int i = 0; i < 8; ++i) {
      calls.push_back(std::async(std::launch::async, [&, i] {
        return client.call(kService, "Echo", std::string(10'000 * (i + 1), 'a' + i));
      }));
    }
    for (int i = 0; i < 8; ++i) {
      EXPECT_EQ(calls[i].get(), CallResult(std::string(10'000 * (i + 1), 'a' + i)));
    }
  }
  // the host side closed: the device reports a hang-up and serve_fd returns
  serving.join();
}

TEST(FrameDecoder, ReassemblesFramesFedByteByByte) {
  std::string stream = encode_frame(1, FrameType::kRequest, "abc") +
                       encode_frame(3, FrameType::kResponse, "") +
                       encode_frame(5, FrameType::kRequest, std::string(100, 'q'));
  FrameDecoder decoder(64);
  std::vector<Frame> frames;
  for (char c : stream) {
    auto b = static_cast<std::uint8_t>(c);
    decoder.feed(ByteView(&b, 1), frames);
  }
  ASSERT_EQ(frames.size(), 3U);
  EXPECT_EQ(frames[0].payload, "abc");
  EXPECT_EQ(frames[0].header.stream_id, 1U);
  EXPECT_EQ(frames[1].payload, "");
  EXPECT_EQ(frames[1].header.type, 2);
  EXPECT_TRUE(frames[2].oversized);
  EXPECT_TRUE(frames[2].payload.empty());
  EXPECT_EQ(frames[2].header.length, 100U);
  EXPECT_TRUE(decoder.idle());
  decoder.feed(as_bytes(std::string_view("\x00\x00", 2)), frames);
  EXPECT_FALSE(decoder.idle());
}

TEST(FrameDecoder, HeaderLayoutIsBigEndian) {
  std::string f = encode_frame(0x01020304, FrameType::kResponse, "xy");
  ASSERT_EQ(f.size(), kHeaderBytes + 2);
  EXPECT_EQ(f.substr(0, 10), std::string("\x00\x00\x00\x02\x01\x02\x03\x04\x02\x00", 10));
  EXPECT_EQ(code_name(Code::kDeadlineExceeded), "DEADLINE_EXCEEDED");
  EXPECT_EQ(code_name(static_cast<Code>(99)), "UNKNOWN");
}

}  // namespace
}  // namespace coffer::net::ttrpc
