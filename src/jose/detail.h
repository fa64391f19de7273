// Helpers shared by the jose sources; not part of the module's interface.
#pragma once

#include <string>

#include "core/error.h"
#include "core/json.h"

namespace coffer::jose::detail {

// Compact JSON text; strings that are not valid UTF-8 fail with `code` instead of throwing.
inline Result<std::string> dump_json(const Json& j, const char* code) {
  try {
    return j.dump();
  } catch (const Json::exception& e) {
    return make_error(code, std::string("cannot serialize JSON: ") + e.what());
  }
}

}  // namespace coffer::jose::detail
