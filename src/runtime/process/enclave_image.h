// The process enclave's image: the files the enclave maps (coffer-agent, crun, their shared
// libraries and the dynamic loader) under DIR/rootfs/, named with their mode, size and SHA-384 by
// DIR/manifest. The manifest is what the simulated TEE measures as the "root filesystem manifest"
// and the agent file as the "agent executable" (docs/simulated-tee.md §2), so
//   coffer sim measure --agent DIR/rootfs/usr/bin/coffer-agent --rootfs-manifest DIR/manifest
// prints the reference values of an enclave launched from DIR. Format: docs/process-enclave.md.
//
//   coffer-enclave-manifest v1
//   agent /usr/bin/coffer-agent
//   file 0755 21126976 <96 hex digits> /usr/bin/coffer-agent
//   file 0644 ...                      /lib/x86_64-linux-gnu/libc.so.6
//
// One `file` line per regular file, sorted by path (bytewise), paths absolute and normalised
// ([A-Za-z0-9._+@-] components, no "." or ".."), modes four octal digits (no set-id bits).
// Directories are implicit (0755). No symlinks, devices or other file types: what is listed is
// all the enclave sees of its image.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/bytes.h"
#include "core/error.h"
#include "core/fd.h"
#include "crypto/pkey.h"
#include "evidence/sim/measure.h"
#include "evidence/sim/sgx_enclave.h"

namespace coffer::runtime::process {

inline constexpr std::string_view kManifestHeader = "coffer-enclave-manifest v1";
inline constexpr std::string_view kImageAgentPath = "/usr/bin/coffer-agent";
inline constexpr std::string_view kImageCrunPath = "/usr/bin/crun";
inline constexpr std::size_t kMaxManifestBytes = 1 << 20;
inline constexpr std::size_t kMaxManifestEntries = 4096;

struct ManifestEntry {
  std::string path;  // absolute, inside the enclave root
  mode_t mode = 0;   // permission bits only (<= 0777)
  std::uint64_t size = 0;
  std::string sha384;  // lowercase hex
  bool operator==(const ManifestEntry&) const = default;
};

struct EnclaveManifest {
  std::string agent;                   // the agent executable's path (one of the entries)
  std::vector<ManifestEntry> entries;  // sorted by path, unique

  // The canonical text (the bytes that are measured).
  [[nodiscard]] std::string text() const;
  [[nodiscard]] const ManifestEntry* find(std::string_view path) const;
};

// Parses the canonical text; anything else (unsorted, repeated, non-canonical numbers, unknown
// lines, a missing agent entry) is "bad_enclave_manifest".
Result<EnclaveManifest> parse_manifest(std::string_view text);

// The shared libraries the host's dynamic loader maps for `file` (from `ldd`) and the loader
// itself, as absolute host paths (often symlinks). Errors: "ldd_failed". (Also used by the VM
// enclave's guest image, src/runtime/vm.)
Result<std::vector<std::filesystem::path>> host_libraries(const std::filesystem::path& file);

// `objcopy --strip-debug FROM TO` (binutils): an executable without its debug sections, as the
// enclave and guest images install the agent. "strip_failed" when objcopy is missing or fails.
Status strip_debug(const std::filesystem::path& from, const std::filesystem::path& to);

struct EnclaveImageOptions {
  std::filesystem::path agent;  // the coffer-agent executable to install
  // The OCI runtime the agent runs; empty: none (the app enclave's image, whose entry is
  // coffer-app-enclave; the entry is still installed at kImageAgentPath).
  std::filesystem::path crun = "/usr/bin/crun";
  // More host files, each installed at the same path inside the image (their libraries are not
  // followed).
  std::vector<std::filesystem::path> extra_files;
  // The agent installed without its debug sections (`objcopy --strip-debug`, binutils): they are
  // most of a -g build's bytes, and every byte of the image is hashed at each launch. The
  // manifest lists (and the TEE measures) the stripped file.
  bool strip_debug = true;
};

// Collects the agent, crun, their shared libraries (as the host's dynamic loader resolves them,
// from `ldd`) and the loader into out_dir/rootfs and writes out_dir/manifest. out_dir must not
// exist or be empty ("already_exists"). Errors: "not_found", "io_error", "ldd_failed",
// "strip_failed" (objcopy missing or failing: install binutils or set strip_debug = false).
Result<EnclaveManifest> build_enclave_image(const EnclaveImageOptions& options,
                                            const std::filesystem::path& out_dir);

// Checks an image directory in place without changing anything: every manifest entry exists as
// a regular file (no symlink on the way) with the listed mode, size and digest, and rootfs holds
// nothing else. Errors name the file: "enclave_image_missing_file", "enclave_image_extra_file",
// "enclave_image_mode_mismatch", "enclave_image_size_mismatch", "enclave_image_digest_mismatch",
// "enclave_image_bad_file" (not a regular file), "bad_enclave_manifest", "io_error".
Result<EnclaveManifest> verify_enclave_image(const std::filesystem::path& image_dir);

// Installs a verified image into `root` (an existing, empty directory, e.g. a fresh tmpfs):
// copies every entry with its mode, then hashes the *copy* and compares it with the manifest (the
// same error codes as verify_enclave_image), and writes the manifest's bytes to
// root/etc/coffer/enclave.manifest. Returns the manifest that was read once and used for all.
Result<EnclaveManifest> install_enclave_image(const std::filesystem::path& image_dir,
                                              const std::filesystem::path& root);

// An image checked once and held in sealed memory: every entry's bytes read from the image
// directory exactly once, hashed as they are copied into a memfd that is then sealed against any
// change (F_SEAL_WRITE/SHRINK/GROW/SEAL), so the bytes installed later are the bytes that were
// checked, without hashing them again (docs/process-enclave.md, "Launch").
struct StagedImage {
  EnclaveManifest manifest;
  std::string manifest_text;  // the exact bytes parsed (what is measured)
  std::vector<Fd> memfds;     // one per manifest entry, same order
  Bytes agent_sha384;         // the agent entry's digest (checked), for the measurement
};

// verify_enclave_image's checks (the same error codes), reading each file once into a sealed
// memfd. Nothing is written to disk; no process is started.
Result<StagedImage> stage_enclave_image(const std::filesystem::path& image_dir);

// install_enclave_image from a staged image: copies each sealed memfd into `root` (sendfile, no
// second hash: sealed memory cannot change) and writes root/etc/coffer/enclave.manifest.
Result<EnclaveManifest> install_staged_image(const StagedImage& staged,
                                             const std::filesystem::path& root);

// Where an installed image keeps its manifest (not an entry of itself).
inline constexpr std::string_view kInstalledManifestPath = "/etc/coffer/enclave.manifest";

// The simulated TEE's components of an image directory (agent file and manifest file) plus the
// init-data, for evidence::sim::measure_enclave.
evidence::sim::EnclaveComponents enclave_components(const std::filesystem::path& image_dir,
                                                    const EnclaveManifest& manifest,
                                                    std::optional<std::string> init_data);

// ---- the enclave signature (sim-sgx; docs/process-enclave.md, docs/simulated-tee.md)

// DIR/enclave.sig: the SIGSTRUCT-like file (evidence/sim/sgx_enclave.h) over the image's
// MRENCLAVE (which covers the manifest and the agent), ISVPRODID, ISVSVN and ATTRIBUTES. Outside
// rootfs: it is not part of what the enclave maps or of MRENCLAVE.
inline constexpr std::string_view kEnclaveSignatureFile = "enclave.sig";

struct EnclaveSignOptions {
  std::uint16_t isv_prod_id = 0;
  std::uint16_t isv_svn = 0;
  bool debug = false;  // ATTRIBUTES.DEBUG (policies refuse debug enclaves)
};

// Checks the image (verify_enclave_image), measures it and writes DIR/enclave.sig signed by
// `signer` (RSA or EC P-256 with its private part: "bad_signer_key"), replacing an older one.
// Returns the identity the image will have.
Result<evidence::sim::SgxIdentity> sign_enclave_image(const std::filesystem::path& image_dir,
                                                      const crypto::Key& signer,
                                                      const EnclaveSignOptions& options);

// The identity given by DIR/enclave.sig for an image that measures `measured_mr_enclave`:
// "enclave_not_signed" (no signature file), "enclave_signature_invalid" (anything else wrong,
// including an image changed after signing).
Result<evidence::sim::SgxIdentity> read_enclave_signature(
    const std::filesystem::path& image_dir, const evidence::Fixed<32>& measured_mr_enclave);

}  // namespace coffer::runtime::process
