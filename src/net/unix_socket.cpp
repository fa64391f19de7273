#include "net/unix_socket.h"

#include <sys/socket.h>

#include <cstring>
#include <string>

namespace coffer::net {

Result<sockaddr_un> unix_address(const std::filesystem::path& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string s = path.string();
  if (s.empty() || s.size() >= sizeof(addr.sun_path)) {
    return make_error("bad_socket_path", "socket path is empty or longer than " +
                                             std::to_string(sizeof(addr.sun_path) - 1) +
                                             " bytes: " + s);
  }
  std::memcpy(addr.sun_path, s.c_str(), s.size() + 1);
  return addr;
}

}  // namespace coffer::net
