// The inputs of containerd-shim-coffer-v2 (docs/kubernetes.md, "The shim"), parsed without side
// effects so that each can be unit-tested: the command line containerd gives the shim, the
// runtime options it passes on stdin, the shim's TOML configuration, and what a container's OCI
// annotations and rootfs mounts say (image reference, init-data, enclave kind, pod grouping).
//
// The shim never mounts or reads the host's rootfs: a container's image is always pulled inside
// the enclave by reference, whatever the host has.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace coffer::runtime::shim {

// Annotation and mount option names.
inline constexpr std::string_view kImageRefOption = "io.coffer.image-ref=";  // rootfs mount option
inline constexpr std::string_view kCriImageName = "io.kubernetes.cri.image-name";
inline constexpr std::string_view kCofferImage = "io.coffer.image";
inline constexpr std::string_view kInitData = "io.coffer.init-data";
inline constexpr std::string_view kEnclaveKind = "io.coffer.enclave";
inline constexpr std::string_view kCriContainerType = "io.kubernetes.cri.container-type";
inline constexpr std::string_view kCriSandboxId = "io.kubernetes.cri.sandbox-id";

// Bounds on what containerd hands us (the host is not trusted more than it must be).
inline constexpr std::size_t kMaxSpecBytes = 4U << 20U;            // config.json
inline constexpr std::size_t kMaxRuntimeOptionsBytes = 64 * 1024;  // stdin of `start`
inline constexpr std::size_t kMaxImageRefBytes = 4096;

// `containerd-shim-coffer-v2 -namespace NS -address SOCK -publish-binary BIN -id ID
//  [-bundle DIR] [-debug] [-socket PATH] ACTION` (Go's flag syntax: -flag VALUE, -flag=VALUE,
// --flag; boolean -debug). ACTION: "start", "delete", or "" (serve: the daemonised shim).
struct ShimFlags {
  std::string ns;
  std::string address;  // containerd's gRPC socket
  std::string publish_binary;
  std::string id;
  std::string bundle;  // "" : the working directory
  std::string socket;  // the daemon: where to serve (set by `start`)
  bool debug = false;
  bool version = false;
  std::string action;
};
// "bad_flags" for an unknown flag, a missing value, an unknown action, a namespace or id that is
// not [A-Za-z0-9][A-Za-z0-9_.-]{0,127}.
Result<ShimFlags> parse_flags(const std::vector<std::string>& args);

// The runtime options containerd passes (a google.protobuf.Any, on stdin of `start`): CRI's
// runtimeoptions.v1.Options {type_url = 1, config_path = 2}. Empty input: no options.
// "bad_runtime_options" for anything else (another runtime's options are not ours to ignore).
Result<std::optional<std::filesystem::path>> parse_runtime_options(std::string_view any_bytes);

// The shim's configuration (a TOML file: the runtime options' config path, else
// $COFFER_SHIM_CONFIG). Every key is optional; unknown keys are refused.
struct ShimConfig {
  std::string enclave = "process";      // the default enclave kind: process | vm
  std::string tee = "sim-tdx";          // sim-tdx | sim-snp
  std::filesystem::path enclave_image;  // process enclave: `coffer enclave build`'s directory
  std::filesystem::path guest_image;    // vm enclave: `coffer guest-image build`'s directory
  std::filesystem::path sim_dir;        // the simulation PKI (`coffer sim init`)
  std::filesystem::path run_dir = "/run/coffer/shim";  // sockets and per-pod state (0700)
  std::filesystem::path init_data;  // default init-data TOML for pods without the annotation
  std::string agent_log_level = "info";
  std::string vm_accel = "auto";  // vm enclave: auto | tcg | kvm (EnclaveSpec::vm_accel)
};
// "bad_config" naming the key.
Result<ShimConfig> parse_config(std::string_view toml_text);

// What a container's annotations and rootfs mounts say.
struct ContainerRequest {
  // "sandbox" (CRI's pod sandbox container: the shim starts the enclave and creates the pod's
  // sandbox in it; no image runs for it), "container" (a CRI container), "" (no CRI: `ctr run`,
  // a pod of its own).
  std::string container_type;
  std::string sandbox_id;  // the pod (CRI's sandbox id; the container's own id without CRI)
  std::string image;       // "" for a CRI sandbox
  std::optional<std::string> init_data;  // the decoded TOML, checked
  std::optional<std::string> enclave;    // "process" | "vm"
};

// The image reference, in this order: the annotation io.kubernetes.cri.image-name (the image
// kubelet asked for), the annotation io.coffer.image (ctr's user), a rootfs mount option
// io.coffer.image-ref=REF (the coffer-snapshotter's guest-pull mount: it names the image that
// first created the layer chain, which two images with the same plaintext layers share).
// "bad_image_ref" for one that is empty, too long, has spaces or control bytes, or mount options
// naming two different references; "no_image_ref" for none.
Result<std::string> resolve_image_ref(const std::vector<std::vector<std::string>>& rootfs_options,
                                      const std::map<std::string, std::string>& annotations);

// io.coffer.init-data: standard base64 of the init-data TOML (docs/init-data.md), at most
// guest::kMaxInitDataBytes decoded; "bad_init_data" when it is not base64, too large, or not
// init-data the agent would accept (guest::parse_guest_config).
Result<std::string> decode_init_data(std::string_view annotation);

// The request of container `id`: its annotations (config.json's) and its rootfs mounts' options.
Result<ContainerRequest> parse_container(
    std::string_view id, const std::map<std::string, std::string>& annotations,
    const std::vector<std::vector<std::string>>& rootfs_options);

// The OCI spec's annotations (config.json text). "bad_spec" if it is not a JSON object or its
// annotations are not a string map.
Result<std::map<std::string, std::string>> spec_annotations(std::string_view config_json);

// The pod a container belongs to before the shim runs (`start`): CRI's sandbox id for a CRI
// container, else the container's own id.
std::string pod_of(std::string_view id, const std::map<std::string, std::string>& annotations);

// [A-Za-z0-9][A-Za-z0-9_.-]{0,127}
bool valid_id(std::string_view id);

}  // namespace coffer::runtime::shim
