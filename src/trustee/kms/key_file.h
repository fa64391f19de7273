// The key-encryption key (KEK) that protects resources at rest: 32 random bytes in a file of
// mode 0600, created at first start.
#pragma once

#include <filesystem>

#include "core/bytes.h"
#include "core/error.h"

namespace coffer::trustee::kms {

// Loads the KEK from `path`, creating it (mode 0600, parent directory must exist) if absent.
// Refuses a file of the wrong size ("bad_key_file") or readable by group/others
// ("insecure_key_file").
Result<Bytes> load_or_create_kek(const std::filesystem::path& path);

}  // namespace coffer::trustee::kms
