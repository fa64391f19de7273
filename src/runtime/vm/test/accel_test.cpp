// The accelerator choice with the real QEMU and this host's /dev/kvm (docs/vm-enclave.md).
#include "runtime/vm/accel.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/file.h"
#include "runtime/vm/test/vm_test_env.h"

namespace coffer::runtime::vm {
namespace {

namespace fs = std::filesystem;

class AccelTest : public test::VmTest {
 protected:
  AccelOptions options() const {
    AccelOptions o;
    for (const auto& entry : fs::directory_iterator(test::kernel_package() / "boot")) {
      if (entry.path().filename().string().starts_with("vmlinuz-")) o.kernel = entry.path();
    }
    o.cache_file = dir_ / "cache/kvm-probe";
    o.scratch_dir = dir_;
    return o;
  }
  static bool kvm_opens() {
    const int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) return false;
    ::close(fd);
    return true;
  }
};

TEST_F(AccelTest, ParsesTheThreeNames) {
  EXPECT_EQ(parse_accel("auto").value(), Accel::kAuto);
  EXPECT_EQ(parse_accel("tcg").value(), Accel::kTcg);
  EXPECT_EQ(parse_accel("kvm").value(), Accel::kKvm);
  EXPECT_EQ(parse_accel("hvf").error().code, "usage");
  EXPECT_EQ(parse_accel("").error().code, "usage");
}

// The probe itself: under TCG the guest's kernel runs to its panic (no root file system), so a
// failed KVM probe means KVM did not run it, not that the probe is broken.
TEST_F(AccelTest, ProbeBootsTheGuestKernelToItsPanicUnderTcg) {
  auto o = options();
  ASSERT_FALSE(o.kernel.empty()) << "no vmlinuz in " << test::kernel_package();
  o.probe_accelerator = "tcg";
  o.probe_timeout = std::chrono::seconds(60);
  auto ran = probe_kvm(o);
  ASSERT_TRUE(ran) << ran.error().to_string();
  EXPECT_TRUE(*ran);
  EXPECT_TRUE(fs::is_empty(dir_)) << "the probe's console log is removed";
}

TEST_F(AccelTest, ProbeOfAFileThatIsNoKernelFails) {
  auto o = options();
  o.probe_accelerator = "tcg";
  o.probe_timeout = std::chrono::seconds(20);
  o.kernel = dir_ / "not-a-kernel";
  ASSERT_TRUE(write_file_atomic(o.kernel, as_bytes("MZ but nothing else")));
  auto ran = probe_kvm(o);
  ASSERT_TRUE(ran) << ran.error().to_string();
  EXPECT_FALSE(*ran);
  o.kernel.clear();
  EXPECT_EQ(probe_kvm(o).error().code, "usage");
}

TEST_F(AccelTest, ProbeOfAnAcceleratorQemuDoesNotKnowFails) {
  auto o = options();
  o.probe_accelerator = "no-such-accel";
  auto ran = probe_kvm(o);
  ASSERT_TRUE(ran) << ran.error().to_string();
  EXPECT_FALSE(*ran);
}

TEST_F(AccelTest, TcgAskedForNeedsNoProbe) {
  auto o = options();
  o.qemu = "/no/such/qemu";
  auto c = choose_accel(Accel::kTcg, o);
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->accel, "tcg");
  EXPECT_FALSE(fs::exists(o.cache_file));
}

TEST_F(AccelTest, WithoutTheDeviceAutoIsTcgAndKvmIsRefused) {
  auto o = options();
  o.kvm_device = dir_ / "no-kvm";
  auto c = choose_accel(Accel::kAuto, o);
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->accel, "tcg");
  EXPECT_NE(c->reason.find("no-kvm"), std::string::npos) << c->reason;
  auto k = choose_accel(Accel::kKvm, o);
  ASSERT_FALSE(k);
  EXPECT_EQ(k.error().code, "kvm_unusable");
}

// On this host the answer is the host's: whatever the probe finds, auto follows it, kvm is
// refused exactly when the probe fails, and the answer is cached (and a bad cache ignored).
TEST_F(AccelTest, AutoFollowsTheProbeAndCachesItsAnswer) {
  if (!kvm_opens()) GTEST_SKIP() << "/dev/kvm does not open here: the device test covers this";
  auto o = options();
  auto first = choose_accel(Accel::kAuto, o);
  ASSERT_TRUE(first) << first.error().to_string();
  auto probed = probe_kvm(o);
  ASSERT_TRUE(probed) << probed.error().to_string();
  EXPECT_EQ(first->accel, *probed ? "kvm" : "tcg") << first->reason;
  EXPECT_EQ(first->reason.find("cached"), std::string::npos) << first->reason;
  auto cache = read_text_file(o.cache_file, 4096);
  ASSERT_TRUE(cache) << cache.error().to_string();
  EXPECT_TRUE(cache->ends_with(*probed ? " kvm=1\n" : " kvm=0\n")) << *cache;

  auto second = choose_accel(Accel::kAuto, o);
  ASSERT_TRUE(second) << second.error().to_string();
  EXPECT_EQ(second->accel, first->accel);
  EXPECT_NE(second->reason.find("cached"), std::string::npos) << second->reason;

  auto kvm = choose_accel(Accel::kKvm, o);
  EXPECT_EQ(kvm.has_value(), *probed);
  if (!kvm) {
    EXPECT_EQ(kvm.error().code, "kvm_unusable");
  }

  // another QEMU binary (or kernel) than the cached answer's: probed again
  ASSERT_TRUE(write_file_atomic(
      o.cache_file,
      as_bytes("qemu=/other size=1 mtime=1.0 kernel=/k size=1 mtime=1.0 host=x kvm=1\n")));
  auto third = choose_accel(Accel::kAuto, o);
  ASSERT_TRUE(third) << third.error().to_string();
  EXPECT_EQ(third->accel, first->accel);
  EXPECT_EQ(third->reason.find("cached"), std::string::npos) << third->reason;
}

}  // namespace
}  // namespace coffer::runtime::vm
