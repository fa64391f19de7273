// Helpers for the net tests: a server on 127.0.0.1:0, raw sockets, temp dirs, certificates.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "net/http_server.h"

namespace coffer::net::testing {

// A started server on an ephemeral loopback port.
struct TestServer {
  explicit TestServer(Handler handler, HttpServerConfig config = {}) {
    if (config.sockets == HttpServerConfig{}.sockets) config.sockets = {"127.0.0.1:0"};
    server = std::make_unique<HttpServer>(config, std::move(handler));
    const auto started = server->start();
    EXPECT_TRUE(started.has_value()) << started.error().to_string();
    port = server->bound_ports().at(0);
  }
  [[nodiscard]] std::string url(const std::string& path, const std::string& host = "127.0.0.1",
                                const std::string& scheme = "http") const {
    return scheme + "://" + host + ":" + std::to_string(port) + path;
  }

  std::unique_ptr<HttpServer> server;
  std::uint16_t port = 0;
};

// A blocking TCP connection for sending hand-made (or broken) HTTP.
class RawConnection {
 public:
  explicit RawConnection(std::uint16_t port) : socket_(ioc_) {
    socket_.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  }
  void send(const std::string& bytes) { boost::asio::write(socket_, boost::asio::buffer(bytes)); }
  // Reads until the server closes the connection (or resets it).
  std::string read_until_close() {
    std::string out;
    boost::system::error_code ec;
    boost::asio::read(socket_, boost::asio::dynamic_buffer(out), ec);
    return out;
  }
  // Reads until `marker` has been seen, returning everything read so far.
  std::string read_until(const std::string& marker) {
    std::string out;
    char buf[4096];
    while (out.find(marker) == std::string::npos) {
      boost::system::error_code ec;
      const auto n = socket_.read_some(boost::asio::buffer(buf), ec);
      if (ec) break;
      out.append(buf, n);
    }
    return out;
  }

 private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket socket_;
};

// A directory removed at the end of the test.
struct TempDir {
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "coffer-net-XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::filesystem::path path;
};

// Writes a self-signed P-256 certificate for localhost/127.0.0.1 (cert.pem, key.pem) into dir.
inline bool make_self_signed(const std::filesystem::path& dir) {
  const std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
      "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout '" +
      (dir / "key.pem").string() + "' -out '" + (dir / "cert.pem").string() + "' 2>/dev/null";
  return std::system(cmd.c_str()) == 0;
}

}  // namespace coffer::net::testing
