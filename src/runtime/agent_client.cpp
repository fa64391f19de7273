#include "runtime/agent_client.h"

#include <utility>

#include "core/bytes.h"

namespace coffer::runtime {

namespace {
constexpr std::string_view kService = "coffer.agent.v1.Agent";

bool is_code_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }
}  // namespace

Error agent_error(const net::ttrpc::RpcStatus& status) {
  using net::ttrpc::Code;
  const std::string text = printable_excerpt(status.message, 1024);
  // "<error code>: <text>" as the agent writes it; anything else is kept whole.
  const auto colon = text.find(": ");
  std::string code;
  std::string message = text;
  if (colon != std::string::npos && colon > 0 && colon <= 64) {
    bool ok = true;
    for (std::size_t i = 0; i < colon; ++i) ok = ok && is_code_char(text[i]);
    if (ok) {
      code = text.substr(0, colon);
      message = text.substr(colon + 2);
    }
  }
  if (code.empty()) {
    switch (status.code) {
      case Code::kUnavailable:
        code = "agent_unavailable";
        break;
      case Code::kDeadlineExceeded:
        code = "agent_timeout";
        break;
      default:
        code = "agent_error";
        break;
    }
    if (message.empty()) message = std::string(net::ttrpc::code_name(status.code));
  }
  return Error{std::move(code), std::move(message)};
}

Result<std::unique_ptr<AgentClient>> AgentClient::connect(const std::filesystem::path& socket) {
  auto c = net::ttrpc::Client::connect_unix(socket);
  if (!c) return make_error("agent_unavailable", c.error().message);
  return std::make_unique<AgentClient>(std::move(*c));
}

AgentClient::AgentClient(std::unique_ptr<net::ttrpc::Client> client) : client_(std::move(client)) {}

void AgentClient::close() { client_->close(); }

Status AgentClient::call(std::string_view method, const google::protobuf::Message& request,
                         google::protobuf::Message& response, std::chrono::nanoseconds timeout) {
  auto r = client_->call(kService, method, request.SerializeAsString(), timeout);
  if (!r) return std::unexpected(agent_error(r.error()));
  if (!response.ParseFromString(*r)) {
    return make_error("agent_bad_response", "the agent's answer to " + std::string(method) +
                                                " is not a " + response.GetTypeName());
  }
  return {};
}

namespace {
constexpr std::chrono::nanoseconds kNoDeadline{0};
}

Result<std::string> AgentClient::health() {
  agentpb::HealthResponse resp;
  if (auto s = call("Health", agentpb::HealthRequest(), resp, timeout_); !s) {
    return std::unexpected(s.error());
  }
  return resp.status();
}

Result<agentpb::GuestDetailsResponse> AgentClient::guest_details() {
  agentpb::GuestDetailsResponse resp;
  if (auto s = call("GuestDetails", agentpb::GuestDetailsRequest(), resp, timeout_); !s) {
    return std::unexpected(s.error());
  }
  return resp;
}

Result<agentpb::PullImageResponse> AgentClient::pull_image(const std::string& image) {
  agentpb::PullImageRequest r;
  r.set_image(image);
  agentpb::PullImageResponse resp;
  if (auto s = call("PullImage", r, resp, kNoDeadline); !s) return std::unexpected(s.error());
  return resp;
}

Status AgentClient::create_sandbox(const std::string& sandbox_id) {
  agentpb::CreateSandboxRequest r;
  r.set_sandbox_id(sandbox_id);
  agentpb::Empty e;
  return call("CreateSandbox", r, e, timeout_);
}

Status AgentClient::remove_sandbox(const std::string& sandbox_id) {
  agentpb::RemoveSandboxRequest r;
  r.set_sandbox_id(sandbox_id);
  agentpb::Empty e;
  return call("RemoveSandbox", r, e, timeout_);
}

Result<agentpb::CreateContainerResponse> AgentClient::create_container(
    const agentpb::CreateContainerRequest& request) {
  agentpb::CreateContainerResponse resp;
  if (auto s = call("CreateContainer", request, resp, kNoDeadline); !s) {
    return std::unexpected(s.error());
  }
  return resp;
}

Status AgentClient::start_container(const std::string& container_id) {
  agentpb::StartContainerRequest r;
  r.set_container_id(container_id);
  agentpb::Empty e;
  return call("StartContainer", r, e, timeout_);
}

Result<agentpb::ExitStatus> AgentClient::wait_process(const std::string& container_id,
                                                      const std::string& exec_id) {
  agentpb::WaitProcessRequest r;
  r.set_container_id(container_id);
  r.set_exec_id(exec_id);
  agentpb::WaitProcessResponse resp;
  if (auto s = call("WaitProcess", r, resp, kNoDeadline); !s) return std::unexpected(s.error());
  return resp.exit();
}

Status AgentClient::signal_process(const std::string& container_id, std::uint32_t signal,
                                   const std::string& exec_id) {
  agentpb::SignalProcessRequest r;
  r.set_container_id(container_id);
  r.set_exec_id(exec_id);
  r.set_signal(signal);
  agentpb::Empty e;
  return call("SignalProcess", r, e, timeout_);
}

Result<std::uint64_t> AgentClient::write_stdin(const std::string& container_id,
                                               std::string_view data, const std::string& exec_id) {
  agentpb::WriteStdinRequest r;
  r.set_container_id(container_id);
  r.set_exec_id(exec_id);
  r.set_data(std::string(data));
  agentpb::WriteStdinResponse resp;
  if (auto s = call("WriteStdin", r, resp, kNoDeadline); !s) return std::unexpected(s.error());
  return resp.written();
}

Status AgentClient::close_stdin(const std::string& container_id, const std::string& exec_id) {
  agentpb::CloseStdinRequest r;
  r.set_container_id(container_id);
  r.set_exec_id(exec_id);
  agentpb::Empty e;
  return call("CloseStdin", r, e, timeout_);
}

Result<OutputChunk> AgentClient::read_output(const std::string& container_id, bool stderr_stream,
                                             std::uint32_t max_bytes, const std::string& exec_id) {
  agentpb::ReadOutputRequest r;
  r.set_container_id(container_id);
  r.set_exec_id(exec_id);
  r.set_stream(stderr_stream ? agentpb::OUTPUT_STREAM_STDERR : agentpb::OUTPUT_STREAM_STDOUT);
  r.set_max_bytes(max_bytes);
  agentpb::ReadOutputResponse resp;
  if (auto s = call("ReadOutput", r, resp, kNoDeadline); !s) return std::unexpected(s.error());
  return OutputChunk{resp.data(), resp.eof()};
}

Status AgentClient::resize_tty(const std::string& container_id, std::uint32_t rows,
                               std::uint32_t cols, const std::string& exec_id) {
  agentpb::ResizeTtyRequest r;
  r.set_container_id(container_id);
  r.set_exec_id(exec_id);
  r.set_rows(rows);
  r.set_cols(cols);
  agentpb::Empty e;
  return call("ResizeTty", r, e, timeout_);
}

Status AgentClient::remove_container(const std::string& container_id) {
  agentpb::RemoveContainerRequest r;
  r.set_container_id(container_id);
  agentpb::Empty e;
  return call("RemoveContainer", r, e, timeout_);
}

Result<agentpb::ContainerInfo> AgentClient::container_state(const std::string& container_id) {
  agentpb::ContainerStateRequest r;
  r.set_container_id(container_id);
  agentpb::ContainerStateResponse resp;
  if (auto s = call("ContainerState", r, resp, timeout_); !s) return std::unexpected(s.error());
  return resp.container();
}

Result<std::vector<agentpb::ContainerInfo>> AgentClient::list_containers(
    const std::string& sandbox_id) {
  agentpb::ListContainersRequest r;
  r.set_sandbox_id(sandbox_id);
  agentpb::ListContainersResponse resp;
  if (auto s = call("ListContainers", r, resp, timeout_); !s) return std::unexpected(s.error());
  return std::vector<agentpb::ContainerInfo>(resp.containers().begin(), resp.containers().end());
}

}  // namespace coffer::runtime
