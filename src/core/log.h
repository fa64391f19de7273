// Logging goes through spdlog everywhere. Never log secrets: keys, tokens, resource bodies.
#pragma once

#include <string_view>

#include <spdlog/spdlog.h>

namespace coffer::log {

// Sets up the default logger on stderr with the given level name
// ("trace", "debug", "info", "warn", "error", "off"); unknown names mean "info".
void init(std::string_view level = "info");

}  // namespace coffer::log
