#include "runtime/agent_client.h"

#include <gtest/gtest.h>

namespace coffer::runtime {
namespace {

using net::ttrpc::Code;
using net::ttrpc::RpcStatus;

TEST(AgentError, SplitsTheAgentsCodeFromItsMessage) {
  const Error e = agent_error(
      RpcStatus{Code::kPermissionDenied, "policy_denied: CreateContainerRequest is denied"});
  EXPECT_EQ(e.code, "policy_denied");
  EXPECT_EQ(e.message, "CreateContainerRequest is denied");
}

TEST(AgentError, TransportFailuresGetClientCodes) {
  EXPECT_EQ(agent_error(RpcStatus{Code::kUnavailable, "connection closed"}).code,
            "agent_unavailable");
  EXPECT_EQ(agent_error(RpcStatus{Code::kDeadlineExceeded, ""}).code, "agent_timeout");
  const Error e = agent_error(RpcStatus{Code::kInternal, "Not A Code: x"});
  EXPECT_EQ(e.code, "agent_error");
  EXPECT_EQ(e.message, "Not A Code: x");
}

TEST(AgentError, HostileBytesAreQuotedPrintable) {
  const Error e = agent_error(RpcStatus{Code::kInternal, "bad_spec: \x1b[2J\xff"});
  EXPECT_EQ(e.code, "bad_spec");
  EXPECT_EQ(e.message.find('\x1b'), std::string::npos);
  EXPECT_EQ(e.message.find('\xff'), std::string::npos);
}

TEST(AgentClient, ConnectToNothingIsUnavailable) {
  auto c = AgentClient::connect("/nonexistent/coffer-agent.sock");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, "agent_unavailable");
}

}  // namespace
}  // namespace coffer::runtime
