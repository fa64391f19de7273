#include "runtime/vm/guest_image.h"

#include <archive.h>
#include <archive_entry.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>

#include "core/bytes.h"
#include "core/fd.h"
#include "core/file.h"
#include "runtime/process/enclave_image.h"

namespace coffer::runtime::vm {

namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxModuleBytes = 64u << 20;

std::string module_name(std::string_view file_name) {
  std::string n(file_name);
  for (auto suffix : {".ko", ".ko.xz", ".ko.zst", ".ko.gz"}) {
    const std::string_view s(suffix);
    if (n.size() > s.size() && n.ends_with(s)) {
      n.resize(n.size() - s.size());
      break;
    }
  }
  std::ranges::replace(n, '-', '_');
  return n;
}

// The "depends=" value of an ELF64 kernel module's .modinfo section.
Result<std::vector<std::string>> module_depends(const fs::path& ko) {
  if (ko.extension() != ".ko") {
    return make_error("bad_module", ko.string() + ": compressed modules are not supported");
  }
  const Bytes data = COFFER_TRY(read_file(ko, kMaxModuleBytes));
  auto bad = [&](const std::string& why) {
    return make_error("bad_module", ko.string() + ": " + why);
  };
  Elf64_Ehdr eh{};
  if (data.size() < sizeof eh) return bad("not an ELF file");
  std::memcpy(&eh, data.data(), sizeof eh);
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_shentsize != sizeof(Elf64_Shdr)) {
    return bad("not an ELF64 object");
  }
  auto section = [&](std::size_t i) -> std::optional<Elf64_Shdr> {
    const std::uint64_t off = eh.e_shoff + i * sizeof(Elf64_Shdr);
    if (eh.e_shoff > data.size() || off + sizeof(Elf64_Shdr) > data.size()) return std::nullopt;
    Elf64_Shdr sh{};
    std::memcpy(&sh, data.data() + off, sizeof sh);
    if (sh.sh_type != SHT_NOBITS &&
        (sh.sh_offset > data.size() || sh.sh_size > data.size() - sh.sh_offset)) {
      return std::nullopt;
    }
    return sh;
  };
  const auto strtab = section(eh.e_shstrndx);
  if (!strtab) return bad("bad section table");
  for (std::size_t i = 0; i < eh.e_shnum; ++i) {
    const auto sh = section(i);
    if (!sh) return bad("bad section table");
    if (sh->sh_name >= strtab->sh_size) continue;
    const char* name = reinterpret_cast<const char*>(data.data() + strtab->sh_offset + sh->sh_name);
    const std::size_t max_len = strtab->sh_size - sh->sh_name;
    if (std::string_view(name, strnlen(name, max_len)) != ".modinfo") continue;
    const std::string_view info(reinterpret_cast<const char*>(data.data() + sh->sh_offset),
                                sh->sh_size);
    std::vector<std::string> deps;
    std::size_t pos = 0;
    while (pos < info.size()) {
      auto end = info.find('\0', pos);
      if (end == std::string_view::npos) end = info.size();
      const auto kv = info.substr(pos, end - pos);
      if (kv.starts_with("depends=")) {
        auto list = kv.substr(8);
        while (!list.empty()) {
          const auto comma = list.find(',');
          const auto item = list.substr(0, comma);
          if (!item.empty()) deps.push_back(module_name(item));
          if (comma == std::string_view::npos) break;
          list.remove_prefix(comma + 1);
        }
      }
      pos = end + 1;
    }
    return deps;
  }
  return bad("no .modinfo section");
}

using ArchivePtr = std::unique_ptr<archive, decltype(&archive_write_free)>;
using EntryPtr = std::unique_ptr<archive_entry, decltype(&archive_entry_free)>;

struct InitrdEntry {
  bool dir = false;
  fs::path host;     // file: where its bytes come from
  std::string text;  // file without host: these bytes
  mode_t mode = 0;
};

Status write_initrd(const std::map<std::string, InitrdEntry>& entries, const fs::path& out) {
  ArchivePtr a(archive_write_new(), archive_write_free);
  archive_write_set_format_cpio_newc(a.get());
  archive_write_add_filter_none(a.get());
  // one block per write, no padding of the last block beyond what newc's trailer needs
  archive_write_set_bytes_per_block(a.get(), 0);
  if (archive_write_open_filename(a.get(), out.c_str()) != ARCHIVE_OK) {
    return make_error("io_error", "initrd: " + std::string(archive_error_string(a.get())));
  }
  auto failed = [&](const std::string& what) {
    return make_error("io_error", "initrd: " + what + ": " + archive_error_string(a.get()));
  };
  EntryPtr ae(archive_entry_new(), archive_entry_free);
  std::int64_t ino = 0;
  // std::map: sorted by path, so every directory comes before what it holds
  for (const auto& [path, e] : entries) {
    archive_entry_clear(ae.get());
    archive_entry_copy_pathname(ae.get(), path.c_str());
    archive_entry_set_uid(ae.get(), 0);
    archive_entry_set_gid(ae.get(), 0);
    archive_entry_set_mtime(ae.get(), 0, 0);
    archive_entry_set_ino64(ae.get(), ++ino);
    archive_entry_set_dev(ae.get(), 0);
    Bytes bytes;
    if (e.dir) {
      archive_entry_set_filetype(ae.get(), AE_IFDIR);
      archive_entry_set_perm(ae.get(), 0755);
      archive_entry_set_nlink(ae.get(), 2);
      archive_entry_set_size(ae.get(), 0);
    } else {
      if (!e.host.empty()) {
        bytes = COFFER_TRY(read_file(e.host, std::size_t{1} << 30));
      } else {
        bytes.assign(e.text.begin(), e.text.end());
      }
      archive_entry_set_filetype(ae.get(), AE_IFREG);
      archive_entry_set_perm(ae.get(), e.mode);
      archive_entry_set_nlink(ae.get(), 1);
      archive_entry_set_size(ae.get(), static_cast<la_int64_t>(bytes.size()));
    }
    if (archive_write_header(a.get(), ae.get()) != ARCHIVE_OK) return failed(path);
    if (!bytes.empty() && archive_write_data(a.get(), bytes.data(), bytes.size()) !=
                              static_cast<la_ssize_t>(bytes.size())) {
      return failed(path);
    }
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) return failed("close");
  return ok();
}

}  // namespace

std::vector<std::string> default_guest_modules() {
  return {"virtio_pci", "virtio_console", "virtio_net"};
}

Result<std::string> kernel_version(const fs::path& kernel_package) {
  std::error_code ec;
  std::vector<std::string> versions;
  for (const auto& d : fs::directory_iterator(kernel_package / "boot", ec)) {
    const auto name = d.path().filename().string();
    if (name.starts_with("vmlinuz-")) versions.push_back(name.substr(8));
  }
  if (ec || versions.size() != 1) {
    return make_error("bad_kernel_package",
                      kernel_package.string() +
                          ": expected exactly one boot/vmlinuz-<version> (scripts/install-deps "
                          "unpacks Debian's cloud kernel there)");
  }
  if (!fs::is_directory(kernel_package / "lib/modules" / versions[0], ec)) {
    return make_error("bad_kernel_package",
                      kernel_package.string() + ": no lib/modules/" + versions[0]);
  }
  return versions[0];
}

Result<std::vector<std::string>> module_load_order(const fs::path& modules_dir,
                                                   const std::vector<std::string>& wanted) {
  // name -> path relative to modules_dir, from the module files themselves
  std::map<std::string, std::string> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(modules_dir / "kernel", ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    const auto fname = it->path().filename().string();
    if (!fname.contains(".ko")) continue;
    files.emplace(module_name(fname), it->path().lexically_relative(modules_dir).string());
  }
  if (ec) return make_error("io_error", modules_dir.string() + ": " + ec.message());
  std::set<std::string> builtin;
  if (auto text = read_text_file(modules_dir / "modules.builtin", 16u << 20)) {
    std::size_t pos = 0;
    while (pos < text->size()) {
      auto end = text->find('\n', pos);
      if (end == std::string::npos) end = text->size();
      builtin.insert(module_name(fs::path(text->substr(pos, end - pos)).filename().string()));
      pos = end + 1;
    }
  }
  std::vector<std::string> order;
  std::set<std::string> done, visiting;
  std::function<Status(const std::string&)> visit = [&](const std::string& name) -> Status {
    if (done.contains(name)) return ok();
    if (builtin.contains(name) && !files.contains(name)) return ok();
    if (visiting.contains(name)) {
      return make_error("module_dependency_cycle", "module " + name + " depends on itself");
    }
    const auto f = files.find(name);
    if (f == files.end()) {
      return make_error("module_not_found", "no module " + name + " in " + modules_dir.string());
    }
    visiting.insert(name);
    for (const auto& dep : COFFER_TRY(module_depends(modules_dir / f->second))) {
      COFFER_TRY_STATUS(visit(dep));
    }
    visiting.erase(name);
    done.insert(name);
    order.push_back(f->second);
    return ok();
  };
  for (const auto& w : wanted) COFFER_TRY_STATUS(visit(module_name(w)));
  return order;
}

Result<GuestImage> build_guest_image(const GuestImageOptions& options, const fs::path& out_dir) {
  std::error_code ec;
  if (fs::exists(out_dir, ec) && !fs::is_empty(out_dir, ec)) {
    return make_error("already_exists", out_dir.string() + " exists and is not empty");
  }
  if (options.cmdline.find_first_of(std::string_view("\n\0", 2)) != std::string::npos) {
    return make_error("usage", "the kernel command line holds a newline or NUL");
  }
  GuestImage img;
  img.kernel_version = COFFER_TRY(kernel_version(options.kernel_package));
  const fs::path modules_dir = options.kernel_package / "lib/modules" / img.kernel_version;
  img.modules = COFFER_TRY(module_load_order(modules_dir, options.modules));

  std::map<std::string, InitrdEntry> entries;
  auto add_dirs = [&](const std::string& path) {
    for (auto p = fs::path(path).parent_path(); !p.empty() && p != p.root_path();
         p = p.parent_path()) {
      entries[p.relative_path().string()] = InitrdEntry{.dir = true};
    }
  };
  auto add_file = [&](const fs::path& host, const std::string& path) -> Status {
    struct stat st {};
    if (::stat(host.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return make_error("not_found", host.string() + " is not a regular file");
    }
    add_dirs(path);
    entries[fs::path(path).relative_path().string()] = InitrdEntry{
        .host = host, .mode = static_cast<mode_t>((st.st_mode & 0111) != 0 ? 0755 : 0644)};
    return ok();
  };
  auto add_with_libs = [&](const fs::path& host, const std::string& path) -> Status {
    COFFER_TRY_STATUS(add_file(host, path));
    for (const auto& lib : COFFER_TRY(process::host_libraries(host))) {
      COFFER_TRY_STATUS(add_file(lib, lib.lexically_normal().string()));
    }
    return ok();
  };
  // The stripped executables are made in the output directory and removed after the build.
  fs::create_directories(out_dir, ec);
  if (ec) return make_error("io_error", "creating " + out_dir.string() + ": " + ec.message());
  struct RemoveStripped {
    std::vector<fs::path> paths;
    ~RemoveStripped() {
      std::error_code ignored;
      for (const auto& p : paths) fs::remove(p, ignored);
    }
  } stripped;
  auto executable = [&](const fs::path& host, const char* name) -> Result<fs::path> {
    if (!options.strip_debug) return host;
    fs::path to = out_dir / (std::string(".") + name + ".stripped");
    stripped.paths.push_back(to);
    COFFER_TRY_STATUS(process::strip_debug(host, to));
    return to;
  };
  COFFER_TRY_STATUS(
      add_with_libs(COFFER_TRY(executable(options.init, "init")), std::string(kGuestInitPath)));
  COFFER_TRY_STATUS(
      add_with_libs(COFFER_TRY(executable(options.agent, "agent")), std::string(kGuestAgentPath)));
  COFFER_TRY_STATUS(add_with_libs(options.crun, "/usr/bin/crun"));
  COFFER_TRY_STATUS(add_file(options.busybox, "/bin/busybox"));  // static
  std::string module_list;
  for (const auto& m : img.modules) {
    const std::string path = "/lib/modules/" + img.kernel_version + "/" + m;
    COFFER_TRY_STATUS(add_file(modules_dir / m, path));
    module_list += path + "\n";
  }
  add_dirs(std::string(kGuestModuleList));
  entries[fs::path(kGuestModuleList).relative_path().string()] =
      InitrdEntry{.text = module_list, .mode = 0644};
  for (const char* d : {"dev", "proc", "sys", "run", "tmp", "mnt"}) {
    entries[d] = InitrdEntry{.dir = true};
  }

  fs::create_directories(out_dir, ec);
  if (ec) return make_error("io_error", "creating " + out_dir.string() + ": " + ec.message());
  img.kernel = out_dir / "vmlinuz";
  img.initrd = out_dir / "initrd";
  img.cmdline_file = out_dir / "cmdline";
  img.cmdline = options.cmdline;
  const Bytes kernel = COFFER_TRY(read_file(
      options.kernel_package / "boot" / ("vmlinuz-" + img.kernel_version), std::size_t{256} << 20));
  COFFER_TRY_STATUS(write_file_atomic(img.kernel, kernel, 0644));
  COFFER_TRY_STATUS(write_initrd(entries, img.initrd));
  COFFER_TRY_STATUS(write_file_atomic(img.cmdline_file, as_bytes(img.cmdline), 0644));
  return img;
}

}  // namespace coffer::runtime::vm
