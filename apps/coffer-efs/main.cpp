// coffer-efs: create, import, check and mount coffer's encrypted filesystem (docs/encrypted-fs.md).
// The 32-byte key comes on a file descriptor (a pipe from the enclave), never argv or env.
#include <unistd.h>

#include <cerrno>
#include <iostream>

#include <CLI/CLI.hpp>

#include "core/log.h"
#include "core/main.h"
#include "core/version.h"
#include "crypto/kdf.h"
#include "runtime/efs/filesystem.h"
#include "runtime/efs/fuse_mount.h"

namespace {

namespace efs = coffer::runtime::efs;

// Exactly 32 raw bytes, then end of file.
coffer::Result<coffer::Bytes> read_key(int fd) {
  coffer::Bytes key(efs::kKeySize + 1);
  std::size_t got = 0;
  while (got < key.size()) {
    ssize_t n = ::read(fd, key.data() + got, key.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return coffer::make_error("efs_bad_key", "cannot read the key from the descriptor");
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (got != efs::kKeySize) {
    coffer::crypto::cleanse(key);
    return coffer::make_error("efs_bad_key",
                              "the key descriptor must deliver exactly 32 raw bytes");
  }
  key.resize(efs::kKeySize);
  return key;
}

int report(const coffer::Error& e) {
  std::cerr << "coffer-efs: " << e.to_string() << "\n";
  return e.code == efs::kIntegrity || e.code == efs::kWrongKey || e.code == efs::kRollback ? 3 : 1;
}

int run(int argc, char** argv) {
  CLI::App app{"coffer-efs: coffer's encrypted filesystem (docs/encrypted-fs.md)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", coffer::version_line("coffer-efs"));
  int key_fd = -1;
  std::string src;
  std::string dir;
  std::string mountpoint;
  bool foreground = false;
  bool allow_other = false;
  bool debug = false;
  std::uint64_t min_generation = 0;
  std::uint32_t block_size = efs::kDefaultBlockSize;

  auto* create = app.add_subcommand("create", "create an empty filesystem in EFS_DIR");
  auto* import = app.add_subcommand("import", "copy the tree SRC into a new filesystem in EFS_DIR");
  auto* check = app.add_subcommand("check", "authenticate every directory, file and block");
  auto* mount = app.add_subcommand("mount", "serve EFS_DIR on MOUNTPOINT through FUSE");
  for (auto* sub : {create, import, check, mount})
    sub->add_option("--key-fd", key_fd, "descriptor delivering the 32-byte key")->required();
  import->add_option("SRC", src, "source directory")->required();
  for (auto* sub : {create, import})
    sub->add_option("--block-size", block_size, "plaintext bytes per block (default 65536)");
  for (auto* sub : {create, import, check, mount})
    sub->add_option("EFS_DIR", dir, "the filesystem's host directory")->required();
  for (auto* sub : {check, mount})
    sub->add_option("--min-generation", min_generation,
                    "refuse a filesystem older than this generation (rollback check)");
  mount->add_option("MOUNTPOINT", mountpoint, "where to mount")->required();
  mount->add_flag("-f,--foreground", foreground, "stay in the foreground");
  mount->add_flag("--allow-other", allow_other, "let other users access the mount");
  mount->add_flag("-d,--debug", debug, "trace FUSE requests");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  coffer::log::init("info");

  auto key = read_key(key_fd);
  if (!key) return report(key.error());
  struct Wipe {
    coffer::Bytes& k;
    ~Wipe() { coffer::crypto::cleanse(k); }
  } wipe{*key};

  if (create->parsed()) {
    efs::CreateOptions opts;
    opts.block_size = block_size;
    if (auto s = efs::create(dir, *key, opts); !s) return report(s.error());
    return 0;
  }
  if (import->parsed()) {
    efs::CreateOptions opts;
    opts.block_size = block_size;
    auto stats = efs::import_tree(src, dir, *key, opts);
    if (!stats) return report(stats.error());
    std::cout << "imported " << stats->files << " files (" << stats->bytes << " bytes), "
              << stats->dirs << " directories, " << stats->symlinks << " symlinks";
    if (stats->hardlink_copies > 0)
      std::cout << "; " << stats->hardlink_copies << " hard links stored as copies";
    std::cout << "\n";
    return 0;
  }
  auto fs = efs::Filesystem::open(dir, *key, {.min_generation = min_generation});
  coffer::crypto::cleanse(*key);  // the filesystem holds the derived sub-keys only
  if (!fs) return report(fs.error());
  if (check->parsed()) {
    if (auto s = (*fs)->check(); !s) return report(s.error());
    std::cout << "ok: generation " << (*fs)->generation() << "\n";
    return 0;
  }
  efs::MountOptions mopts{.foreground = foreground, .allow_other = allow_other, .debug = debug};
  if (auto s = efs::serve(std::move(*fs), mountpoint, mopts); !s) return report(s.error());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return coffer::run_main("coffer-efs", [&] { return run(argc, argv); });
}
