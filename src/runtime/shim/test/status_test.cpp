// The status containerd gets for an error (task_service.h to_status): the gRPC code its errdefs
// turn into ErrNotFound, ErrAlreadyExists, ... and a message that keeps the error code.
#include <gtest/gtest.h>

#include "runtime/shim/task_service.h"

namespace coffer::runtime::shim {
namespace {

using net::ttrpc::Code;

TEST(ToStatus, Codes) {
  const std::pair<const char*, Code> cases[] = {
      {"not_found", Code::kNotFound},
      {"container_not_found", Code::kNotFound},
      {"already_exists", Code::kAlreadyExists},
      {"failed_precondition", Code::kFailedPrecondition},
      {"bad_state", Code::kFailedPrecondition},
      {"not_supported", Code::kUnimplemented},
      {"bad_init_data", Code::kInvalidArgument},
      {"no_image_ref", Code::kInvalidArgument},
      {"policy_denied", Code::kPermissionDenied},
      {"kbs_forbidden", Code::kPermissionDenied},
      {"no_valid_signature", Code::kPermissionDenied},
      {"agent_unavailable", Code::kUnavailable},
      {"agent_timeout", Code::kDeadlineExceeded},
      {"runtime_failed", Code::kInternal},
  };
  for (const auto& [code, want] : cases) {
    EXPECT_EQ(to_status(Error{code, "x"}).code, want) << code;
  }
}

TEST(ToStatus, MessageKeepsTheCodeAndIsPrintable) {
  const auto s = to_status(Error{"policy_denied", "agent policy denied ExecProcess\n\x01"});
  EXPECT_EQ(s.message.rfind("policy_denied: agent policy denied ExecProcess", 0), 0U);
  EXPECT_EQ(s.message.find('\x01'), std::string::npos);
  EXPECT_LE(to_status(Error{"x", std::string(100000, 'a')}).message.size(), 2048U * 4);
}

}  // namespace
}  // namespace coffer::runtime::shim
