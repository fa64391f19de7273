#include "runtime/vm/guest_image.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/file.h"
#include "runtime/vm/test/vm_test_env.h"

namespace coffer::runtime::vm {
namespace {

namespace fs = std::filesystem;

using test::binary;
using test::kernel_package;

class GuestImageTest : public test::VmTest {
 protected:
  GuestImageOptions options() const {
    GuestImageOptions o;
    o.kernel_package = kernel_package();
    o.init = binary("coffer-guest-init");
    o.agent = binary("coffer-agent");
    return o;
  }

  static std::size_t index_of(const std::vector<std::string>& order, const std::string& name) {
    for (std::size_t i = 0; i < order.size(); ++i) {
      if (fs::path(order[i]).filename() == name + ".ko") return i;
    }
    ADD_FAILURE() << name << " is not in the load order";
    return order.size();
  }
};

TEST_F(GuestImageTest, ModulesComeInDependencyOrder) {
  const auto version = kernel_version(kernel_package());
  ASSERT_TRUE(version) << version.error().to_string();
  const auto order =
      module_load_order(kernel_package() / "lib/modules" / *version, default_guest_modules());
  ASSERT_TRUE(order) << order.error().to_string();
  // Debian's cloud kernel builds virtio as modules: the core first, then the transport, then the
  // drivers; virtio_net needs net_failover, which needs failover.
  EXPECT_LT(index_of(*order, "virtio_ring"), index_of(*order, "virtio"));
  EXPECT_LT(index_of(*order, "virtio"), index_of(*order, "virtio_pci"));
  EXPECT_LT(index_of(*order, "virtio_pci_modern_dev"), index_of(*order, "virtio_pci"));
  EXPECT_LT(index_of(*order, "virtio_pci"), order->size());
  EXPECT_LT(index_of(*order, "virtio"), index_of(*order, "virtio_console"));
  EXPECT_LT(index_of(*order, "failover"), index_of(*order, "net_failover"));
  EXPECT_LT(index_of(*order, "net_failover"), index_of(*order, "virtio_net"));
  // each once
  auto sorted = *order;
  std::ranges::sort(sorted);
  EXPECT_EQ(std::ranges::adjacent_find(sorted), sorted.end());
}

TEST_F(GuestImageTest, UnknownModuleIsRefused) {
  const auto version = kernel_version(kernel_package());
  ASSERT_TRUE(version);
  const auto order =
      module_load_order(kernel_package() / "lib/modules" / *version, {"no_such_module"});
  ASSERT_FALSE(order);
  EXPECT_EQ(order.error().code, "module_not_found");
}

TEST_F(GuestImageTest, ModuleThatIsNoElfObjectIsRefused) {
  fs::create_directories(dir_ / "mods/kernel/drivers");
  ASSERT_TRUE(write_file_atomic(dir_ / "mods/kernel/drivers/bogus.ko", as_bytes("not an elf")));
  const auto order = module_load_order(dir_ / "mods", {"bogus"});
  ASSERT_FALSE(order);
  EXPECT_EQ(order.error().code, "bad_module");
}

TEST_F(GuestImageTest, KernelPackageWithoutKernelIsRefused) {
  fs::create_directories(dir_ / "pkg/boot");
  const auto v = kernel_version(dir_ / "pkg");
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, "bad_kernel_package");
}

std::vector<std::string> read_cpio(const fs::path& path, bool& all_canonical) {
  std::vector<std::string> names;
  all_canonical = true;
  archive* a = archive_read_new();
  archive_read_support_format_cpio(a);
  archive_read_support_filter_none(a);
  EXPECT_EQ(archive_read_open_filename(a, path.c_str(), 1 << 16), ARCHIVE_OK);
  archive_entry* e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    names.emplace_back(archive_entry_pathname(e));
    if (archive_entry_mtime(e) != 0 || archive_entry_uid(e) != 0 || archive_entry_gid(e) != 0) {
      all_canonical = false;
    }
    const auto perm = archive_entry_perm(e);
    if (perm != 0755 && perm != 0644) all_canonical = false;
  }
  archive_read_free(a);
  return names;
}

TEST_F(GuestImageTest, SameInputsGiveByteIdenticalImages) {
  const auto a = build_guest_image(options(), dir_ / "a");
  ASSERT_TRUE(a) << a.error().to_string();
  const auto b = build_guest_image(options(), dir_ / "b");
  ASSERT_TRUE(b) << b.error().to_string();
  for (const char* f : {"vmlinuz", "initrd", "cmdline"}) {
    const auto x = read_file(dir_ / "a" / f, std::size_t{1} << 30);
    const auto y = read_file(dir_ / "b" / f, std::size_t{1} << 30);
    ASSERT_TRUE(x && y) << f;
    EXPECT_TRUE(*x == *y) << f << " differs between two builds";
  }
  const auto cmdline = read_text_file(dir_ / "a/cmdline");
  ASSERT_TRUE(cmdline);
  EXPECT_EQ(*cmdline, kDefaultCmdline);

  bool canonical = false;
  const auto names = read_cpio(dir_ / "a/initrd", canonical);
  EXPECT_TRUE(canonical) << "an entry with mtime, owner or mode not normalised";
  EXPECT_TRUE(std::ranges::is_sorted(names));
  for (const char* want : {"init", "usr/bin/coffer-agent", "usr/bin/crun", "bin/busybox",
                           "etc/coffer/modules", "dev", "proc", "sys", "run", "tmp"}) {
    EXPECT_NE(std::ranges::find(names, std::string(want)), names.end()) << want;
  }
  // the loader and libc of the host, at the host's paths
  EXPECT_TRUE(std::ranges::any_of(
      names, [](const std::string& n) { return n.starts_with("lib") && n.contains("libc.so.6"); }));
  // every module of the load order is in the image
  ASSERT_FALSE(a->modules.empty());
  for (const auto& m : a->modules) {
    const std::string path = "lib/modules/" + a->kernel_version + "/" + m;
    EXPECT_NE(std::ranges::find(names, path), names.end()) << path;
  }
}

TEST_F(GuestImageTest, OtherCommandLineChangesOnlyTheCommandLine) {
  auto o = options();
  ASSERT_TRUE(build_guest_image(o, dir_ / "a"));
  o.cmdline += " coffer.tee=sim-tdx";
  ASSERT_TRUE(build_guest_image(o, dir_ / "b"));
  EXPECT_TRUE(*read_file(dir_ / "a/initrd", std::size_t{1} << 30) ==
              *read_file(dir_ / "b/initrd", std::size_t{1} << 30));
  EXPECT_EQ(*read_text_file(dir_ / "b/cmdline"),
            std::string(kDefaultCmdline) + " coffer.tee=sim-tdx");
}

TEST_F(GuestImageTest, RefusesNonEmptyOutputAndBadCommandLine) {
  fs::create_directories(dir_ / "out");
  ASSERT_TRUE(write_file_atomic(dir_ / "out/x", as_bytes("x")));
  auto r = build_guest_image(options(), dir_ / "out");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "already_exists");
  auto o = options();
  o.cmdline = "console=ttyS0\ninit=/bin/sh";
  r = build_guest_image(o, dir_ / "other");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "usage");
}

}  // namespace
}  // namespace coffer::runtime::vm
