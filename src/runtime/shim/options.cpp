// The shim's inputs (options.h).
#include "runtime/shim/options.h"

#include <google/protobuf/any.pb.h>
#include <google/protobuf/unknown_field_set.h>

#include <algorithm>
#include <set>

#include "core/bytes.h"
#include "core/config.h"
#include "core/json.h"
#include "guest/config.h"

namespace coffer::runtime::shim {

namespace {

bool id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

bool valid_image_ref(std::string_view ref) {
  if (ref.empty() || ref.size() > kMaxImageRefBytes) return false;
  return std::ranges::all_of(ref, [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u != 0x7f;
  });
}

std::string annotation(const std::map<std::string, std::string>& a, std::string_view key) {
  const auto it = a.find(std::string(key));
  return it == a.end() ? std::string() : it->second;
}

}  // namespace

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  if (!id_char(id[0]) || id[0] == '_' || id[0] == '.' || id[0] == '-') return false;
  return std::ranges::all_of(id, id_char);
}

Result<ShimFlags> parse_flags(const std::vector<std::string>& args) {
  ShimFlags f;
  std::vector<std::string> positional;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view a = args[i];
    if (!positional.empty() || a.size() < 2 || a[0] != '-') {
      positional.emplace_back(a);
      continue;
    }
    a.remove_prefix(a[1] == '-' ? 2 : 1);
    std::optional<std::string> value;
    if (const auto eq = a.find('='); eq != std::string_view::npos) {
      value = std::string(a.substr(eq + 1));
      a = a.substr(0, eq);
    }
    if (a == "debug" || a == "v") {
      if (value && *value != "true" && *value != "false") {
        return make_error("bad_flags", "-" + std::string(a) + " takes no value");
      }
      (a == "debug" ? f.debug : f.version) = !value || *value == "true";
      continue;
    }
    std::string* target = nullptr;
    if (a == "namespace") target = &f.ns;
    if (a == "address") target = &f.address;
    if (a == "publish-binary") target = &f.publish_binary;
    if (a == "id") target = &f.id;
    if (a == "bundle") target = &f.bundle;
    if (a == "socket") target = &f.socket;
    if (target == nullptr) {
      return make_error("bad_flags", "unknown flag -" + printable_excerpt(a, 32));
    }
    if (!value) {
      if (i + 1 >= args.size()) {
        return make_error("bad_flags", "-" + std::string(a) + " needs a value");
      }
      value = args[++i];
    }
    *target = std::move(*value);
  }
  if (positional.size() > 1) return make_error("bad_flags", "one action at most");
  if (!positional.empty()) f.action = positional[0];
  if (f.version) return f;
  if (!f.action.empty() && f.action != "start" && f.action != "delete") {
    return make_error("bad_flags", "unknown action '" + printable_excerpt(f.action, 32) +
                                       "' (start, delete, or none to serve)");
  }
  if (!valid_id(f.ns)) return make_error("bad_flags", "-namespace must be a containerd namespace");
  if (!valid_id(f.id)) return make_error("bad_flags", "-id must be a container id");
  return f;
}

Result<std::optional<std::filesystem::path>> parse_runtime_options(std::string_view any_bytes) {
  if (any_bytes.empty()) return std::optional<std::filesystem::path>();
  if (any_bytes.size() > kMaxRuntimeOptionsBytes) {
    return make_error("bad_runtime_options", "the runtime options are over 64 KiB");
  }
  google::protobuf::Any any;
  if (!any.ParseFromArray(any_bytes.data(), static_cast<int>(any_bytes.size()))) {
    return make_error("bad_runtime_options", "the runtime options are not a protobuf Any");
  }
  // CRI: "runtimeoptions.v1.Options", possibly with a type.googleapis.com/ prefix
  const std::string& url = any.type_url();
  if (url != "runtimeoptions.v1.Options" && !url.ends_with("/runtimeoptions.v1.Options")) {
    return make_error("bad_runtime_options",
                      "runtime options of type '" + printable_excerpt(url, 80) +
                          "': containerd-shim-coffer-v2 takes CRI's runtimeoptions.v1.Options "
                          "(ConfigPath) only");
  }
  google::protobuf::UnknownFieldSet fields;
  if (!fields.ParseFromString(any.value())) {
    return make_error("bad_runtime_options", "runtimeoptions.v1.Options does not parse");
  }
  std::optional<std::filesystem::path> config_path;
  for (int i = 0; i < fields.field_count(); ++i) {
    const auto& field = fields.field(i);
    if (field.number() != 1 && field.number() != 2) continue;  // later fields: not ours
    if (field.type() != google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED) {
      return make_error("bad_runtime_options",
                        "runtimeoptions.v1.Options: a field of the wrong type");
    }
    if (field.number() == 2 && !field.length_delimited().empty()) {
      config_path = field.length_delimited();
    }
  }
  if (config_path && !config_path->is_absolute()) {
    return make_error("bad_runtime_options", "ConfigPath must be an absolute path");
  }
  return config_path;
}

Result<ShimConfig> parse_config(std::string_view toml_text) {
  auto table = COFFER_TRY(config::parse(toml_text, "shim config"));
  const config::Section s(&table, "");
  COFFER_TRY_STATUS(s.reject_unknown({"enclave", "tee", "enclave_image", "guest_image", "sim_dir",
                                      "run_dir", "init_data", "agent_log_level", "vm_accel"}));
  ShimConfig c;
  c.enclave = COFFER_TRY(s.string("enclave", c.enclave));
  if (c.enclave != "process" && c.enclave != "vm") {
    return make_error("bad_config", "enclave must be \"process\" or \"vm\"");
  }
  c.tee = COFFER_TRY(s.string("tee", c.tee));
  if (c.tee != "sim-tdx" && c.tee != "sim-snp") {
    return make_error("bad_config", "tee must be \"sim-tdx\" or \"sim-snp\"");
  }
  const auto path = [&](std::string_view key, std::filesystem::path& out) -> Status {
    auto v = COFFER_TRY(s.string(key, out.string()));
    if (!v.empty() && !std::filesystem::path(v).is_absolute()) {
      return make_error("bad_config", std::string(key) + " must be an absolute path");
    }
    out = v;
    return ok();
  };
  COFFER_TRY_STATUS(path("enclave_image", c.enclave_image));
  COFFER_TRY_STATUS(path("guest_image", c.guest_image));
  COFFER_TRY_STATUS(path("sim_dir", c.sim_dir));
  COFFER_TRY_STATUS(path("run_dir", c.run_dir));
  COFFER_TRY_STATUS(path("init_data", c.init_data));
  if (c.run_dir.empty()) return make_error("bad_config", "run_dir must not be empty");
  c.agent_log_level = COFFER_TRY(s.string("agent_log_level", c.agent_log_level));
  static const std::set<std::string, std::less<>> kLevels = {"trace", "debug", "info",
                                                             "warn",  "error", "off"};
  if (!kLevels.contains(c.agent_log_level)) {
    return make_error("bad_config",
                      "agent_log_level must be trace, debug, info, warn, error or off");
  }
  c.vm_accel = COFFER_TRY(s.string("vm_accel", c.vm_accel));
  if (c.vm_accel != "auto" && c.vm_accel != "tcg" && c.vm_accel != "kvm") {
    return make_error("bad_config", "vm_accel must be auto, tcg or kvm");
  }
  return c;
}

Result<std::string> resolve_image_ref(const std::vector<std::vector<std::string>>& rootfs_options,
                                      const std::map<std::string, std::string>& annotations) {
  std::optional<std::string> from_mount;
  for (const auto& options : rootfs_options) {
    for (const auto& o : options) {
      if (!o.starts_with(kImageRefOption)) continue;
      std::string ref = o.substr(kImageRefOption.size());
      if (!valid_image_ref(ref)) {
        return make_error("bad_image_ref",
                          "the rootfs mount option io.coffer.image-ref is not an "
                          "image reference");
      }
      if (from_mount && *from_mount != ref) {
        return make_error("bad_image_ref",
                          "the rootfs mounts name two different images (io.coffer.image-ref)");
      }
      from_mount = std::move(ref);
    }
  }
  auto annotation = [&](std::string_view key) -> Result<std::optional<std::string>> {
    const auto it = annotations.find(std::string(key));
    if (it == annotations.end()) return std::optional<std::string>();
    if (!valid_image_ref(it->second)) {
      return make_error("bad_image_ref",
                        "the annotation " + std::string(key) + " is not an image reference");
    }
    return std::optional<std::string>(it->second);
  };
  // The annotations first: they name the image asked for (by kubelet, or by ctr's user), while
  // the snapshotter's mount names the image that first created the layer chain (two images with
  // the same plaintext layers share it).
  if (auto cri = COFFER_TRY(annotation(kCriImageName))) return *cri;
  if (auto own = COFFER_TRY(annotation(kCofferImage))) return *own;
  if (from_mount) return *from_mount;
  return make_error("no_image_ref",
                    "no image reference: the container needs the coffer-snapshotter's rootfs mount "
                    "(io.coffer.image-ref), CRI's io.kubernetes.cri.image-name or the annotation "
                    "io.coffer.image (ctr run --annotation io.coffer.image=REF); the shim never "
                    "runs the host's rootfs");
}

Result<std::string> decode_init_data(std::string_view annotation) {
  // base64 is 4/3 of the text, plus padding
  if (annotation.size() > (guest::kMaxInitDataBytes / 3 + 1) * 4) {
    return make_error("bad_init_data", "io.coffer.init-data is over 512 KiB");
  }
  auto bytes = base64_decode(annotation);
  if (!bytes) {
    return make_error("bad_init_data", "io.coffer.init-data is not base64 (standard, padded)");
  }
  std::string text(bytes->begin(), bytes->end());
  if (text.empty()) return make_error("bad_init_data", "io.coffer.init-data is empty");
  if (auto parsed = guest::parse_guest_config(text); !parsed) {
    return make_error("bad_init_data", "io.coffer.init-data: " + parsed.error().message);
  }
  return text;
}

Result<ContainerRequest> parse_container(
    std::string_view id, const std::map<std::string, std::string>& annotations,
    const std::vector<std::vector<std::string>>& rootfs_options) {
  ContainerRequest r;
  r.container_type = annotation(annotations, kCriContainerType);
  if (!r.container_type.empty() && r.container_type != "sandbox" &&
      r.container_type != "container") {
    return make_error("bad_annotation",
                      "io.kubernetes.cri.container-type must be sandbox or "
                      "container");
  }
  r.sandbox_id = pod_of(id, annotations);
  const std::string declared = annotation(annotations, kCriSandboxId);
  if (r.container_type == "sandbox" && !declared.empty() && declared != id) {
    return make_error("bad_annotation", "a CRI sandbox container's sandbox-id must be its own id");
  }
  if (!valid_id(r.sandbox_id)) {
    return make_error("bad_annotation", "io.kubernetes.cri.sandbox-id is not a valid id");
  }
  if (r.container_type != "sandbox")
    r.image = COFFER_TRY(resolve_image_ref(rootfs_options, annotations));
  if (const auto it = annotations.find(std::string(kInitData)); it != annotations.end()) {
    r.init_data = COFFER_TRY(decode_init_data(it->second));
  }
  if (const auto it = annotations.find(std::string(kEnclaveKind)); it != annotations.end()) {
    if (it->second != "process" && it->second != "vm") {
      return make_error("bad_annotation", "io.coffer.enclave must be process or vm");
    }
    r.enclave = it->second;
  }
  return r;
}

Result<std::map<std::string, std::string>> spec_annotations(std::string_view config_json) {
  auto spec = parse_json(config_json, {.max_bytes = kMaxSpecBytes, .max_depth = 64});
  if (!spec) return make_error("bad_spec", "config.json: " + spec.error().message);
  if (!spec->is_object()) return make_error("bad_spec", "config.json is not a JSON object");
  std::map<std::string, std::string> out;
  const auto it = spec->find("annotations");
  if (it == spec->end() || it->is_null()) return out;
  if (!it->is_object()) return make_error("bad_spec", "config.json: annotations is not an object");
  for (const auto& [k, v] : it->items()) {
    if (!v.is_string()) {
      return make_error("bad_spec", "config.json: annotation values must be strings");
    }
    out.emplace(k, v.get<std::string>());
  }
  return out;
}

std::string pod_of(std::string_view id, const std::map<std::string, std::string>& annotations) {
  if (annotation(annotations, kCriContainerType) == "container") {
    std::string sandbox = annotation(annotations, kCriSandboxId);
    if (!sandbox.empty()) return sandbox;
  }
  return std::string(id);
}

}  // namespace coffer::runtime::shim
