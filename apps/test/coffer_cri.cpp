// coffer-cri: a test-only CRI client that acts as kubelet against containerd's CRI plugin
// (docs/kubernetes.md, "Testing through CRI"). Not installed.
//
//   coffer-cri --address unix:///SOCK CALL [REQUEST_JSON]
//     one RuntimeService/ImageService call; the request in protobuf's JSON mapping (field names
//     as in the CRI proto, e.g. {"pod_sandbox_id": "..."}), the response printed as one JSON
//     line. ExecSync's stdout/stderr are printed as text, not base64.
//   coffer-cri --address unix:///SOCK pod-run --image REF [options]
//     RunPodSandbox -> PullImage -> CreateContainer -> StartContainer -> the first line of the
//     container's CRI log file; prints the IDs, the line and each step's duration (ms).
//
// Exit codes: 0 success; 1 the call failed (the gRPC status on stderr as
// "coffer-cri: CALL: CODE: message", and as JSON on stdout: {"error": {"code": .., "name": ..,
// "message": ..}}); 2 bad command line or request JSON; 3 pod-run's log line did not appear.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <CLI/CLI.hpp>

#include "core/json.h"
#include "core/main.h"
#include "cri/runtime/v1/api.grpc.pb.h"

namespace {

namespace cri = runtime::v1;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxRequestBytes = 1024 * 1024;

const char* status_name(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

// A failed call: one line on stderr, the status as JSON on stdout, exit code 1.
int report_failure(const std::string& call, const grpc::Status& status) {
  std::cerr << "coffer-cri: " << call << ": " << status_name(status.error_code()) << ": "
            << status.error_message() << "\n";
  coffer::Json out = {{"error",
                       {{"call", call},
                        {"code", static_cast<int>(status.error_code())},
                        {"name", status_name(status.error_code())},
                        {"message", status.error_message()}}}};
  std::cout << out.dump(-1, ' ', false, coffer::Json::error_handler_t::replace) << "\n";
  return 1;
}

std::string to_json(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) {
    return "{}";
  }
  return out;
}

struct Stubs {
  std::unique_ptr<cri::RuntimeService::Stub> runtime;
  std::unique_ptr<cri::ImageService::Stub> image;
  std::chrono::seconds timeout{120};
};

// One call of one RPC: a fresh context with the deadline.
template <class Request, class Response, class Stub, class Method>
grpc::Status invoke(const Stubs& stubs, Stub& stub, Method method, const Request& request,
                    Response& response) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + stubs.timeout);
  return (stub.*method)(&context, request, &response);
}

using Call = std::function<int(const Stubs&, const std::string&)>;

// A generic call: REQUEST_JSON -> Request, the response as JSON.
template <class Request, class Response, class Stub, class Method>
Call json_call(std::unique_ptr<Stub> Stubs::*which, Method method, const std::string& name) {
  return [which, method, name](const Stubs& stubs, const std::string& request_json) {
    Request request;
    google::protobuf::util::JsonParseOptions options;
    if (auto parsed = google::protobuf::util::JsonStringToMessage(request_json, &request, options);
        !parsed.ok()) {
      std::cerr << "coffer-cri: " << name
                << ": the request is not a valid JSON message: " << parsed.message() << "\n";
      return 2;
    }
    Response response;
    auto status = invoke(stubs, *(stubs.*which), method, request, response);
    if (!status.ok()) {
      return report_failure(name, status);
    }
    if constexpr (std::is_same_v<Response, cri::ExecSyncResponse>) {
      coffer::Json out = {{"stdout", response.stdout()},
                          {"stderr", response.stderr()},
                          {"exit_code", response.exit_code()}};
      std::cout << out.dump(-1, ' ', false, coffer::Json::error_handler_t::replace) << "\n";
    } else {
      std::cout << to_json(response) << "\n";
    }
    return 0;
  };
}

std::map<std::string, Call> calls() {
  using RS = cri::RuntimeService::Stub;
  using IS = cri::ImageService::Stub;
  std::map<std::string, Call> out;
#define COFFER_CRI_RUNTIME(NAME) \
  out[#NAME] = json_call<cri::NAME##Request, cri::NAME##Response>(&Stubs::runtime, &RS::NAME, #NAME)
#define COFFER_CRI_IMAGE(NAME) \
  out[#NAME] = json_call<cri::NAME##Request, cri::NAME##Response>(&Stubs::image, &IS::NAME, #NAME)
  COFFER_CRI_RUNTIME(Version);
  COFFER_CRI_RUNTIME(RunPodSandbox);
  COFFER_CRI_RUNTIME(StopPodSandbox);
  COFFER_CRI_RUNTIME(RemovePodSandbox);
  COFFER_CRI_RUNTIME(PodSandboxStatus);
  COFFER_CRI_RUNTIME(CreateContainer);
  COFFER_CRI_RUNTIME(StartContainer);
  COFFER_CRI_RUNTIME(StopContainer);
  COFFER_CRI_RUNTIME(RemoveContainer);
  COFFER_CRI_RUNTIME(ListContainers);
  COFFER_CRI_RUNTIME(ContainerStatus);
  COFFER_CRI_RUNTIME(ExecSync);
  COFFER_CRI_IMAGE(PullImage);
  COFFER_CRI_IMAGE(ImageStatus);
  COFFER_CRI_IMAGE(RemoveImage);
#undef COFFER_CRI_RUNTIME
#undef COFFER_CRI_IMAGE
  return out;
}

// KEY=VALUE pairs from the command line into a proto map; false on a pair without '='.
bool add_pairs(const std::vector<std::string>& pairs,
               google::protobuf::Map<std::string, std::string>& into) {
  for (const auto& pair : pairs) {
    auto eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "coffer-cri: '" << pair << "' is not KEY=VALUE\n";
      return false;
    }
    into[pair.substr(0, eq)] = pair.substr(eq + 1);
  }
  return true;
}

struct PodRunOptions {
  std::string image;
  std::string handler;
  std::string name = "coffer-pod";
  std::string container = "app";
  std::string log_dir;
  std::vector<std::string> annotations;
  std::vector<std::string> container_annotations;
  std::vector<std::string> command;
  double wait_seconds = 60;
  bool cleanup = false;
};

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// The message of the first line of a CRI log file ("TIMESTAMP STREAM TAG MESSAGE"), once the
// line is complete.
std::optional<std::string> first_log_line(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line) || in.eof()) {
    return std::nullopt;  // no complete line yet
  }
  std::size_t pos = 0;
  for (int field = 0; field < 3 && pos != std::string::npos; ++field) {
    pos = line.find(' ', pos);
    if (pos != std::string::npos) {
      ++pos;
    }
  }
  return pos == std::string::npos ? line : line.substr(pos);
}

int pod_run(const Stubs& stubs, const PodRunOptions& options) {
  coffer::Json timings = coffer::Json::object();
  coffer::Json out = coffer::Json::object();
  auto log_dir = options.log_dir.empty()
                     ? std::filesystem::temp_directory_path() / ("coffer-cri-" + options.name)
                     : std::filesystem::path(options.log_dir);
  std::error_code ec;
  std::filesystem::create_directories(log_dir, ec);

  cri::PodSandboxConfig sandbox;
  sandbox.mutable_metadata()->set_name(options.name);
  sandbox.mutable_metadata()->set_uid(options.name + "-uid");
  sandbox.mutable_metadata()->set_namespace_("default");
  sandbox.set_log_directory(log_dir.string());
  // host networking (no CNI in the tests): the host UTS namespace too, so no hostname
  sandbox.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
      cri::NODE);
  if (!add_pairs(options.annotations, *sandbox.mutable_annotations())) {
    return 2;
  }

  auto start = Clock::now();
  auto step = Clock::now();
  cri::RunPodSandboxRequest run;
  *run.mutable_config() = sandbox;
  run.set_runtime_handler(options.handler);
  cri::RunPodSandboxResponse ran;
  if (auto s = invoke(stubs, *stubs.runtime, &cri::RuntimeService::Stub::RunPodSandbox, run, ran);
      !s.ok()) {
    return report_failure("RunPodSandbox", s);
  }
  timings["run_pod_sandbox"] = ms_since(step);
  out["pod_sandbox_id"] = ran.pod_sandbox_id();

  step = Clock::now();
  cri::PullImageRequest pull;
  pull.mutable_image()->set_image(options.image);
  *pull.mutable_sandbox_config() = sandbox;
  cri::PullImageResponse pulled;
  if (auto s = invoke(stubs, *stubs.image, &cri::ImageService::Stub::PullImage, pull, pulled);
      !s.ok()) {
    return report_failure("PullImage", s);
  }
  timings["pull_image"] = ms_since(step);
  out["image_ref"] = pulled.image_ref();

  step = Clock::now();
  cri::CreateContainerRequest create;
  create.set_pod_sandbox_id(ran.pod_sandbox_id());
  auto* config = create.mutable_config();
  config->mutable_metadata()->set_name(options.container);
  config->mutable_image()->set_image(options.image);
  for (const auto& arg : options.command) {
    config->add_command(arg);
  }
  config->set_log_path(options.container + "/0.log");
  if (!add_pairs(options.container_annotations, *config->mutable_annotations())) {
    return 2;
  }
  *create.mutable_sandbox_config() = sandbox;
  cri::CreateContainerResponse created;
  if (auto s = invoke(stubs, *stubs.runtime, &cri::RuntimeService::Stub::CreateContainer, create,
                      created);
      !s.ok()) {
    return report_failure("CreateContainer", s);
  }
  timings["create_container"] = ms_since(step);
  out["container_id"] = created.container_id();

  step = Clock::now();
  cri::StartContainerRequest start_request;
  start_request.set_container_id(created.container_id());
  cri::StartContainerResponse started;
  if (auto s = invoke(stubs, *stubs.runtime, &cri::RuntimeService::Stub::StartContainer,
                      start_request, started);
      !s.ok()) {
    return report_failure("StartContainer", s);
  }
  timings["start_container"] = ms_since(step);

  step = Clock::now();
  auto log_file = log_dir / options.container / "0.log";
  out["log_path"] = log_file.string();
  auto deadline = Clock::now() + std::chrono::duration<double>(options.wait_seconds);
  std::optional<std::string> line;
  while (!(line = first_log_line(log_file)) && Clock::now() < deadline) {
    // polling the log file: containerd gives no notification of a container's first output
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  int rc = 0;
  if (line) {
    timings["first_line"] = ms_since(step);
    timings["total"] = ms_since(start);
    out["first_line"] = *line;
  } else {
    std::cerr << "coffer-cri: pod-run: no line in " << log_file << " within "
              << options.wait_seconds << " s\n";
    rc = 3;
  }
  out["timings_ms"] = timings;

  if (options.cleanup) {
    cri::StopPodSandboxRequest stop;
    stop.set_pod_sandbox_id(ran.pod_sandbox_id());
    cri::StopPodSandboxResponse stopped;
    if (auto s = invoke(stubs, *stubs.runtime, &cri::RuntimeService::Stub::StopPodSandbox, stop,
                        stopped);
        !s.ok()) {
      return report_failure("StopPodSandbox", s);
    }
    cri::RemovePodSandboxRequest remove;
    remove.set_pod_sandbox_id(ran.pod_sandbox_id());
    cri::RemovePodSandboxResponse removed;
    if (auto s = invoke(stubs, *stubs.runtime, &cri::RuntimeService::Stub::RemovePodSandbox, remove,
                        removed);
        !s.ok()) {
      return report_failure("RemovePodSandbox", s);
    }
  }
  std::cout << out.dump(-1, ' ', false, coffer::Json::error_handler_t::replace) << "\n";
  return rc;
}

int run(int argc, char** argv) {
  CLI::App app{"coffer-cri: a CRI client acting as kubelet (test tool)"};
  std::string address;
  int timeout = 120;
  app.add_option("--address", address, "containerd's CRI socket, unix:///PATH")->required();
  app.add_option("--timeout", timeout, "deadline of each call in seconds")
      ->check(CLI::Range(1, 3600));
  app.require_subcommand(1);

  std::string call_name;
  std::string request_json = "{}";
  auto* call = app.add_subcommand("call", "one CRI call (the default form: coffer-cri CALL JSON)");
  call->add_option("name", call_name, "the RPC, e.g. RunPodSandbox")->required();
  call->add_option("request", request_json, "the request as JSON (default {})");

  PodRunOptions pod;
  auto* pod_run_command =
      app.add_subcommand("pod-run", "a pod with one container to its first log line");
  pod_run_command->add_option("--image", pod.image, "the container's image")->required();
  pod_run_command->add_option("--runtime-handler", pod.handler, "RunPodSandbox's runtime_handler");
  pod_run_command->add_option("--name", pod.name, "the pod's name");
  pod_run_command->add_option("--container", pod.container, "the container's name");
  pod_run_command->add_option("--log-dir", pod.log_dir, "the pod's log directory");
  pod_run_command->add_option("--annotation", pod.annotations, "a pod annotation KEY=VALUE");
  pod_run_command->add_option("--container-annotation", pod.container_annotations,
                              "a container annotation KEY=VALUE");
  pod_run_command->add_option("--wait", pod.wait_seconds, "seconds to wait for the log line");
  pod_run_command->add_flag("--cleanup", pod.cleanup, "stop and remove the pod afterwards");
  pod_run_command->add_option("command", pod.command, "the container's command (after --)");

  // `coffer-cri --address A RunPodSandbox '{...}'` is short for `... call RunPodSandbox '{...}'`
  std::vector<std::string> args(argv, argv + argc);
  auto table = calls();
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--address" || args[i] == "--timeout") {
      ++i;  // the option's value
    } else if (!args[i].starts_with("-")) {
      if (args[i] != "call" && args[i] != "pod-run") {
        args.insert(args.begin() + static_cast<std::ptrdiff_t>(i), "call");
      }
      break;
    }
  }
  args.erase(args.begin());  // CLI11 takes the arguments without the program name, reversed
  std::reverse(args.begin(), args.end());
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (!address.starts_with("unix://")) {
    std::cerr << "coffer-cri: --address must be unix:///PATH\n";
    return 2;
  }

  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  Stubs stubs{cri::RuntimeService::NewStub(channel), cri::ImageService::NewStub(channel),
              std::chrono::seconds(timeout)};
  if (*pod_run_command) {
    return pod_run(stubs, pod);
  }
  auto it = table.find(call_name);
  if (it == table.end()) {
    std::cerr << "coffer-cri: unknown call '" << call_name << "'; one of:";
    for (const auto& [name, unused] : table) {
      std::cerr << " " << name;
    }
    std::cerr << "\n";
    return 2;
  }
  if (request_json.size() > kMaxRequestBytes) {
    std::cerr << "coffer-cri: the request JSON is over " << kMaxRequestBytes << " bytes\n";
    return 2;
  }
  return it->second(stubs, request_json);
}

}  // namespace

int main(int argc, char** argv) {
  return coffer::run_main("coffer-cri", [&] { return run(argc, argv); });
}
