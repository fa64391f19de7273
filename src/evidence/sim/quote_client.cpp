#include "evidence/sim/quote_client.h"

#include <sys/un.h>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "net/unix_socket.h"

namespace coffer::evidence::sim {

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, kQuoteIoTimeoutMs) <= 0) return false;
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

Result<Json> QuoteServiceClient::call(const Json& request) const {
  auto addr = COFFER_TRY(net::unix_address(socket_path_));
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error("quote_service_error", "socket failed");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return make_error("quote_service_unavailable", "cannot connect to the quote service at " +
                                                       socket_path_.string() + ": " +
                                                       std::strerror(errno));
  }
  if (!write_all(fd, request.dump() + "\n"))
    return make_error("quote_service_error", "cannot send the request");
  std::string buffer;
  char chunk[8192];
  while (buffer.find('\n') == std::string::npos) {
    if (buffer.size() > (std::size_t{16} << 20))
      return make_error("quote_service_error", "answer too large");
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, kQuoteIoTimeoutMs * 3) <= 0)
      return make_error("quote_service_error", "no answer from the quote service");
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error("quote_service_error", "the quote service closed the connection");
    buffer.append(chunk, static_cast<std::size_t>(n));
  }
  auto answer = parse_json(buffer.substr(0, buffer.find('\n')));
  if (!answer || !answer->is_object())
    return make_error("quote_service_error", "the answer is not a JSON object");
  if (auto e = answer->find("error"); e != answer->end()) {
    return make_error(e->value("code", "quote_service_error"), e->value("message", ""));
  }
  return answer;
}

}  // namespace coffer::evidence::sim
