#include "agent/service.h"

#include <google/protobuf/util/json_util.h>

#include <spdlog/spdlog.h>
#include <array>
#include <chrono>
#include <climits>

#include "coffer/agent/v1/agent.pb.h"
#include "core/bytes.h"
#include "core/file.h"
#include "core/version.h"

namespace coffer::agent {

namespace pb = ::coffer::agent::v1;
using net::ttrpc::CallContext;
using net::ttrpc::CallResult;
using net::ttrpc::Code;
using net::ttrpc::RpcStatus;

namespace {

constexpr std::size_t kMaxIdBytes = 128;
constexpr std::size_t kMaxReferenceBytes = 4096;
constexpr std::size_t kMaxListEntries = 1024;
constexpr std::size_t kMaxStatusMessageBytes = 768;  // input bytes: escaped, at most ~3 KiB
constexpr std::string_view kMeasurementDomain = "coffer.dev/agent";

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// --- validation: bad input is INVALID_ARGUMENT before the policy or a component sees it ----------

Status bad_request(std::string message) { return make_error("bad_request", std::move(message)); }

// Container, sandbox and exec ids name files and crun containers: [A-Za-z0-9][A-Za-z0-9_.-]*.
Status check_id(std::string_view id, std::string_view what, bool may_be_empty = false) {
  if (id.empty()) {
    return may_be_empty ? ok() : bad_request(std::string(what) + " is required");
  }
  if (id.size() > kMaxIdBytes) return bad_request(std::string(what) + " is too long");
  const auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(id[0])) return bad_request(std::string(what) + " must start with a letter or digit");
  for (char c : id) {
    if (!alnum(c) && c != '_' && c != '.' && c != '-') {
      return bad_request(std::string(what) + " may hold only letters, digits, '_', '.', '-'");
    }
  }
  return ok();
}

Status check_reference(std::string_view image) {
  if (image.empty()) return bad_request("image is required");
  if (image.size() > kMaxReferenceBytes) return bad_request("image reference is too long");
  for (char c : image) {
    if (c <= ' ' || c == '\x7f') return bad_request("image reference has a space or control byte");
  }
  return ok();
}

template <class List>
Status check_strings(const List& list, std::string_view what, bool need_equals = false) {
  if (static_cast<std::size_t>(list.size()) > kMaxListEntries) {
    return bad_request(std::string(what) + " has too many entries");
  }
  for (const std::string& s : list) {
    if (s.find('\0') != std::string::npos) return bad_request(std::string(what) + " has a NUL");
    if (need_equals && (s.empty() || s[0] == '=' || s.find('=') == std::string::npos)) {
      return bad_request(std::string(what) + " entries must be KEY=VALUE");
    }
  }
  return ok();
}

Status check_process(std::string_view container_id, std::string_view exec_id) {
  COFFER_TRY_STATUS(check_id(container_id, "container_id"));
  return check_id(exec_id, "exec_id", true);
}

Status validate(const pb::CreateSandboxRequest& r) {
  return check_id(r.sandbox_id(), "sandbox_id");
}
Status validate(const pb::RemoveSandboxRequest& r) {
  return check_id(r.sandbox_id(), "sandbox_id");
}
Status validate(const pb::CreateContainerRequest& r) {
  COFFER_TRY_STATUS(check_id(r.container_id(), "container_id"));
  COFFER_TRY_STATUS(check_id(r.sandbox_id(), "sandbox_id"));
  COFFER_TRY_STATUS(check_reference(r.image()));
  COFFER_TRY_STATUS(check_strings(r.entrypoint().values(), "entrypoint"));
  COFFER_TRY_STATUS(check_strings(r.command().values(), "command"));
  COFFER_TRY_STATUS(check_strings(r.env(), "env", true));
  if (r.has_working_dir() && (r.working_dir().empty() || r.working_dir()[0] != '/')) {
    return bad_request("working_dir must be an absolute path");
  }
  if (r.has_user() && r.user().empty()) return bad_request("user must not be empty when set");
  if (static_cast<std::size_t>(r.mounts_size()) > kMaxListEntries) {
    return bad_request("mounts has too many entries");
  }
  for (const auto& m : r.mounts()) {
    if (m.destination().empty() || m.destination()[0] != '/') {
      return bad_request("mount destinations must be absolute paths");
    }
    COFFER_TRY_STATUS(check_strings(m.options(), "mount options"));
  }
  return ok();
}
Status validate(const pb::StartContainerRequest& r) {
  return check_id(r.container_id(), "container_id");
}
Status validate(const pb::WaitProcessRequest& r) {
  return check_process(r.container_id(), r.exec_id());
}
Status validate(const pb::SignalProcessRequest& r) {
  COFFER_TRY_STATUS(check_process(r.container_id(), r.exec_id()));
  if (r.signal() < 1 || r.signal() > 64) return bad_request("signal must be 1..64");
  return ok();
}
Status validate(const pb::ExecProcessRequest& r) {
  COFFER_TRY_STATUS(check_id(r.container_id(), "container_id"));
  if (r.args().empty()) return bad_request("args is required");
  COFFER_TRY_STATUS(check_strings(r.args(), "args"));
  COFFER_TRY_STATUS(check_strings(r.env(), "env", true));
  if (!r.cwd().empty() && r.cwd()[0] != '/') return bad_request("cwd must be an absolute path");
  if (r.has_user() && r.user().empty()) return bad_request("user must not be empty when set");
  return ok();
}
Status validate(const pb::RemoveContainerRequest& r) {
  return check_id(r.container_id(), "container_id");
}
Status validate(const pb::ContainerStateRequest& r) {
  return check_id(r.container_id(), "container_id");
}
Status validate(const pb::ListContainersRequest& r) {
  return check_id(r.sandbox_id(), "sandbox_id", true);
}
Status validate(const pb::ContainerStatsRequest& r) {
  return check_id(r.container_id(), "container_id");
}
Status validate(const pb::WriteStdinRequest& r) {
  return check_process(r.container_id(), r.exec_id());
}
Status validate(const pb::CloseStdinRequest& r) {
  return check_process(r.container_id(), r.exec_id());
}
Status validate(const pb::ReadOutputRequest& r) {
  COFFER_TRY_STATUS(check_process(r.container_id(), r.exec_id()));
  if (r.max_bytes() > kOutputBufferBytes) return bad_request("max_bytes is over 1 MiB");
  if (!pb::OutputStream_IsValid(r.stream())) return bad_request("unknown output stream");
  return ok();
}
Status validate(const pb::ResizeTtyRequest& r) {
  COFFER_TRY_STATUS(check_process(r.container_id(), r.exec_id()));
  if (r.rows() < 1 || r.rows() > 65535 || r.cols() < 1 || r.cols() > 65535) {
    return bad_request("rows and cols must be 1..65535");
  }
  return ok();
}
Status validate(const pb::PullImageRequest& r) { return check_reference(r.image()); }
Status validate(const pb::ExportBundleRequest& r) {
  // the bundle id names a directory on the host storage: lower-case, as docs/two-enclave.md says
  COFFER_TRY_STATUS(check_id(r.bundle_id(), "bundle_id"));
  for (char c : r.bundle_id()) {
    if (c >= 'A' && c <= 'Z') return bad_request("bundle_id must be lower-case");
  }
  if (!r.has_container()) return bad_request("container is required");
  const auto& c = r.container();
  COFFER_TRY_STATUS(check_reference(c.image()));
  COFFER_TRY_STATUS(check_strings(c.entrypoint().values(), "entrypoint"));
  COFFER_TRY_STATUS(check_strings(c.command().values(), "command"));
  COFFER_TRY_STATUS(check_strings(c.env(), "env", true));
  if (c.has_working_dir() && (c.working_dir().empty() || c.working_dir()[0] != '/')) {
    return bad_request("working_dir must be an absolute path");
  }
  if (c.has_user() && c.user().empty()) return bad_request("user must not be empty when set");
  if (c.mounts_size() > 0) return bad_request("an exported bundle takes no mounts");
  if (c.privileged()) return bad_request("an exported bundle cannot be privileged");
  if (r.key_handover() != "seal" && r.key_handover() != "local") {
    return bad_request("key_handover must be \"seal\" or \"local\"");
  }
  return ok();
}
Status validate(const pb::HandOverKeyRequest& r) {
  COFFER_TRY_STATUS(check_id(r.bundle_id(), "bundle_id"));
  if (r.report().empty() || r.report().size() > 4096) return bad_request("report is required");
  if (r.public_key().empty() || r.public_key().size() > 1024) {
    return bad_request("public_key is required");
  }
  return ok();
}
Status validate(const pb::GuestDetailsRequest&) { return ok(); }
Status validate(const pb::HealthRequest&) { return ok(); }
Status validate(const pb::PullProgressRequest&) { return ok(); }

// --- the policy input: the request as proto3 JSON, field names as in the .proto -----------------

Result<Json> request_json(const google::protobuf::Message& request) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;  // a false bool or "" is present, not undefined
  std::string text;
  if (auto s = google::protobuf::util::MessageToJsonString(request, &text, opts); !s.ok()) {
    return make_error("internal_error", "request does not convert to JSON");
  }
  // The JSON is ours (from a parsed message), bounded by the 4 MiB message limit.
  JsonLimits limits;
  limits.max_bytes = std::max<std::size_t>(limits.max_bytes, text.size());
  return parse_json(text, limits);
}

// --- responses -----------------------------------------------------------------------------------

pb::ContainerStatus to_proto(ContainerStatus s) {
  switch (s) {
    case ContainerStatus::kCreated:
      return pb::CONTAINER_STATUS_CREATED;
    case ContainerStatus::kRunning:
      return pb::CONTAINER_STATUS_RUNNING;
    case ContainerStatus::kStopped:
      return pb::CONTAINER_STATUS_STOPPED;
  }
  return pb::CONTAINER_STATUS_UNSPECIFIED;
}

void to_proto(const ExitStatus& e, pb::ExitStatus* out) {
  out->set_exit_code(e.exit_code);
  out->set_signal(e.signal);
  out->set_oom_killed(e.oom_killed);
}

void to_proto(const ContainerState& s, pb::ContainerInfo* out) {
  out->set_container_id(s.id);
  out->set_sandbox_id(s.sandbox_id);
  out->set_image(s.image);
  out->set_status(to_proto(s.status));
  out->set_pid(s.pid);
  if (s.exit) to_proto(*s.exit, out->mutable_exit());
  out->set_created_unix_nanos(
      std::chrono::duration_cast<std::chrono::nanoseconds>(s.created.time_since_epoch()).count());
}

std::vector<std::string> to_vector(const google::protobuf::RepeatedPtrField<std::string>& r) {
  return {r.begin(), r.end()};
}

SpecOverrides overrides_from(const pb::CreateContainerRequest& r) {
  SpecOverrides o;
  if (r.has_entrypoint()) o.entrypoint = to_vector(r.entrypoint().values());
  if (r.has_command()) o.command = to_vector(r.command().values());
  o.env = to_vector(r.env());
  if (r.has_working_dir()) o.working_dir = r.working_dir();
  if (r.has_user()) o.user = r.user();
  for (const auto& m : r.mounts()) {
    o.mounts.push_back(Mount{m.destination(), m.type(), m.source(), to_vector(m.options())});
  }
  o.terminal = r.terminal();
  o.open_stdin = r.open_stdin();
  o.privileged = r.privileged();
  if (r.has_memory_limit_bytes()) o.memory_limit_bytes = r.memory_limit_bytes();
  return o;
}

RpcStatus status_from(const Error& e) { return to_rpc_status(e); }

CallResult fail(const Error& e) { return std::unexpected(status_from(e)); }

template <class Resp>
CallResult serialize(const Resp& response) {
  std::string out;
  if (!response.SerializeToString(&out)) {
    return net::ttrpc::status_error(Code::kInternal, "internal_error: response does not encode");
  }
  return out;
}

}  // namespace

RpcStatus to_rpc_status(const Error& error) {
  static constexpr std::array kPermission = {
      std::string_view("policy_denied"),       std::string_view("policy_rejected"),
      std::string_view("no_valid_signature"),  std::string_view("signature_invalid"),
      std::string_view("identity_mismatch"),   std::string_view("sealed_secret_signature"),
      std::string_view("kbs_forbidden"),       std::string_view("digest_mismatch"),
      std::string_view("diff_id_mismatch"),    std::string_view("size_mismatch"),
      std::string_view("hmac_mismatch"),       std::string_view("sealed_secret_unknown_key"),
      std::string_view("layer_not_encrypted"), std::string_view("missing_decryption_key"),
      std::string_view("no_image_policy"),     std::string_view("unauthorized"),
      std::string_view("peer_refused"),        std::string_view("report_mac_mismatch")};
  static constexpr std::array kInvalid = {
      std::string_view("bad_request"), std::string_view("bad_spec"),
      std::string_view("bad_sealed_secret"), std::string_view("bad_reference"),
      std::string_view("bad_image_name")};
  static constexpr std::array kUnavailable = {
      std::string_view("kbs_unreachable"), std::string_view("registry_error"),
      std::string_view("no_kbs"), std::string_view("quote_service_error"),
      std::string_view("runtime_not_found")};
  const std::string_view c = error.code;
  const auto in = [&](const auto& table) {
    return std::find(table.begin(), table.end(), c) != table.end();
  };
  Code code = Code::kInternal;
  if (c == "not_found" || ends_with(c, "_not_found") || c == "manifest_unknown" ||
      c == "blob_unknown") {
    code = Code::kNotFound;
  } else if (ends_with(c, "_exists")) {
    code = Code::kAlreadyExists;
  } else if (c == "bad_state" || c == "export_unavailable") {
    code = Code::kFailedPrecondition;
  } else if (in(kPermission)) {
    code = Code::kPermissionDenied;
  } else if (in(kInvalid)) {
    code = Code::kInvalidArgument;
  } else if (c == "cancelled") {
    code = Code::kCancelled;
  } else if (c == "timeout") {
    code = Code::kDeadlineExceeded;
  } else if (in(kUnavailable)) {
    code = Code::kUnavailable;
  }
  return RpcStatus{code,
                   printable_excerpt(error.code + ": " + error.message, kMaxStatusMessageBytes)};
}

AgentService::AgentService(AgentServiceDeps deps) : deps_(std::move(deps)) {
  if (deps_.executor == nullptr || !deps_.pull || !deps_.measure || !deps_.policy) std::abort();
}

Result<PulledImage> AgentService::pull_and_measure(const std::string& reference,
                                                   std::stop_token stop) {
  auto image = COFFER_TRY(deps_.pull(reference, std::move(stop)));
  std::pair key{image.reference, image.manifest_digest};
  {
    std::lock_guard lock(mu_);
    if (measured_.contains(key)) return image;
  }
  COFFER_TRY_STATUS(deps_.measure(guest::MeasurementEvent{
      std::string(kMeasurementDomain), "pull_image", reference + "@" + image.manifest_digest}));
  std::lock_guard lock(mu_);
  measured_.insert(std::move(key));
  return image;
}

Status AgentService::unseal_secrets(const std::string& container_id, const oci::ImageConfig& config,
                                    SpecOverrides& overrides) {
  const auto unseal = [&](std::string_view value, std::string_view where) -> Result<Bytes> {
    if (!deps_.unseal) {
      return make_error(
          "sealed_secrets_unavailable",
          std::string(where) + " holds a sealed secret and this agent has no data hub");
    }
    auto plain = deps_.unseal(value);
    if (!plain) {
      return std::unexpected(
          Error{plain.error().code, std::string(where) + ": " + plain.error().message});
    }
    return plain;
  };
  const auto env_value = [&](const std::string& entry,
                             std::string_view where) -> Result<std::string> {
    const auto eq = entry.find('=');
    if (eq == std::string::npos || !guest::DataHub::is_sealed(entry.substr(eq + 1))) return entry;
    auto plain = COFFER_TRY(unseal(std::string_view(entry).substr(eq + 1),
                                   std::string(where) + " " + entry.substr(0, eq)));
    if (std::find(plain.begin(), plain.end(), std::uint8_t{0}) != plain.end()) {
      return make_error("bad_sealed_secret", std::string(where) + " " + entry.substr(0, eq) +
                                                 ": the secret holds a NUL byte");
    }
    return entry.substr(0, eq + 1) + std::string(plain.begin(), plain.end());
  };
  // the request's variables replace the image's; sealed image variables become request ones
  for (auto& entry : overrides.env) entry = COFFER_TRY(env_value(entry, "environment variable"));
  const Json* image_env = nullptr;
  if (config.json.is_object() && config.json.contains("config") &&
      config.json["config"].is_object() && config.json["config"].contains("Env")) {
    image_env = &config.json["config"]["Env"];
  }
  if (image_env != nullptr && image_env->is_array()) {
    for (const auto& e : *image_env) {
      if (!e.is_string()) continue;
      const auto entry = e.get<std::string>();
      const auto eq = entry.find('=');
      if (eq == std::string::npos || !guest::DataHub::is_sealed(entry.substr(eq + 1))) continue;
      const std::string name = entry.substr(0, eq + 1);
      const bool replaced = std::any_of(overrides.env.begin(), overrides.env.end(),
                                        [&](const std::string& o) { return o.starts_with(name); });
      if (!replaced)
        overrides.env.push_back(COFFER_TRY(env_value(entry, "image environment variable")));
    }
  }
  // bind-mounted files that hold a sealed secret
  const std::filesystem::path dir = deps_.sealed_dir / container_id;
  std::size_t n = 0;
  for (auto& m : overrides.mounts) {
    if (m.type != "bind" || m.source.empty()) continue;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(m.source, ec)) continue;
    auto bytes = read_file(m.source, guest::kMaxSealedSecretBytes + 1);
    if (!bytes) {
      if (bytes.error().code == "too_large") continue;  // larger than any sealed secret
      return std::unexpected(bytes.error());
    }
    const std::string_view text(reinterpret_cast<const char*>(bytes->data()), bytes->size());
    if (!guest::DataHub::is_sealed(text)) continue;
    std::string_view sealed = text;
    while (!sealed.empty() && (sealed.back() == '\n' || sealed.back() == '\r'))
      sealed.remove_suffix(1);
    auto plain = COFFER_TRY(unseal(sealed, "mount " + m.destination));
    if (deps_.sealed_dir.empty()) {
      return make_error(
          "sealed_secrets_unavailable",
          "mount " + m.destination + " holds a sealed secret and no secrets directory is set");
    }
    std::filesystem::create_directories(dir, ec);
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
    if (ec) return make_error("io_error", "creating the secrets directory: " + ec.message());
    const auto file = dir / std::to_string(n++);
    COFFER_TRY_STATUS(write_file_atomic(file, plain, 0400));
    m.source = file.string();
  }
  return ok();
}

void AgentService::remove_secrets(const std::string& container_id) {
  if (deps_.sealed_dir.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(deps_.sealed_dir / container_id, ec);
}

namespace {

// Parse, validate, ask the policy, run. `run` returns Result<Response message>.
template <class Req, class Run>
CallResult unary(AgentPolicy& policy, std::string_view method, std::string_view payload,
                 Run&& run) {
  Req request;
  if (payload.size() > static_cast<std::size_t>(INT_MAX) ||
      !request.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return net::ttrpc::status_error(
        Code::kInvalidArgument,
        "bad_request: payload is not a coffer.agent.v1." + std::string(method) + "Request");
  }
  if (auto v = validate(request); !v) return fail(v.error());
  auto input = request_json(request);
  if (!input) return fail(input.error());
  if constexpr (std::is_same_v<Req, pb::ExportBundleRequest>) {
    // the container rules of the policy see the container request's own fields
    auto container = request_json(request.container());
    if (!container) return fail(container.error());
    (*container)["bundle_id"] = request.bundle_id();
    (*container)["key_handover"] = request.key_handover();
    input = std::move(container);
  }
  if constexpr (std::is_same_v<Req, pb::WriteStdinRequest>) {
    (*input)["data"] = nullptr;  // the policy sees the size, not the bytes
    (*input)["data_bytes"] = request.data().size();
  }
  if (auto allowed = policy.check(method, *input); !allowed) {
    spdlog::warn("agent policy: {}", allowed.error().message);
    return fail(allowed.error());
  }
  auto response = run(request);
  if (!response) return fail(response.error());
  return serialize(*response);
}

}  // namespace

CallResult AgentService::call(std::string_view method, const CallContext& ctx,
                              std::string_view payload) {
  auto& exec = *deps_.executor;
  auto& policy = *deps_.policy;
  using Empty = Result<pb::Empty>;
  const auto empty = [](const Status& s) -> Empty {
    if (!s) return std::unexpected(s.error());
    return pb::Empty{};
  };

  if (method == "CreateSandbox") {
    return unary<pb::CreateSandboxRequest>(policy, method, payload, [&](const auto& r) -> Empty {
      COFFER_TRY_STATUS(exec.create_sandbox(r.sandbox_id()));
      if (deps_.sandbox_hooks.on_created) {
        auto netns = exec.sandbox_netns(r.sandbox_id());
        Status hooked = netns ? deps_.sandbox_hooks.on_created(r.sandbox_id(), *netns)
                              : Status(std::unexpected(netns.error()));
        if (!hooked) {
          (void)exec.remove_sandbox(r.sandbox_id());
          return std::unexpected(hooked.error());
        }
      }
      return pb::Empty{};
    });
  }
  if (method == "RemoveSandbox") {
    return unary<pb::RemoveSandboxRequest>(policy, method, payload, [&](const auto& r) {
      if (deps_.sandbox_hooks.on_removed) deps_.sandbox_hooks.on_removed(r.sandbox_id());
      return empty(exec.remove_sandbox(r.sandbox_id()));
    });
  }
  if (method == "CreateContainer") {
    return unary<pb::CreateContainerRequest>(
        policy, method, payload, [&](const auto& r) -> Result<pb::CreateContainerResponse> {
          auto image = COFFER_TRY(pull_and_measure(r.image(), ctx.stop));
          // extended before the container exists: nothing runs unmeasured
          COFFER_TRY_STATUS(deps_.measure(
              guest::MeasurementEvent{std::string(kMeasurementDomain), "create_container",
                                      r.image() + "@" + image.manifest_digest +
                                          ",container=" + r.container_id() + ",policy=allow"}));
          ContainerCreate create{r.container_id(), r.sandbox_id(), r.image(),
                                 image.rootfs,     image.config,   overrides_from(r)};
          if (exec.state(r.container_id())) {
            return make_error("container_exists",
                              "a container '" + printable_excerpt(r.container_id()) + "' exists");
          }
          auto unsealed = unseal_secrets(r.container_id(), image.config, create.overrides);
          auto state = unsealed ? exec.create(create)
                                : Result<ContainerState>(std::unexpected(unsealed.error()));
          if (!state) {
            if (state.error().code != "container_exists") remove_secrets(r.container_id());
            return std::unexpected(state.error());
          }
          pb::CreateContainerResponse out;
          to_proto(*state, out.mutable_container());
          out.set_image_digest(image.manifest_digest);
          return out;
        });
  }
  if (method == "StartContainer") {
    return unary<pb::StartContainerRequest>(policy, method, payload, [&](const auto& r) {
      return empty(exec.start(r.container_id()));
    });
  }
  if (method == "WaitProcess") {
    return unary<pb::WaitProcessRequest>(
        policy, method, payload, [&](const auto& r) -> Result<pb::WaitProcessResponse> {
          auto status = COFFER_TRY(exec.wait(r.container_id(), r.exec_id(), ctx.stop));
          pb::WaitProcessResponse out;
          to_proto(status, out.mutable_exit());
          return out;
        });
  }
  if (method == "SignalProcess") {
    return unary<pb::SignalProcessRequest>(policy, method, payload, [&](const auto& r) {
      return empty(exec.signal(r.container_id(), r.exec_id(), static_cast<int>(r.signal())));
    });
  }
  if (method == "ExecProcess") {
    return unary<pb::ExecProcessRequest>(
        policy, method, payload, [&](const auto& r) -> Result<pb::ExecProcessResponse> {
          ProcessSpec spec;
          spec.args = to_vector(r.args());
          spec.env = to_vector(r.env());
          spec.cwd = r.cwd();
          if (r.has_user()) spec.user = r.user();
          spec.terminal = r.terminal();
          spec.open_stdin = r.open_stdin();
          pb::ExecProcessResponse out;
          out.set_exec_id(COFFER_TRY(exec.exec(r.container_id(), spec)));
          return out;
        });
  }
  if (method == "RemoveContainer") {
    return unary<pb::RemoveContainerRequest>(policy, method, payload, [&](const auto& r) {
      auto removed = exec.remove(r.container_id());
      if (removed) remove_secrets(r.container_id());
      return empty(removed);
    });
  }
  if (method == "ContainerState") {
    return unary<pb::ContainerStateRequest>(
        policy, method, payload, [&](const auto& r) -> Result<pb::ContainerStateResponse> {
          auto state = COFFER_TRY(exec.state(r.container_id()));
          pb::ContainerStateResponse out;
          to_proto(state, out.mutable_container());
          return out;
        });
  }
  if (method == "ListContainers") {
    return unary<pb::ListContainersRequest>(
        policy, method, payload, [&](const auto& r) -> Result<pb::ListContainersResponse> {
          pb::ListContainersResponse out;
          for (const auto& s : exec.list()) {
            if (r.sandbox_id().empty() || s.sandbox_id == r.sandbox_id()) {
              to_proto(s, out.add_containers());
            }
          }
          return out;
        });
  }
  if (method == "ContainerStats") {
    return unary<pb::ContainerStatsRequest>(
        policy, method, payload, [&](const auto& r) -> Result<pb::ContainerStatsResponse> {
          auto stats = COFFER_TRY(exec.stats(r.container_id()));
          pb::ContainerStatsResponse out;
          out.set_memory_bytes(stats.memory_bytes);
          out.set_cpu_usage_ns(stats.cpu_usage_ns);
          out.set_pids(stats.pids);
          return out;
        });
  }
  if (method == "WriteStdin") {
    return unary<pb::WriteStdinRequest>(
        policy, method, payload, [&](const auto& r) -> Result<pb::WriteStdinResponse> {
          const auto* data = reinterpret_cast<const std::uint8_t*>(r.data().data());
          COFFER_TRY_STATUS(exec.write_stdin(r.container_id(), r.exec_id(),
                                             ByteView(data, r.data().size()), ctx.stop));
          pb::WriteStdinResponse out;
          out.set_written(r.data().size());
          return out;
        });
  }
  if (method == "CloseStdin") {
    return unary<pb::CloseStdinRequest>(policy, method, payload, [&](const auto& r) {
      return empty(exec.close_stdin(r.container_id(), r.exec_id()));
    });
  }
  if (method == "ReadOutput") {
    return unary<pb::ReadOutputRequest>(
        policy, method, payload, [&](const auto& r) -> Result<pb::ReadOutputResponse> {
          const std::size_t max = r.max_bytes() == 0 ? kOutputBufferBytes : r.max_bytes();
          const auto stream = r.stream() == pb::OUTPUT_STREAM_STDERR ? OutputStream::kStderr
                                                                     : OutputStream::kStdout;
          auto bytes =
              COFFER_TRY(exec.read_output(r.container_id(), r.exec_id(), stream, max, ctx.stop));
          pb::ReadOutputResponse out;
          out.set_eof(bytes.empty());
          out.set_data(std::string(bytes.begin(), bytes.end()));
          return out;
        });
  }
  if (method == "ResizeTty") {
    return unary<pb::ResizeTtyRequest>(policy, method, payload, [&](const auto& r) {
      return empty(exec.resize_tty(r.container_id(), r.exec_id(),
                                   static_cast<std::uint16_t>(r.rows()),
                                   static_cast<std::uint16_t>(r.cols())));
    });
  }
  if (method == "PullImage") {
    return unary<pb::PullImageRequest>(
        policy, method, payload, [&](const auto& r) -> Result<pb::PullImageResponse> {
          auto image = COFFER_TRY(pull_and_measure(r.image(), ctx.stop));
          pb::PullImageResponse out;
          out.set_image(image.reference);
          out.set_manifest_digest(image.manifest_digest);
          out.set_from_cache(image.from_cache);
          out.set_attestation_us(
              static_cast<std::uint64_t>(deps_.guest.startup_attestation.count()));
          out.set_verify_us(static_cast<std::uint64_t>(image.timings.verify.count()));
          out.set_key_fetch_us(static_cast<std::uint64_t>(image.timings.key_fetch.count()));
          out.set_layers_us(static_cast<std::uint64_t>(image.timings.layers.count()));
          out.set_pull_us(static_cast<std::uint64_t>(image.timings.total.count()));
          return out;
        });
  }
  if (method == "PullProgress") {
    return unary<pb::PullProgressRequest>(
        policy, method, payload, [&](const auto&) -> Result<pb::PullProgressResponse> {
          pb::PullProgressResponse out;
          if (!deps_.pull_progress) return out;
          for (const auto& p : deps_.pull_progress()) {
            auto* f = out.add_pulls();
            f->set_image(p.reference);
            f->set_layer_index(static_cast<std::uint32_t>(p.layer_index));
            f->set_layer_count(static_cast<std::uint32_t>(p.layer_count));
            f->set_layer_bytes(p.layer_bytes);
            f->set_layer_total(p.layer_total);
            f->set_bytes_done(p.bytes_done);
            f->set_elapsed_us(static_cast<std::uint64_t>(p.elapsed.count()));
          }
          return out;
        });
  }
  if (method == "ExportBundle") {
    return unary<pb::ExportBundleRequest>(
        policy, method, payload, [&](const auto& r) -> Result<pb::ExportBundleResponse> {
          if (!deps_.exporter) {
            return make_error("export_unavailable",
                              "this agent has no storage for exported bundles (--storage-dir)");
          }
          const auto& c = r.container();
          auto image = COFFER_TRY(pull_and_measure(c.image(), ctx.stop));
          SpecOverrides overrides = overrides_from(c);
          COFFER_TRY_STATUS(unseal_secrets(r.bundle_id(), image.config, overrides));
          // The bundle's process runs in the app enclave: its root is the bundle's "rootfs".
          auto config = COFFER_TRY(build_oci_spec(image.config, image.rootfs, overrides));
          config["root"] = Json{{"path", "rootfs"}, {"readonly", false}};
          // extended before the bundle leaves the enclave: nothing runs unmeasured
          COFFER_TRY_STATUS(deps_.measure(guest::MeasurementEvent{
              std::string(kMeasurementDomain), "export_bundle",
              c.image() + "@" + image.manifest_digest + ",bundle=" + r.bundle_id() +
                  ",key_handover=" + r.key_handover() + ",policy=allow"}));
          auto done = COFFER_TRY(deps_.exporter->export_bundle(
              BundleExport{r.bundle_id(), image.rootfs, std::move(config), r.key_handover()}));
          pb::ExportBundleResponse out;
          out.set_image_digest(image.manifest_digest);
          out.set_generation(done.generation);
          out.set_files(done.files);
          out.set_bytes(done.bytes);
          return out;
        });
  }
  if (method == "HandOverKey") {
    return unary<pb::HandOverKeyRequest>(
        policy, method, payload, [&](const auto& r) -> Result<pb::HandOverKeyResponse> {
          if (!deps_.exporter) {
            return make_error("export_unavailable",
                              "this agent has no storage for exported bundles (--storage-dir)");
          }
          const auto bytes = [](const std::string& s) { return Bytes(s.begin(), s.end()); };
          auto answer = COFFER_TRY(deps_.exporter->hand_over_key(
              KeyHandOver{r.bundle_id(), bytes(r.report()), bytes(r.public_key())}));
          pb::HandOverKeyResponse out;
          out.set_report(std::string(answer.report.begin(), answer.report.end()));
          out.set_public_key(std::string(answer.public_key.begin(), answer.public_key.end()));
          out.set_ciphertext(std::string(answer.ciphertext.begin(), answer.ciphertext.end()));
          return out;
        });
  }
  if (method == "GuestDetails") {
    return unary<pb::GuestDetailsRequest>(
        policy, method, payload, [&](const auto&) -> Result<pb::GuestDetailsResponse> {
          pb::GuestDetailsResponse out;
          out.set_tee(deps_.guest.tee);
          out.set_init_data_digest(deps_.guest.init_data_digest_hex);
          out.set_agent_version(std::string(coffer::version()));
          out.set_config_from_init_data(deps_.guest.config_from_init_data);
          out.set_policy_from_init_data(policy.from_init_data());
          for (const auto& [name, count] : policy.decisions()) {
            auto* d = out.add_policy_decisions();
            d->set_method(name);
            d->set_allowed(count.allowed);
            d->set_denied(count.denied);
          }
          return out;
        });
  }
  if (method == "Health") {
    return unary<pb::HealthRequest>(policy, method, payload,
                                    [&](const auto&) -> Result<pb::HealthResponse> {
                                      pb::HealthResponse out;
                                      out.set_status("SERVING");
                                      return out;
                                    });
  }
  return net::ttrpc::status_error(Code::kUnimplemented,
                                  "unimplemented: no method " + printable_excerpt(method, 64));
}

void AgentService::register_methods(net::ttrpc::Server& server) {
  static constexpr std::array kMethods = {
      "CreateSandbox",  "RemoveSandbox", "CreateContainer", "StartContainer", "WaitProcess",
      "SignalProcess",  "ExecProcess",   "RemoveContainer", "ContainerState", "ListContainers",
      "ContainerStats", "WriteStdin",    "CloseStdin",      "ReadOutput",     "ResizeTty",
      "PullImage",      "GuestDetails",  "Health",          "ExportBundle",   "HandOverKey",
      "PullProgress"};
  for (std::string_view m : kMethods) {
    server.add_method(kAgentService, m,
                      [this, m](const CallContext& ctx, std::string_view request) {
                        return call(m, ctx, request);
                      });
  }
}

}  // namespace coffer::agent
