// A typed client for coffer-agent's API (coffer.agent.v1 over ttrpc, docs/agent-api.md): what the
// host side (`coffer run`, later the shim) calls. One connection, thread-safe (calls from several
// threads run concurrently: ReadOutput on stdout and stderr, WaitProcess, WriteStdin together).
//
//   auto agent = AgentClient::connect(enclave->agent_socket());
//   auto info = (*agent)->create_container(request);   // Error{"policy_denied", "..."}
//
// A failed call is an Error whose code is the agent's error code (the part of the status message
// before ": ", e.g. "policy_denied", "kbs_unreachable") and whose message is the rest, as printable
// ASCII; rpc_code() tells the transport's status code of the last failure of that kind:
//   "agent_unavailable"  the connection is gone (the agent exited)
//   "agent_timeout"      the call's deadline passed
//   "agent_bad_response" the answer does not parse
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/agent/v1/agent.pb.h"
#include "core/error.h"
#include "net/ttrpc/client.h"

namespace coffer::runtime {

namespace agentpb = ::coffer::agent::v1;

// The agent's answer to a failed call, split into its parts. `code` is the agent's error code
// ("policy_denied"), or a client-side one (agent_unavailable, agent_timeout, agent_bad_response,
// agent_error when the status message carries none); `rpc` the google.rpc code.
Error agent_error(const net::ttrpc::RpcStatus& status);

struct OutputChunk {
  std::string data;
  bool eof = false;
};

class AgentClient {
 public:
  static Result<std::unique_ptr<AgentClient>> connect(const std::filesystem::path& socket);
  explicit AgentClient(std::unique_ptr<net::ttrpc::Client> client);

  // Per-call deadline for the quick calls (state, signal, remove, ...); 0: none. Blocking calls
  // (wait, read_output, write_stdin, pull, create_container) take no deadline.
  void set_timeout(std::chrono::milliseconds t) { timeout_ = t; }

  Result<std::string> health();
  Result<agentpb::GuestDetailsResponse> guest_details();
  Result<agentpb::PullImageResponse> pull_image(const std::string& image);
  Status create_sandbox(const std::string& sandbox_id);
  Status remove_sandbox(const std::string& sandbox_id);
  Result<agentpb::CreateContainerResponse> create_container(
      const agentpb::CreateContainerRequest& request);
  Status start_container(const std::string& container_id);
  Result<agentpb::ExitStatus> wait_process(const std::string& container_id,
                                           const std::string& exec_id = "");
  Status signal_process(const std::string& container_id, std::uint32_t signal,
                        const std::string& exec_id = "");
  Result<std::uint64_t> write_stdin(const std::string& container_id, std::string_view data,
                                    const std::string& exec_id = "");
  Status close_stdin(const std::string& container_id, const std::string& exec_id = "");
  Result<OutputChunk> read_output(const std::string& container_id, bool stderr_stream,
                                  std::uint32_t max_bytes = 0, const std::string& exec_id = "");
  Status resize_tty(const std::string& container_id, std::uint32_t rows, std::uint32_t cols,
                    const std::string& exec_id = "");
  Status remove_container(const std::string& container_id);
  Result<agentpb::ContainerInfo> container_state(const std::string& container_id);
  Result<std::vector<agentpb::ContainerInfo>> list_containers(const std::string& sandbox_id = "");

  // Ends the connection: blocked calls return agent_unavailable.
  void close();

  // The raw call: `response` parsed from the answer.
  Status call(std::string_view method, const google::protobuf::Message& request,
              google::protobuf::Message& response, std::chrono::nanoseconds timeout);

 private:
  std::unique_ptr<net::ttrpc::Client> client_;
  std::chrono::milliseconds timeout_{30000};
};

}  // namespace coffer::runtime
