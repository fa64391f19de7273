#include "guest/rest_api.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <map>
#include <thread>
#include <vector>

namespace coffer::guest {
namespace {

net::Response error(int status, const std::string& code, const std::string& message) {
  return net::Response::json(status, Json{{"error", code}, {"message", message}});
}

int status_for(const Error& e) {
  if (e.code == "kbs_not_found") return 404;
  if (e.code == "kbs_forbidden") return 403;
  if (e.code == "bad_resource_path") return 400;
  if (e.code == "no_kbs") return 503;
  return 500;
}

net::Response from_error(const Error& e) { return error(status_for(e), e.code, e.message); }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Strict percent-decoding of a query component ("%zz" or a lone "%" is an error).
std::optional<std::string> percent_decode(std::string_view in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return std::nullopt;
    int hi = hex_value(in[i + 1]);
    int lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>((hi << 4) | lo);
    i += 2;
  }
  return out;
}

// name -> value; nullopt for a malformed or repeated parameter.
std::optional<std::map<std::string, std::string>> parse_query(std::string_view query) {
  std::map<std::string, std::string> out;
  std::size_t start = 0;
  while (start <= query.size() && !query.empty()) {
    auto end = query.find('&', start);
    auto part = query.substr(start, end == std::string_view::npos ? query.npos : end - start);
    auto eq = part.find('=');
    auto name = percent_decode(part.substr(0, eq));
    auto value = percent_decode(eq == std::string_view::npos ? "" : part.substr(eq + 1));
    if (!name || !value || name->empty() || out.contains(*name)) return std::nullopt;
    out.emplace(std::move(*name), std::move(*value));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return out;
}

struct ParsedAddress {
  sockaddr_storage addr{};
  socklen_t len = 0;
};

Result<ParsedAddress> parse_address(const std::string& text) {
  std::string host;
  std::string_view port_text;
  if (text.starts_with('[')) {
    auto close = text.find("]:");
    if (close == std::string::npos)
      return make_error("bad_address", "address '" + text + "' is not \"[ipv6]:port\"");
    host = text.substr(1, close - 1);
    port_text = std::string_view(text).substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos)
      return make_error("bad_address", "address '" + text + "' is not \"ip:port\"");
    host = text.substr(0, colon);
    port_text = std::string_view(text).substr(colon + 1);
  }
  unsigned port = 0;
  auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || p != port_text.data() + port_text.size() || port > 65535 ||
      port_text.empty())
    return make_error("bad_address", "address '" + text + "' has a bad port");
  ParsedAddress out;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.addr);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(port));
    out.len = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(port));
    out.len = sizeof(sockaddr_in6);
  } else {
    return make_error("bad_address", "address '" + text + "' is not a literal IP address");
  }
  return out;
}

Result<int> open_listener(const ParsedAddress& a, const std::string& text) {
  int fd = ::socket(a.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error("listen_failed", "socket(): " + std::string(std::strerror(errno)));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (a.addr.ss_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&a.addr), a.len) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EADDRINUSE) return make_error("address_in_use", text + " is already in use");
    return make_error("listen_failed", "cannot bind " + text + ": " + std::strerror(err));
  }
  if (::listen(fd, SOMAXCONN) != 0) {
    int err = errno;
    ::close(fd);
    return make_error("listen_failed", "cannot listen on " + text + ": " + std::strerror(err));
  }
  return fd;
}

}  // namespace

Result<int> listen_in_netns(const std::filesystem::path& netns, const std::string& address) {
  ParsedAddress parsed = COFFER_TRY(parse_address(address));
  int ns_fd = ::open(netns.c_str(), O_RDONLY | O_CLOEXEC);
  if (ns_fd < 0)
    return make_error("netns_failed", "cannot open network namespace " + netns.string() + ": " +
                                          std::strerror(errno));
  // setns() changes the calling thread only: a thread of its own enters the namespace, creates
  // the socket there and ends, so no other thread of the agent ever runs in the pod's namespace.
  Result<int> result = make_error("netns_failed", "not run");
  std::thread worker([&] {
    if (::setns(ns_fd, CLONE_NEWNET) != 0) {
      result = make_error("netns_failed", "cannot enter network namespace " + netns.string() +
                                              ": " + std::strerror(errno));
      return;
    }
    result = open_listener(parsed, address);
  });
  worker.join();
  ::close(ns_fd);
  return result;
}

RestApi::RestApi(AttestationAgent& aa, DataHub& cdh, RestApiOptions options)
    : aa_(aa), cdh_(cdh), options_(std::move(options)) {}

RestApi::~RestApi() { stop(); }

Status RestApi::start() {
  if (server_) return make_error("already_started", "the REST API was started before");
  net::HttpServerConfig config;
  config.worker_threads = options_.worker_threads;
  config.max_body_bytes = 1024;
  config.max_header_bytes = 8 * 1024;
  config.max_connections = 64;
  int fd = -1;
  if (options_.netns.empty()) {
    config.sockets = {options_.address};
  } else {
    fd = COFFER_TRY(listen_in_netns(options_.netns, options_.address));
    config.sockets.clear();
    config.listen_fds = {fd};
  }
  auto server = std::make_unique<net::HttpServer>(
      config, [this](const net::Request& r) { return handle(r); });
  if (auto started = server->start(); !started) {
    if (fd >= 0) ::close(fd);
    return started;
  }
  server_ = std::move(server);
  return ok();
}

void RestApi::stop() {
  if (server_) server_->stop();
}

std::uint16_t RestApi::port() const {
  if (!server_) return 0;
  auto ports = server_->bound_ports();
  return ports.empty() ? 0 : ports[0];
}

net::Response RestApi::handle(const net::Request& request) {
  // 1. only GET, bounded targets
  if (request.method != "GET") {
    auto r = error(405, "method_not_allowed", "only GET is served");
    r.headers.set("Allow", "GET");
    return r;
  }
  if (request.target.size() > kMaxRestTargetBytes)
    return error(414, "target_too_long", "the request target is too long");
  // 2. the path exactly as written: no percent-encoding (so "%2e%2e" and "%2F" cannot hide a
  //    traversal), no ".", ".." or empty segments
  const std::string path = request.path();
  if (!path.starts_with('/')) return error(400, "bad_path", "the path must start with '/'");
  if (path.find('%') != std::string::npos)
    return error(400, "bad_path", "percent-encoded paths are not accepted");
  std::vector<std::string_view> segments;
  std::string_view rest = std::string_view(path).substr(1);
  while (true) {
    auto slash = rest.find('/');
    auto seg = rest.substr(0, slash);
    if (seg.empty() || seg == "." || seg == "..")
      return error(400, "bad_path", "empty, '.' and '..' path segments are not accepted");
    if (!std::all_of(seg.begin(), seg.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-' || c == '.';
        }))
      return error(400, "bad_path", "path segments are made of [A-Za-z0-9_.-]");
    segments.push_back(seg);
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  auto query = parse_query(request.query());
  if (!query) return error(400, "bad_query", "malformed or repeated query parameters");

  // 3. routes
  if (segments.size() == 5 && segments[0] == "cdh" && segments[1] == "resource") {
    std::string uri = "kbs:///" + std::string(segments[2]) + "/" + std::string(segments[3]) + "/" +
                      std::string(segments[4]);
    auto value = cdh_.get_resource(uri);
    if (!value) return from_error(value.error());
    return net::Response::bytes(200, to_string(*value));
  }
  if (segments.size() == 2 && segments[0] == "aa" && segments[1] == "token") {
    auto type = query->find("token_type");
    if (type == query->end() || type->second != "kbs")
      return error(400, "bad_token_type", "token_type must be \"kbs\"");
    auto token = aa_.token();
    if (!token) return from_error(token.error());
    return net::Response::json(200, Json{{"token", *token}});
  }
  if (segments.size() == 2 && segments[0] == "aa" && segments[1] == "evidence") {
    auto data = query->find("runtime_data");
    if (data == query->end())
      return error(400, "bad_runtime_data", "the runtime_data query parameter is required");
    if (data->second.size() > kMaxRuntimeDataBytes)
      return error(400, "bad_runtime_data",
                   "runtime_data is over " + std::to_string(kMaxRuntimeDataBytes) + " bytes");
    auto evidence = aa_.evidence(as_bytes(data->second));
    if (!evidence) return from_error(evidence.error());
    return net::Response::json(200, *evidence);
  }
  return error(404, "not_found", "no such endpoint");
}

}  // namespace coffer::guest
