// Unix stream sockets: the one place a filesystem path becomes a sockaddr_un.
#pragma once

#include <sys/un.h>

#include <filesystem>

#include "core/error.h"

namespace coffer::net {

// The address of `path`; "bad_socket_path" when it is empty or longer than sun_path holds.
Result<sockaddr_un> unix_address(const std::filesystem::path& path);

}  // namespace coffer::net
