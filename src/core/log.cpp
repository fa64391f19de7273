#include "core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace coffer::log {

void init(std::string_view level) {
  auto logger = spdlog::stderr_color_mt("coffer");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
  auto lvl = spdlog::level::from_str(std::string(level));
  if (lvl == spdlog::level::off && level != "off") lvl = spdlog::level::info;
  spdlog::set_level(lvl);
}

}  // namespace coffer::log
