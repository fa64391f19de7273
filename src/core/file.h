// File helpers: bounded reads and crash-safe writes.
#pragma once

#include <sys/types.h>
#include <cstddef>
#include <filesystem>
#include <string>

#include "core/bytes.h"
#include "core/error.h"

namespace coffer {

// Reads a whole file; "not_found" if missing, "too_large" over max_bytes, "io_error" otherwise.
Result<Bytes> read_file(const std::filesystem::path& path,
                        std::size_t max_bytes = 64 * 1024 * 1024);
Result<std::string> read_text_file(const std::filesystem::path& path,
                                   std::size_t max_bytes = 64 * 1024 * 1024);

// Writes to a temporary file in the same directory, fsyncs, then renames over `path`, so a crash
// leaves either the old content or the new, never a mix. `mode` applies to the new file.
Status write_file_atomic(const std::filesystem::path& path, ByteView data, mode_t mode = 0644);

}  // namespace coffer
