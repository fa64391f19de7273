#include "cli/run_support.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>
#include <utility>

#include "core/bytes.h"
#include "core/file.h"
#include "core/json.h"
#include "guest/config.h"

namespace coffer::cli {

namespace {

// Text that may go between ''' ... ''' (a TOML multi-line literal string): printable ASCII, tabs
// and line breaks, nothing that would end the string early.
bool literal_safe(std::string_view s) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n' || c == '\t' || c == '\r') continue;
    if (u < 0x20 || u > 0x7e) return false;
  }
  return s.find("'''") == std::string_view::npos && !s.ends_with('\'');
}

// Text that may go between """ ... """ nested in a ''' ... ''' string (the PEM in aa.toml and
// cdh.toml): also no quote runs or backslashes that would end or escape the inner string.
bool nested_safe(std::string_view s) {
  return literal_safe(s) && s.find("\"\"\"") == std::string_view::npos &&
         s.find('\\') == std::string_view::npos && !s.ends_with('"');
}

bool plain_safe(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f && c != '"' && c != '\'' && c != '\\';
  });
}

}  // namespace

Result<std::string> generate_init_data(const InitDataOptions& o) {
  if (o.tee != "sim-tdx" && o.tee != "sim-snp" && o.tee != "sim-sgx") {
    return make_error("bad_init_data", "no init-data digest is defined for TEE '" + o.tee + "'");
  }
  if (!o.trustee_url.empty() && !plain_safe(o.trustee_url)) {
    return make_error("bad_init_data", "the trustee URL cannot be written into init-data");
  }
  if (!o.image_policy_uri.empty() && !plain_safe(o.image_policy_uri)) {
    return make_error("bad_init_data", "the image policy URI cannot be written into init-data");
  }
  for (const auto& r : o.insecure_registries) {
    if (!plain_safe(r)) {
      return make_error("bad_init_data",
                        "an insecure registry name cannot be written into init-data");
    }
  }
  if (!nested_safe(o.kbs_cert_pem)) {
    return make_error(
        "bad_init_data",
        "the trustee's CA certificate is not a plain PEM text (quotes, backslashes or "
        "control characters)");
  }
  if (!literal_safe(o.agent_policy_rego)) {
    return make_error(
        "bad_init_data",
        "the agent policy cannot be written into init-data: it contains ''' or control "
        "characters, or ends with '");
  }
  std::string t = "version = \"0.1.0\"\n";
  t += std::string("algorithm = \"") + (o.tee == "sim-snp" ? "sha256" : "sha384") + "\"\n";
  t += "[data]\n";
  if (!o.trustee_url.empty()) {
    t += "\"aa.toml\" = '''\n[token_configs.kbs]\nurl = \"" + o.trustee_url + "\"\n";
    if (!o.kbs_cert_pem.empty()) t += "cert = \"\"\"\n" + o.kbs_cert_pem + "\"\"\"\n";
    t += "'''\n";
  }
  t += "\"cdh.toml\" = '''\n";
  if (!o.trustee_url.empty()) {
    t += "[kbc]\nname = \"cc_kbc\"\nurl = \"" + o.trustee_url + "\"\n";
    if (!o.kbs_cert_pem.empty()) t += "kbs_cert = \"\"\"\n" + o.kbs_cert_pem + "\"\"\"\n";
  }
  t += "[image]\n";
  if (!o.image_policy_uri.empty()) {
    t += "image_security_policy_uri = \"" + o.image_policy_uri + "\"\n";
  }
  if (!o.insecure_registries.empty()) {
    t += "insecure_registries = [";
    for (std::size_t i = 0; i < o.insecure_registries.size(); ++i) {
      t += (i > 0 ? ", \"" : "\"") + o.insecure_registries[i] + "\"";
    }
    t += "]\n";
  }
  if (o.require_encrypted) t += "require_encrypted_layers = true\n";
  t += "'''\n";
  if (!o.agent_policy_rego.empty()) t += "\"policy.rego\" = '''\n" + o.agent_policy_rego + "'''\n";
  // What the agent will read: the same parser.
  auto parsed = guest::parse_guest_config(t);
  if (!parsed) return std::unexpected(parsed.error());
  return t;
}

std::string state_to_json(const RunState& s) {
  Json j = {{"id", s.id},
            {"name", s.name},
            {"image", s.image},
            {"supervisor_pid", s.supervisor_pid},
            {"supervisor_start", s.supervisor_start},
            {"status", s.status},
            {"created_unix", s.created_unix}};
  j["exit_code"] = s.exit_code ? Json(*s.exit_code) : Json(nullptr);
  if (!s.error.empty()) j["error"] = s.error;
  return j.dump() + "\n";
}

Result<RunState> state_from_json(std::string_view text) {
  auto j = parse_json(text, JsonLimits{.max_bytes = 64 * 1024, .max_depth = 4});
  if (!j) return make_error("bad_state_file", j.error().message);
  const auto bad = [](const std::string& m) { return make_error("bad_state_file", m); };
  if (!j->is_object()) return bad("not an object");
  RunState s;
  const auto str = [&](const char* k, std::string& out) {
    auto it = j->find(k);
    if (it == j->end() || !it->is_string()) return false;
    out = it->get<std::string>();
    return true;
  };
  if (!str("id", s.id) || !str("name", s.name) || !str("image", s.image) ||
      !str("status", s.status)) {
    return bad("id, name, image and status must be strings");
  }
  auto pid = j->find("supervisor_pid");
  auto created = j->find("created_unix");
  if (pid == j->end() || !pid->is_number_integer() || created == j->end() ||
      !created->is_number_integer()) {
    return bad("supervisor_pid and created_unix must be integers");
  }
  s.supervisor_pid = pid->get<pid_t>();
  s.created_unix = created->get<std::int64_t>();
  auto ec = j->find("exit_code");
  if (ec != j->end() && ec->is_number_integer()) s.exit_code = ec->get<int>();
  if (ec != j->end() && !ec->is_number_integer() && !ec->is_null()) {
    return bad("exit_code must be an integer or null");
  }
  (void)str("error", s.error);
  if (auto st = j->find("supervisor_start"); st != j->end()) {
    if (!st->is_number_unsigned()) return bad("supervisor_start must be an unsigned integer");
    s.supervisor_start = st->get<std::uint64_t>();
  }
  if (s.id.size() != 12 || !std::all_of(s.id.begin(), s.id.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      })) {
    return bad("id is not 12 hex digits");
  }
  if (!valid_container_name(s.name)) return bad("invalid name");
  return s;
}

Status write_state(const std::filesystem::path& container_dir, const RunState& s) {
  const std::string text = state_to_json(s);
  return write_file_atomic(
      container_dir / "state.json",
      ByteView(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()), 0600);
}

Result<RunState> read_state(const std::filesystem::path& container_dir) {
  auto text = read_text_file(container_dir / "state.json", 64 * 1024);
  if (!text) return std::unexpected(text.error());
  return state_from_json(*text);
}

std::vector<RunState> list_states(const std::filesystem::path& run_dir) {
  std::vector<RunState> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(run_dir, ec)) {
    if (!e.is_directory(ec)) continue;
    auto s = read_state(e.path());
    if (s && s->id == e.path().filename().string()) out.push_back(std::move(*s));
  }
  std::sort(out.begin(), out.end(), [](const RunState& a, const RunState& b) {
    return a.created_unix != b.created_unix ? a.created_unix < b.created_unix : a.id < b.id;
  });
  return out;
}

Result<RunState> resolve_container(const std::vector<RunState>& all, std::string_view ref) {
  for (const auto& s : all) {
    if (s.name == ref || s.id == ref) return s;
  }
  std::vector<const RunState*> hits;
  if (ref.size() >= 4) {
    for (const auto& s : all) {
      if (s.id.starts_with(ref)) hits.push_back(&s);
    }
  }
  if (hits.size() == 1) return *hits.front();
  const std::string shown = printable_excerpt(ref, 64);
  if (hits.empty()) return make_error("container_not_found", "no container named '" + shown + "'");
  std::string names;
  for (const auto* h : hits) names += (names.empty() ? "" : ", ") + h->id + " (" + h->name + ")";
  return make_error("ambiguous_reference", "'" + shown + "' matches " + names);
}

bool valid_container_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  const auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(name.front())) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return alnum(c) || c == '_' || c == '.' || c == '-'; });
}

std::optional<std::uint64_t> proc_stat_start_time(std::string_view stat) {
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses; field 3 follows the last ')'
  const auto close = stat.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = stat.substr(close + 1);
  int field = 2;
  while (!rest.empty()) {
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    const auto end = rest.find(' ');
    const std::string_view tok = rest.substr(0, end);
    ++field;
    if (field == 22) {
      std::uint64_t v = 0;
      if (tok.empty()) return std::nullopt;
      for (const char c : tok) {
        if (c < '0' || c > '9' || v > (UINT64_MAX - 9) / 10) return std::nullopt;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
      }
      return v;
    }
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end);
  }
  return std::nullopt;
}

std::optional<std::uint64_t> process_start_time(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  auto text = read_text_file("/proc/" + std::to_string(pid) + "/stat", 4096);
  if (!text) return std::nullopt;
  return proc_stat_start_time(*text);
}

bool supervisor_alive(const RunState& s) {
  const auto start = process_start_time(s.supervisor_pid);
  return start.has_value() && (s.supervisor_start == 0 || *start == s.supervisor_start);
}

std::string display_status(const RunState& s, bool supervisor_alive) {
  if ((s.status == "running" || s.status == "starting") && !supervisor_alive) return "dead";
  if (s.status == "exited" && s.exit_code) return "exited (" + std::to_string(*s.exit_code) + ")";
  return s.status;
}

int container_exit_code(int exit_code, int signal) {
  if (signal > 0 && exit_code == 0) return 128 + signal;
  return exit_code;
}

std::filesystem::path default_run_dir(const char* xdg_runtime_dir) {
  if (xdg_runtime_dir != nullptr && xdg_runtime_dir[0] == '/') {
    return std::filesystem::path(xdg_runtime_dir) / "coffer";
  }
  return "/run/coffer";
}

bool names_loopback(std::string_view address) {
  if (auto scheme = address.find("://"); scheme != std::string_view::npos) {
    address.remove_prefix(scheme + 3);
  }
  address = address.substr(0, address.find('/'));  // the host part (an image reference's too)
  std::string host;
  if (address.starts_with('[')) {
    host = std::string(address.substr(0, address.find(']') + 1));
  } else {
    host = std::string(address.substr(0, address.find(':')));
  }
  std::ranges::transform(host, host.begin(), [](unsigned char c) { return std::tolower(c); });
  if (host == "localhost" || host == "[::1]") return true;
  if (!host.starts_with("127.")) return false;
  return std::ranges::all_of(host, [](char c) { return c == '.' || (c >= '0' && c <= '9'); });
}

}  // namespace coffer::cli
