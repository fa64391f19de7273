// RFC 7807 problem responses in the shape CoCo's KBS uses:
// {"type": "https://github.com/confidential-containers/kbs/errors/<Variant>", "detail": "..."}.
#pragma once

#include <string>
#include <string_view>

#include "core/error.h"
#include "net/http.h"

namespace coffer::trustee::kbs {

constexpr std::string_view kErrorTypePrefix =
    "https://github.com/confidential-containers/kbs/errors/";

net::Response problem(int status, std::string_view variant, std::string_view detail);

// Maps an internal error code to (status, variant); unknown codes are 500 InternalError with a
// generic detail, so internal messages never leak.
net::Response problem_from_error(const Error& e);

}  // namespace coffer::trustee::kbs
