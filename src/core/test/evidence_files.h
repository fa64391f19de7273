// The real TEE evidence in testdata/evidence, for tests. A file that is missing or unreadable
// fails the test with its path and the reason (the helpers throw; GoogleTest reports the message)
// instead of letting the test dereference an empty Result.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/file.h"

namespace coffer::testing {

// COFFER_SOURCE_DIR/testdata/evidence/<relative>; a directory path ends in '/'.
inline std::string evidence_path(std::string_view relative = {}) {
  return std::string(COFFER_SOURCE_DIR) + "/testdata/evidence/" + std::string(relative);
}

inline Bytes evidence_bytes(std::string_view relative) {
  auto bytes = read_file(evidence_path(relative));
  if (!bytes) {
    throw std::runtime_error("test evidence " + evidence_path(relative) + " cannot be read (" +
                             bytes.error().to_string() +
                             "); testdata/evidence/README.md lists the corpus");
  }
  return std::move(*bytes);
}

inline std::string evidence_text(std::string_view relative) {
  return to_string(evidence_bytes(relative));
}

}  // namespace coffer::testing
