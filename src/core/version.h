// The version of this coffer build, shared by every executable's --version.
#pragma once

#include <string>
#include <string_view>

namespace coffer {

// The CMake project version, e.g. "0.1.0".
std::string_view version();
// `git describe --always --dirty` of the source tree at configure time; empty when the tree was
// not a git checkout or git was not found.
std::string_view git_describe();
// "<program> 0.1.0 (git 1a2b3c4d5e6f)", or "<program> 0.1.0" without git information.
std::string version_line(std::string_view program);

}  // namespace coffer
