// OCI runtime spec config.json from an image config (image-spec "conversion.md").
#include <charconv>
#include <fstream>

#include "core/file.h"
#include "oci/unpack/unpack.h"

namespace coffer::oci::unpack {
namespace {

std::vector<std::string> strings_of(const Json& obj, std::string_view key) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it != obj.end() && it->is_array()) {
    for (const auto& v : *it) {
      if (v.is_string()) out.push_back(v.get<std::string>());
    }
  }
  return out;
}

std::optional<std::int64_t> number(std::string_view s) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

// Looks `name` up in rootfs/etc/passwd or etc/group (field 3 = id, field 4 = primary gid).
std::optional<std::pair<std::int64_t, std::int64_t>> lookup(const std::filesystem::path& file,
                                                            std::string_view name) {
  // The file comes from the image: only read it if it is a regular file inside the rootfs.
  std::error_code ec;
  if (std::filesystem::is_symlink(file, ec) || !std::filesystem::is_regular_file(file, ec)) {
    return std::nullopt;
  }
  auto text = read_text_file(file, 4 << 20);
  if (!text) return std::nullopt;
  std::size_t start = 0;
  while (start < text->size()) {
    auto end = text->find('\n', start);
    if (end == std::string::npos) end = text->size();
    std::string_view line(text->data() + start, end - start);
    start = end + 1;
    std::vector<std::string_view> f;
    std::size_t s = 0;
    while (s <= line.size()) {
      auto c = line.find(':', s);
      if (c == std::string_view::npos) c = line.size();
      f.push_back(line.substr(s, c - s));
      s = c + 1;
    }
    if (f.size() >= 3 && f[0] == name) {
      auto id = number(f[2]);
      auto gid = f.size() >= 4 ? number(f[3]) : std::nullopt;
      if (id) return std::make_pair(*id, gid.value_or(*id));
    }
  }
  return std::nullopt;
}

Result<std::pair<std::int64_t, std::int64_t>> resolve_user(const std::string& user,
                                                           const std::filesystem::path& rootfs) {
  if (user.empty()) return std::make_pair(std::int64_t{0}, std::int64_t{0});
  auto colon = user.find(':');
  std::string u = user.substr(0, colon);
  std::optional<std::string> g;
  if (colon != std::string::npos) g = user.substr(colon + 1);
  std::int64_t uid = 0, gid = 0;
  if (auto n = number(u)) {
    uid = *n;
    gid = *n;
    if (auto entry = lookup(rootfs / "etc/passwd", u)) gid = entry->second;
  } else if (auto entry = lookup(rootfs / "etc/passwd", u)) {
    uid = entry->first;
    gid = entry->second;
  } else {
    return make_error("bad_config", "user '" + u + "' is not in the image's /etc/passwd");
  }
  if (g) {
    if (auto n = number(*g)) {
      gid = *n;
    } else if (auto entry = lookup(rootfs / "etc/group", *g)) {
      gid = entry->first;
    } else {
      return make_error("bad_config", "group '" + *g + "' is not in the image's /etc/group");
    }
  }
  return std::make_pair(uid, gid);
}

}  // namespace

Result<Json> runtime_config(const ImageConfig& image, const std::filesystem::path& rootfs) {
  Json cfg = image.json.contains("config") && image.json["config"].is_object()
                 ? image.json["config"]
                 : Json::object();
  std::vector<std::string> args = strings_of(cfg, "Entrypoint");
  for (auto& c : strings_of(cfg, "Cmd")) args.push_back(std::move(c));
  if (args.empty()) args.emplace_back("/bin/sh");
  std::vector<std::string> env = strings_of(cfg, "Env");
  bool has_path = false;
  for (const auto& e : env) has_path |= e.starts_with("PATH=");
  if (!has_path)
    env.insert(env.begin(), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  std::string cwd = cfg.value("WorkingDir", "");
  if (cwd.empty()) cwd = "/";
  auto [uid, gid] = COFFER_TRY(resolve_user(cfg.value("User", ""), rootfs));
  Json caps =
      Json::array({"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                   "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                   "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"});
  Json spec = {
      {"ociVersion", "1.0.2"},
      {"process",
       {{"terminal", false},
        {"user", {{"uid", uid}, {"gid", gid}}},
        {"args", args},
        {"env", env},
        {"cwd", cwd},
        {"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
        {"rlimits", Json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}})},
        {"noNewPrivileges", true}}},
      {"root", {{"path", "rootfs"}, {"readonly", false}}},
      {"hostname", "coffer"},
      {"mounts",
       Json::array({
           {{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
           {{"destination", "/dev"},
            {"type", "tmpfs"},
            {"source", "tmpfs"},
            {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
           {{"destination", "/dev/pts"},
            {"type", "devpts"},
            {"source", "devpts"},
            {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}}},
           {{"destination", "/dev/shm"},
            {"type", "tmpfs"},
            {"source", "shm"},
            {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
           {{"destination", "/dev/mqueue"},
            {"type", "mqueue"},
            {"source", "mqueue"},
            {"options", {"nosuid", "noexec", "nodev"}}},
           {{"destination", "/sys"},
            {"type", "sysfs"},
            {"source", "sysfs"},
            {"options", {"nosuid", "noexec", "nodev", "ro"}}},
       })},
      {"linux",
       {{"namespaces", Json::array({{{"type", "pid"}},
                                    {{"type", "network"}},
                                    {{"type", "ipc"}},
                                    {{"type", "uts"}},
                                    {{"type", "mount"}}})},
        {"maskedPaths",
         {"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
          "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"}},
        {"readonlyPaths",
         {"/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
          "/proc/sysrq-trigger"}}}}};
  if (auto labels = cfg.find("Labels"); labels != cfg.end() && labels->is_object()) {
    Json ann = Json::object();
    for (const auto& [k, v] : labels->items()) {
      if (v.is_string()) ann[k] = v;
    }
    if (!ann.empty()) spec["annotations"] = ann;
  }
  return spec;
}

}  // namespace coffer::oci::unpack
