// `coffer kbs ...`: the KBS client (attest, get-resource) and admin commands.
//
// Exit codes scripts can rely on: 0 success; 1 the KBS refused (4xx: policy, attestation,
// authentication, not found); 2 usage or local input error; 3 KBS unreachable or server error.
#pragma once

#include <CLI/CLI.hpp>

namespace coffer::cli {

inline constexpr int kExitRefused = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;

void add_kbs_command(CLI::App& app);

}  // namespace coffer::cli
