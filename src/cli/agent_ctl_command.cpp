#include "cli/agent_ctl_command.h"

#include <google/protobuf/util/json_util.h>

#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "coffer/agent/v1/agent.pb.h"
#include "core/file.h"
#include "core/json.h"
#include "net/ttrpc/client.h"

namespace coffer::cli {

namespace {

namespace pb = ::coffer::agent::v1;
constexpr std::string_view kService = "coffer.agent.v1.Agent";
constexpr int kExitRefused = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;

struct Options {
  std::string socket;
  double timeout_seconds = 30;
  // shared by the subcommands
  std::string id;
  std::string exec_id;
  std::string sandbox;
  std::string image;
  std::vector<std::string> entrypoint;
  std::vector<std::string> command;
  std::vector<std::string> env;
  std::string workdir;
  std::string user;
  std::vector<std::string> mounts;
  bool terminal = false;
  bool open_stdin = false;
  bool privileged = false;
  std::uint64_t memory = 0;
  std::vector<std::string> args;
  std::uint32_t signal = 0;
  std::string data;
  std::string file;
  bool stderr_stream = false;
  bool raw = false;
  std::uint32_t max_bytes = 0;
  std::uint32_t rows = 0;
  std::uint32_t cols = 0;
};

[[noreturn]] void usage(const std::string& msg) {
  std::cerr << "coffer agent-ctl: " << msg << "\n";
  throw CLI::RuntimeError(kExitUsage);
}

std::string to_json(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out, opts);
  return out;
}

// One call: prints the response as JSON (or hands it to `raw`) and returns; throws the exit code
// of a failure.
void call(const Options& o, std::string_view method, const google::protobuf::Message& request,
          google::protobuf::Message& response, bool print = true) {
  auto client = net::ttrpc::Client::connect_unix(o.socket);
  if (!client) {
    std::cerr << "coffer agent-ctl: " << client.error().to_string() << "\n";
    throw CLI::RuntimeError(kExitUnreachable);
  }
  const auto timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(o.timeout_seconds));
  auto result = (*client)->call(kService, method, request.SerializeAsString(), timeout);
  if (!result) {
    const auto& st = result.error();
    const Json err = {{"code", static_cast<int>(st.code)},
                      {"status", net::ttrpc::code_name(st.code)},
                      {"message", st.message}};
    std::cerr << err.dump() << "\n";
    throw CLI::RuntimeError(st.code == net::ttrpc::Code::kUnavailable ? kExitUnreachable
                                                                      : kExitRefused);
  }
  if (!response.ParseFromString(*result)) {
    std::cerr << "coffer agent-ctl: the agent's response is not a " << response.GetTypeName()
              << "\n";
    throw CLI::RuntimeError(kExitRefused);
  }
  if (print) std::cout << to_json(response) << "\n";
}

pb::Mount parse_mount(const std::string& spec) {
  // destination:type:source[:option,option...]
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (int i = 0; i < 3; ++i) {
    const auto colon = spec.find(':', start);
    if (colon == std::string::npos) break;
    parts.push_back(spec.substr(start, colon - start));
    start = colon + 1;
  }
  parts.push_back(spec.substr(start));
  if (parts.size() < 3) usage("--mount takes DESTINATION:TYPE:SOURCE[:OPTION,...]");
  pb::Mount m;
  m.set_destination(parts[0]);
  m.set_type(parts[1]);
  m.set_source(parts[2]);
  if (parts.size() == 4) {
    std::size_t s = 0;
    const std::string& opts = parts[3];
    while (s <= opts.size()) {
      const auto comma = opts.find(',', s);
      const auto end = comma == std::string::npos ? opts.size() : comma;
      if (end > s) m.add_options(opts.substr(s, end - s));
      s = end + 1;
    }
  }
  return m;
}

CLI::App* sub(CLI::App* parent, const std::string& name, const std::string& help) {
  auto* s = parent->add_subcommand(name, help);
  s->fallthrough();
  return s;
}

void add_id(CLI::App* s, Options& o, const char* what = "container id") {
  s->add_option("ID", o.id, what)->required();
}

void add_exec(CLI::App* s, Options& o) {
  s->add_option("--exec", o.exec_id, "exec id (default: the container's init process)");
}

void add_lifecycle(CLI::App* ctl, const std::shared_ptr<Options>& op) {
  Options& o = *op;
  auto* cs = sub(ctl, "create-sandbox", "CreateSandbox");
  add_id(cs, o, "sandbox id");
  cs->callback([op] {
    pb::CreateSandboxRequest r;
    r.set_sandbox_id(op->id);
    pb::Empty e;
    call(*op, "CreateSandbox", r, e);
  });
  auto* rs = sub(ctl, "remove-sandbox", "RemoveSandbox");
  add_id(rs, o, "sandbox id");
  rs->callback([op] {
    pb::RemoveSandboxRequest r;
    r.set_sandbox_id(op->id);
    pb::Empty e;
    call(*op, "RemoveSandbox", r, e);
  });

  auto* cc = sub(ctl, "create-container", "CreateContainer (overrides are subject to the policy)");
  add_id(cc, o);
  cc->add_option("--sandbox", o.sandbox, "sandbox id")->required();
  cc->add_option("--image", o.image, "image reference")->required();
  auto* ep = cc->add_option("--entrypoint", o.entrypoint, "entrypoint argument (repeat)");
  auto* cmd = cc->add_option("--command", o.command, "command argument (repeat)");
  cc->add_option("--env", o.env, "KEY=VALUE (repeat)");
  auto* wd = cc->add_option("--workdir", o.workdir, "working directory");
  auto* user = cc->add_option("--user", o.user, "uid[:gid] or name");
  cc->add_option("--mount", o.mounts, "DESTINATION:TYPE:SOURCE[:OPTION,...] (repeat)");
  cc->add_flag("--terminal", o.terminal, "allocate a TTY");
  cc->add_flag("--stdin", o.open_stdin, "keep stdin open");
  cc->add_flag("--privileged", o.privileged, "all capabilities, no seccomp");
  auto* mem = cc->add_option("--memory", o.memory, "memory limit in bytes");
  cc->callback([op, ep, cmd, wd, user, mem] {
    const Options& p = *op;
    pb::CreateContainerRequest r;
    r.set_container_id(p.id);
    r.set_sandbox_id(p.sandbox);
    r.set_image(p.image);
    if (ep->count() > 0) {
      for (const auto& a : p.entrypoint) r.mutable_entrypoint()->add_values(a);
    }
    if (cmd->count() > 0) {
      for (const auto& a : p.command) r.mutable_command()->add_values(a);
    }
    for (const auto& e : p.env) r.add_env(e);
    if (wd->count() > 0) r.set_working_dir(p.workdir);
    if (user->count() > 0) r.set_user(p.user);
    for (const auto& m : p.mounts) *r.add_mounts() = parse_mount(m);
    r.set_terminal(p.terminal);
    r.set_open_stdin(p.open_stdin);
    r.set_privileged(p.privileged);
    if (mem->count() > 0) r.set_memory_limit_bytes(p.memory);
    pb::CreateContainerResponse resp;
    call(p, "CreateContainer", r, resp);
  });

  auto* st = sub(ctl, "start", "StartContainer");
  add_id(st, o);
  st->callback([op] {
    pb::StartContainerRequest r;
    r.set_container_id(op->id);
    pb::Empty e;
    call(*op, "StartContainer", r, e);
  });
  auto* wt = sub(ctl, "wait", "WaitProcess (use --timeout 0 to wait without a deadline)");
  add_id(wt, o);
  add_exec(wt, o);
  wt->callback([op] {
    pb::WaitProcessRequest r;
    r.set_container_id(op->id);
    r.set_exec_id(op->exec_id);
    pb::WaitProcessResponse resp;
    call(*op, "WaitProcess", r, resp);
  });
  auto* sg = sub(ctl, "signal", "SignalProcess");
  add_id(sg, o);
  sg->add_option("SIGNAL", o.signal, "signal number")->required();
  add_exec(sg, o);
  sg->callback([op] {
    pb::SignalProcessRequest r;
    r.set_container_id(op->id);
    r.set_exec_id(op->exec_id);
    r.set_signal(op->signal);
    pb::Empty e;
    call(*op, "SignalProcess", r, e);
  });
  auto* ex = sub(ctl, "exec", "ExecProcess (denied by the default policy)");
  add_id(ex, o);
  ex->add_option("ARGS", o.args, "the process's argv (after --)")->required();
  ex->add_option("--env", o.env, "KEY=VALUE (repeat)");
  ex->add_option("--cwd", o.workdir, "working directory");
  auto* xuser = ex->add_option("--user", o.user, "uid[:gid] or name");
  ex->add_flag("--terminal", o.terminal, "allocate a TTY");
  ex->add_flag("--stdin", o.open_stdin, "keep stdin open");
  ex->callback([op, xuser] {
    const Options& p = *op;
    pb::ExecProcessRequest r;
    r.set_container_id(p.id);
    for (const auto& a : p.args) r.add_args(a);
    for (const auto& e : p.env) r.add_env(e);
    r.set_cwd(p.workdir);
    if (xuser->count() > 0) r.set_user(p.user);
    r.set_terminal(p.terminal);
    r.set_open_stdin(p.open_stdin);
    pb::ExecProcessResponse resp;
    call(p, "ExecProcess", r, resp);
  });
  auto* rm = sub(ctl, "remove", "RemoveContainer");
  add_id(rm, o);
  rm->callback([op] {
    pb::RemoveContainerRequest r;
    r.set_container_id(op->id);
    pb::Empty e;
    call(*op, "RemoveContainer", r, e);
  });
}

void add_queries(CLI::App* ctl, const std::shared_ptr<Options>& op) {
  Options& o = *op;
  auto* st = sub(ctl, "state", "ContainerState");
  add_id(st, o);
  st->callback([op] {
    pb::ContainerStateRequest r;
    r.set_container_id(op->id);
    pb::ContainerStateResponse resp;
    call(*op, "ContainerState", r, resp);
  });
  auto* ls = sub(ctl, "list", "ListContainers");
  ls->add_option("--sandbox", o.sandbox, "only this sandbox's containers");
  ls->callback([op] {
    pb::ListContainersRequest r;
    r.set_sandbox_id(op->sandbox);
    pb::ListContainersResponse resp;
    call(*op, "ListContainers", r, resp);
  });
  auto* ss = sub(ctl, "stats", "ContainerStats");
  add_id(ss, o);
  ss->callback([op] {
    pb::ContainerStatsRequest r;
    r.set_container_id(op->id);
    pb::ContainerStatsResponse resp;
    call(*op, "ContainerStats", r, resp);
  });
  auto* pl = sub(ctl, "pull", "PullImage");
  pl->add_option("IMAGE", o.image, "image reference")->required();
  pl->callback([op] {
    pb::PullImageRequest r;
    r.set_image(op->image);
    pb::PullImageResponse resp;
    call(*op, "PullImage", r, resp);
  });
  sub(ctl, "guest-details", "GuestDetails")->callback([op] {
    pb::GuestDetailsResponse resp;
    call(*op, "GuestDetails", pb::GuestDetailsRequest(), resp);
  });
  sub(ctl, "health", "Health")->callback([op] {
    pb::HealthResponse resp;
    call(*op, "Health", pb::HealthRequest(), resp);
  });
}

void add_stdio(CLI::App* ctl, const std::shared_ptr<Options>& op) {
  Options& o = *op;
  auto* ws = sub(ctl, "write-stdin", "WriteStdin");
  add_id(ws, o);
  add_exec(ws, o);
  auto* data = ws->add_option("--data", o.data, "the bytes to write");
  ws->add_option("--file", o.file, "write this file's bytes")->excludes(data);
  ws->callback([op] {
    pb::WriteStdinRequest r;
    r.set_container_id(op->id);
    r.set_exec_id(op->exec_id);
    if (!op->file.empty()) {
      auto bytes = read_file(op->file);
      if (!bytes) usage(op->file + ": " + bytes.error().to_string());
      r.set_data(std::string(bytes->begin(), bytes->end()));
    } else {
      r.set_data(op->data);
    }
    pb::WriteStdinResponse resp;
    call(*op, "WriteStdin", r, resp);
  });
  auto* cs = sub(ctl, "close-stdin", "CloseStdin");
  add_id(cs, o);
  add_exec(cs, o);
  cs->callback([op] {
    pb::CloseStdinRequest r;
    r.set_container_id(op->id);
    r.set_exec_id(op->exec_id);
    pb::Empty e;
    call(*op, "CloseStdin", r, e);
  });
  auto* ro = sub(ctl, "read-output", "ReadOutput (one read; empty data and eof at end of stream)");
  add_id(ro, o);
  add_exec(ro, o);
  ro->add_flag("--stderr", o.stderr_stream, "read stderr (default stdout)");
  ro->add_option("--max-bytes", o.max_bytes, "at most this many bytes (0: 1 MiB)");
  ro->add_flag("--raw", o.raw, "write the bytes themselves to stdout, not JSON");
  ro->callback([op] {
    pb::ReadOutputRequest r;
    r.set_container_id(op->id);
    r.set_exec_id(op->exec_id);
    r.set_stream(op->stderr_stream ? pb::OUTPUT_STREAM_STDERR : pb::OUTPUT_STREAM_STDOUT);
    r.set_max_bytes(op->max_bytes);
    pb::ReadOutputResponse resp;
    call(*op, "ReadOutput", r, resp, !op->raw);
    if (op->raw) std::cout << resp.data() << std::flush;
  });
  auto* rt = sub(ctl, "resize-tty", "ResizeTty");
  add_id(rt, o);
  rt->add_option("ROWS", o.rows, "rows")->required();
  rt->add_option("COLS", o.cols, "columns")->required();
  add_exec(rt, o);
  rt->callback([op] {
    pb::ResizeTtyRequest r;
    r.set_container_id(op->id);
    r.set_exec_id(op->exec_id);
    r.set_rows(op->rows);
    r.set_cols(op->cols);
    pb::Empty e;
    call(*op, "ResizeTty", r, e);
  });
}

}  // namespace

void add_agent_ctl_command(CLI::App& app) {
  auto op = std::make_shared<Options>();
  auto* ctl = app.add_subcommand("agent-ctl", "Drive coffer-agent's API by hand");
  ctl->require_subcommand(1);
  ctl->add_option("--socket", op->socket, "the agent's Unix socket")->required();
  ctl->add_option("--timeout", op->timeout_seconds, "seconds per call (0: no deadline)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  add_lifecycle(ctl, op);
  add_queries(ctl, op);
  add_stdio(ctl, op);
}

}  // namespace coffer::cli
