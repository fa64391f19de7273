// Shared helpers for trustee tests: temporary directories.
#pragma once

#include "core/test/temp_dir.h"

#include <cstdlib>
#include <filesystem>
#include <string>

namespace coffer::trustee::testing {

using coffer::testing::TempDir;

}  // namespace coffer::trustee::testing
