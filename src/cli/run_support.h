// The pure parts of `coffer run` and its companions (ps, logs, stop, rm), kept apart from the
// processes so that they can be unit-tested: the init-data `coffer run` generates from its
// options, the per-container state file in the run directory, name/id resolution, and the exit
// code of a container.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace coffer::cli {

// What the generated init-data carries (docs/run.md "Init-data").
struct InitDataOptions {
  std::string tee = "sim-tdx";   // sim-tdx: sha384 (MRCONFIGID), sim-snp: sha256 (HOST_DATA),
                                 // sim-sgx: sha384 (CONFIGID)
  std::string trustee_url;       // http[s]://..., normalised (aa.toml and cdh.toml [kbc])
  std::string kbs_cert_pem;      // the CA of an https trustee ("" : none)
  std::string image_policy_uri;  // kbs:///repo/type/tag ("" : none)
  bool require_encrypted = false;
  std::vector<std::string> insecure_registries;  // HOST[:PORT]
  std::string agent_policy_rego;                 // "" : the agent's built-in default policy
};

// The init-data TOML text for `o`, checked by parsing it back with the agent's own parser
// (guest::parse_guest_config). "bad_init_data" when a value cannot be carried (a PEM or policy
// with characters that would end the TOML string, a registry name with quotes, ...).
Result<std::string> generate_init_data(const InitDataOptions& o);

// One container's state: `<run dir>/<id>/state.json`, written atomically.
struct RunState {
  std::string id;    // 12 lower-case hex digits
  std::string name;  // unique in the run directory
  std::string image;
  pid_t supervisor_pid = 0;  // the process that holds the enclave
  // its start time (/proc/PID/stat field 22, clock ticks since boot): a reused pid is not it
  std::uint64_t supervisor_start = 0;
  std::string status;  // "starting", "running", "exited", "failed"
  std::optional<int> exit_code;
  std::int64_t created_unix = 0;  // seconds
  std::string error;              // why it failed ("" : none)
};

std::string state_to_json(const RunState& s);
// "bad_state_file" for anything that is not a state this version wrote.
Result<RunState> state_from_json(std::string_view text);

Status write_state(const std::filesystem::path& container_dir, const RunState& s);
Result<RunState> read_state(const std::filesystem::path& container_dir);

// Every container of the run directory (unreadable entries are skipped), oldest first.
std::vector<RunState> list_states(const std::filesystem::path& run_dir);

// The container named `ref`: an exact name, an exact id, or a unique id prefix (4+ digits).
// "container_not_found", or "ambiguous_reference" naming the candidates.
Result<RunState> resolve_container(const std::vector<RunState>& all, std::string_view ref);

// A name may be [A-Za-z0-9][A-Za-z0-9_.-]{0,63}.
bool valid_container_name(std::string_view name);

// The start time (field 22) from the text of /proc/PID/stat; nothing if it does not parse.
std::optional<std::uint64_t> proc_stat_start_time(std::string_view stat);
// The start time of `pid` now; nothing if it does not exist.
std::optional<std::uint64_t> process_start_time(pid_t pid);
// True while the state's supervisor runs: its pid exists and has the recorded start time (a pid
// the kernel reused for another process is not the supervisor: never signalled, shown dead).
bool supervisor_alive(const RunState& s);

// What `coffer ps` shows: the status, with "dead" for a starting/running container whose
// supervisor is gone (`alive` tells whether it is).
std::string display_status(const RunState& s, bool supervisor_alive);

// The exit code `coffer run` returns for the container's exit status: its code, 128+signal when
// it was killed.
int container_exit_code(int exit_code, int signal);

// The run directory: `flag` if set, else $XDG_RUNTIME_DIR/coffer, else /run/coffer.
std::filesystem::path default_run_dir(const char* xdg_runtime_dir);

// True when the host of `address` (a URL, an image reference with or without a transport, or
// HOST[:PORT]) is a loopback name: localhost, 127.x.x.x or [::1]. A VM guest would reach its own
// loopback there, not the host's (--enclave vm: the host is 10.0.2.2).
bool names_loopback(std::string_view address);

}  // namespace coffer::cli
