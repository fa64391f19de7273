// An unpacked bundle runs under crun: an encrypted image whose layer holds a static busybox is
// decrypted and unpacked into rootfs/ + config.json, and `crun run` executes it with the
// image's Entrypoint, Cmd, Env, WorkingDir and User.
#include <gtest/gtest.h>

#include "core/file.h"
#include "crypto/random.h"
#include "oci/layout.h"
#include "oci/test/test_util.h"
#include "oci/transport.h"
#include "oci/unpack/unpack.h"

namespace coffer::oci::unpack {
namespace {

namespace fs = std::filesystem;
using oci::testing::CommandResult;
using oci::testing::TempDir;

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// crun with its state under the test's directory (not /run/crun).
class Crun {
 public:
  explicit Crun(fs::path state)
      : bin_(oci::testing::require_program("crun")), state_(std::move(state)) {}

  [[nodiscard]] const std::string& bin() const { return bin_; }

  // `crun run` in the foreground; the container's stdout and stderr are captured.
  CommandResult run(const fs::path& bundle, const std::string& id) const {
    std::vector<std::string> argv{
        bin_, "--root", state_.string(), "run", "--bundle", bundle.string(), id};
    if (hide_unified_cgroup_) {
      argv.insert(argv.begin(),
                  {oci::testing::require_program("unshare"), "--mount", "--propagation", "private",
                   "sh", "-c", "umount /sys/fs/cgroup/unified && exec \"$0\" \"$@\""});
    }
    auto r = oci::testing::run(argv);
    (void)oci::testing::run({bin_, "--root", state_.string(), "delete", "--force", id});
    return r;
  }

  // Empty if crun runs a trivial container from its own `crun spec` here, else why not.
  std::string probe(const fs::path& dir) {
    fs::create_directories(dir / "rootfs/bin");
    fs::copy_file("/bin/busybox", dir / "rootfs/bin/busybox");
    auto spec = oci::testing::run({bin_, "spec", "--bundle", dir.string()});
    if (spec.exit_code != 0) return "crun spec failed: " + trim(spec.output);
    auto config = parse_json(read_text_file(dir / "config.json").value()).value();
    config["process"]["terminal"] = false;
    config["process"]["args"] = {"/bin/busybox", "true"};
    (void)write_file_atomic(dir / "config.json", as_bytes(config.dump()));
    auto r = run(dir, "coffer-probe-" + crypto::random_uuid_hex());
    if (r.exit_code == 0) return "";
    std::string reason = "crun cannot run a container here: " + trim(r.output);
    // crun 1.8 refuses a "hybrid" host where a controller (hugetlb on this VM) is bound to the
    // cgroup v2 hierarchy at /sys/fs/cgroup/unified next to the v1 controllers. Without that
    // mount, in a private mount namespace, it sees a plain cgroup v1 host.
    if (r.output.find("cgroups in hybrid mode not supported") == std::string::npos) return reason;
    hide_unified_cgroup_ = true;
    auto again = run(dir, "coffer-probe-" + crypto::random_uuid_hex());
    if (again.exit_code == 0) return "";
    return reason +
           "; without /sys/fs/cgroup/unified in a private mount namespace: " + trim(again.output);
  }

 private:
  std::string bin_;
  fs::path state_;
  bool hide_unified_cgroup_ = false;
};

TEST(CrunBundle, UnpackedEncryptedImageRunsUnderCrun) {
  TempDir tmp;
  Crun crun(tmp.path() / "crun-state");
  if (auto why = crun.probe(tmp.path() / "probe"); !why.empty()) GTEST_SKIP() << why;

  auto busybox = read_file("/bin/busybox", 16 << 20);
  ASSERT_TRUE(busybox) << "busybox-static is not installed (run scripts/install-deps)";
  Bytes layer = oci::testing::make_tar({
      {.name = "bin/", .type = '5', .mode = 0755},
      {.name = "bin/busybox", .content = to_string(*busybox), .mode = 0755},
      {.name = "bin/sh", .type = '2', .link = "busybox", .mode = 0777},
      {.name = "etc/", .type = '5', .mode = 0755},
      {.name = "etc/passwd",
       .content = "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/work:/bin/sh\n"},
      {.name = "etc/group", .content = "root:x:0:\napp:x:1000:\n"},
      {.name = "work/", .type = '5', .mode = 0755, .uid = 1000, .gid = 1000},
  });
  Json run_config{{"Entrypoint", {"/bin/busybox", "sh", "-c"}},
                  {"Cmd",
                   {"echo \"greeting=$GREETING cwd=$(pwd) user=$(busybox id -u):$(busybox id -g) "
                    "host=$(busybox hostname)\""}},
                  {"Env", {"PATH=/bin", "GREETING=hello from coffer"}},
                  {"WorkingDir", "/work"},
                  {"User", "app"}};
  oci::testing::write_image(tmp.path() / "img", "v1", {layer}, true, run_config);

  // Encrypted for a KBS key, then decrypted while unpacking, as the enclave's image service does.
  Bytes key = crypto::random_bytes(32);
  auto src = make_layout_source(OciLayout::open(tmp.path() / "img").value(), "v1");
  auto dst =
      open_destination(parse_image_name("oci:" + (tmp.path() / "enc").string() + ":v1").value(), {})
          .value();
  ASSERT_TRUE(copy_image(
      *src, *dst,
      crypt::encrypt_copy_options(
          crypt::EncryptConfig{.kbs_recipients = {{"kbs:///default/img/k", key}}}, tmp.path())));
  UnpackOptions o;
  o.tree.apply_xattrs = false;
  o.bundle = true;
  o.decrypt.key_provider = [&](const std::string&) -> Result<Bytes> { return key; };
  auto enc = make_layout_source(OciLayout::open(tmp.path() / "enc").value(), "v1");
  auto st = unpack_image(*enc, tmp.path() / "bundle", o);
  ASSERT_TRUE(st) << st.error().to_string();

  auto r = crun.run(tmp.path() / "bundle", "coffer-test-" + crypto::random_uuid_hex());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(trim(r.output), "greeting=hello from coffer cwd=/work user=1000:1000 host=coffer")
      << read_text_file(tmp.path() / "bundle/config.json").value_or("");
}

}  // namespace
}  // namespace coffer::oci::unpack
