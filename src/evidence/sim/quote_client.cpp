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

namespace {

Result<Bytes> decoded_member(const Json& answer, const char* name, bool hex) {
  auto text = json_string(answer, name);
  if (!text) return make_error("quote_service_error", std::string("the answer has no ") + name);
  auto bytes = hex ? hex_decode(*text) : base64_decode(*text);
  if (!bytes)
    return make_error("quote_service_error", std::string("bad ") + name + " in the answer");
  return bytes;
}

}  // namespace

Result<Bytes> QuoteServiceClient::report(ByteView target_mr_enclave, ByteView report_data) const {
  if (target_mr_enclave.size() != 32)
    return make_error("bad_request", "the target MRENCLAVE is 32 bytes");
  if (report_data.size() > 64) return make_error("bad_request", "report data is at most 64 bytes");
  Json answer = COFFER_TRY(call({{"op", "report"},
                                 {"target_info", {{"mr_enclave", hex_encode(target_mr_enclave)}}},
                                 {"report_data", base64_encode(report_data)}}));
  return decoded_member(answer, "report", false);
}

Result<Json> QuoteServiceClient::verify_report(ByteView report) const {
  Json answer = COFFER_TRY(call({{"op", "verify_report"}, {"report", base64_encode(report)}}));
  if (answer.value("ok", false) != true)
    return make_error("quote_service_error", "verify_report answered without ok");
  return answer;
}

Result<Bytes> QuoteServiceClient::seal_key(std::string_view policy, ByteView key_id,
                                           std::optional<std::uint16_t> isv_svn) const {
  if (key_id.size() != 32) return make_error("bad_request", "the key id is 32 bytes");
  Json request = {
      {"op", "seal_key"}, {"policy", std::string(policy)}, {"key_id", hex_encode(key_id)}};
  if (isv_svn) request["isv_svn"] = *isv_svn;
  Json answer = COFFER_TRY(call(request));
  auto key = COFFER_TRY(decoded_member(answer, "key", true));
  if (key.size() != 32) return make_error("quote_service_error", "the sealing key is not 32 bytes");
  return key;
}

}  // namespace coffer::evidence::sim
