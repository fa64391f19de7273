// build_oci_spec: the image's default runtime config (oci::unpack::runtime_config, which resolves
// the user in the rootfs) with the allowed overrides applied.
#include <algorithm>

#include "agent/executor/executor.h"
#include "oci/unpack/unpack.h"

namespace coffer::agent {
namespace {

// Every capability Linux 6.x knows (capability.h, 0..40): what `privileged` grants.
const char* const kAllCapabilities[] = {"CAP_CHOWN",
                                        "CAP_DAC_OVERRIDE",
                                        "CAP_DAC_READ_SEARCH",
                                        "CAP_FOWNER",
                                        "CAP_FSETID",
                                        "CAP_KILL",
                                        "CAP_SETGID",
                                        "CAP_SETUID",
                                        "CAP_SETPCAP",
                                        "CAP_LINUX_IMMUTABLE",
                                        "CAP_NET_BIND_SERVICE",
                                        "CAP_NET_BROADCAST",
                                        "CAP_NET_ADMIN",
                                        "CAP_NET_RAW",
                                        "CAP_IPC_LOCK",
                                        "CAP_IPC_OWNER",
                                        "CAP_SYS_MODULE",
                                        "CAP_SYS_RAWIO",
                                        "CAP_SYS_CHROOT",
                                        "CAP_SYS_PTRACE",
                                        "CAP_SYS_PACCT",
                                        "CAP_SYS_ADMIN",
                                        "CAP_SYS_BOOT",
                                        "CAP_SYS_NICE",
                                        "CAP_SYS_RESOURCE",
                                        "CAP_SYS_TIME",
                                        "CAP_SYS_TTY_CONFIG",
                                        "CAP_MKNOD",
                                        "CAP_LEASE",
                                        "CAP_AUDIT_WRITE",
                                        "CAP_AUDIT_CONTROL",
                                        "CAP_SETFCAP",
                                        "CAP_MAC_OVERRIDE",
                                        "CAP_MAC_ADMIN",
                                        "CAP_SYSLOG",
                                        "CAP_WAKE_ALARM",
                                        "CAP_BLOCK_SUSPEND",
                                        "CAP_AUDIT_READ",
                                        "CAP_PERFMON",
                                        "CAP_BPF",
                                        "CAP_CHECKPOINT_RESTORE"};

bool is_clean_absolute(std::string_view p) {
  if (!p.starts_with('/')) return false;
  std::filesystem::path path{std::string(p)};
  return std::ranges::none_of(path, [](const auto& part) { return part == ".."; });
}

std::string env_key(std::string_view kv) { return std::string(kv.substr(0, kv.find('='))); }

}  // namespace

Result<Json> build_oci_spec(const oci::ImageConfig& image, const std::filesystem::path& rootfs,
                            const SpecOverrides& o) {
  // Overrides are applied to a copy of the image config, so that runtime_config derives the
  // process exactly as it does for the image's own values (user names resolve in the rootfs).
  oci::ImageConfig effective = image;
  if (!effective.json.contains("config") || !effective.json["config"].is_object()) {
    effective.json["config"] = Json::object();
  }
  Json& cfg = effective.json["config"];
  // Kubernetes semantics: an entrypoint override drops the image's Cmd unless a command
  // override comes with it.
  if (o.entrypoint) {
    cfg["Entrypoint"] = *o.entrypoint;
    if (!o.command) cfg.erase("Cmd");
  }
  if (o.command) cfg["Cmd"] = *o.command;
  if (o.working_dir) {
    if (!is_clean_absolute(*o.working_dir)) {
      return make_error("bad_spec", "working directory '" + printable_excerpt(*o.working_dir) +
                                        "' is not an absolute path without '..'");
    }
    cfg["WorkingDir"] = *o.working_dir;
  }
  if (o.user) {
    if (o.user->empty()) return make_error("bad_spec", "user override is empty");
    cfg["User"] = *o.user;
  }
  if (!o.env.empty()) {
    std::vector<std::string> env;
    if (auto it = cfg.find("Env"); it != cfg.end() && it->is_array()) {
      for (const auto& v : *it) {
        if (v.is_string()) env.push_back(v.get<std::string>());
      }
    }
    for (const auto& kv : o.env) {
      auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0 || kv.find('\0') != std::string::npos) {
        return make_error("bad_spec",
                          "environment entry '" + printable_excerpt(kv) + "' is not KEY=VALUE");
      }
      auto key = env_key(kv);
      std::erase_if(env, [&](const std::string& e) { return env_key(e) == key; });
      env.push_back(kv);
    }
    cfg["Env"] = env;
  }

  auto spec = oci::unpack::runtime_config(effective, rootfs);
  if (!spec) {
    return make_error("bad_spec", spec.error().message);
  }
  Json& process = (*spec)["process"];
  process["terminal"] = o.terminal;

  for (const auto& m : o.mounts) {
    if (!is_clean_absolute(m.destination)) {
      return make_error("bad_spec", "mount destination '" + printable_excerpt(m.destination) +
                                        "' is not an absolute path without '..'");
    }
    if (m.type.empty()) {
      return make_error("bad_spec",
                        "mount at '" + printable_excerpt(m.destination) + "' has no type");
    }
    bool bind = m.type == "bind" || std::ranges::any_of(m.options, [](const auto& x) {
                  return x == "bind" || x == "rbind";
                });
    if (bind && !is_clean_absolute(m.source)) {
      return make_error("bad_spec", "bind mount source '" + printable_excerpt(m.source) +
                                        "' is not an absolute path without '..'");
    }
    Json mount = {{"destination", m.destination}, {"type", m.type}, {"source", m.source}};
    if (!m.options.empty()) mount["options"] = m.options;
    (*spec)["mounts"].push_back(std::move(mount));
  }

  if (o.privileged) {
    Json caps = Json::array();
    for (const char* c : kAllCapabilities) caps.push_back(c);
    process["capabilities"] = {{"bounding", caps}, {"effective", caps}, {"permitted", caps}};
    process["noNewPrivileges"] = false;
    (*spec)["linux"].erase("maskedPaths");
    (*spec)["linux"].erase("readonlyPaths");
  }
  if (o.memory_limit_bytes) {
    if (*o.memory_limit_bytes < 4096 || *o.memory_limit_bytes > (std::uint64_t{1} << 62)) {
      return make_error(
          "bad_spec", "memory limit " + std::to_string(*o.memory_limit_bytes) + " is out of range");
    }
    (*spec)["linux"]["resources"]["memory"]["limit"] = *o.memory_limit_bytes;
  }
  return spec;
}

}  // namespace coffer::agent
