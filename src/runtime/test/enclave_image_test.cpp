#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/bytes.h"
#include "core/file.h"
#include "crypto/digest.h"
#include "crypto/pkey.h"
#include "evidence/sim/measure.h"
#include "runtime/process/enclave_image.h"
#include "runtime/test/test_env.h"

namespace coffer::runtime::process {
namespace {

namespace fs = std::filesystem;
using test::Shared;
using test::TempDir;

std::string read_all(const fs::path& p) { return *read_text_file(p); }

TEST(EnclaveImage, BuildsFromTheRealAgentWithLoaderAndCrun) {
  ASSERT_EQ(Shared::get().error, "");
  const auto& image = Shared::get().image;
  auto m = parse_manifest(read_all(image / "manifest"));
  ASSERT_TRUE(m) << m.error().to_string();
  EXPECT_EQ(m->agent, "/usr/bin/coffer-agent");
  ASSERT_NE(m->find("/usr/bin/coffer-agent"), nullptr);
  ASSERT_NE(m->find("/usr/bin/crun"), nullptr);
  EXPECT_EQ(m->find("/usr/bin/crun")->mode, 0755U);
  ASSERT_NE(m->find("/lib64/ld-linux-x86-64.so.2"), nullptr);
  ASSERT_NE(m->find("/lib/x86_64-linux-gnu/libc.so.6"), nullptr);
  ASSERT_NE(m->find("/lib/x86_64-linux-gnu/libseccomp.so.2"), nullptr);    // crun's
  ASSERT_NE(m->find("/lib/x86_64-linux-gnu/libprotobuf.so.32"), nullptr);  // the agent's
  // The agent's bytes are the built executable's without its debug sections.
  const auto installed = *read_file(image / "rootfs/usr/bin/coffer-agent");
  EXPECT_LE(installed.size(), read_file(test::agent_executable())->size());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(installed.data()), 4),
            "\x7f"
            "ELF");
  EXPECT_EQ(m->find("/usr/bin/coffer-agent")->mode, 0755U);
  EXPECT_FALSE(fs::exists(image / ".agent.stripped"));
  // The canonical text round-trips.
  EXPECT_EQ(m->text(), read_all(image / "manifest"));
  auto verified = verify_enclave_image(image);
  ASSERT_TRUE(verified) << verified.error().to_string();
  EXPECT_EQ(verified->entries.size(), m->entries.size());
}

// Without stripping, the agent's bytes are the built executable's.
TEST(EnclaveImage, KeepDebugInstallsTheAgentAsItIs) {
  ASSERT_EQ(Shared::get().error, "");
  TempDir dir;
  EnclaveImageOptions o;
  o.agent = test::agent_executable();
  o.strip_debug = false;
  auto m = build_enclave_image(o, dir.path() / "image");
  ASSERT_TRUE(m) << m.error().to_string();
  EXPECT_EQ(*read_file(dir.path() / "image/rootfs/usr/bin/coffer-agent"),
            *read_file(test::agent_executable()));
}

TEST(EnclaveImage, ManifestIsStableAcrossBuilds) {
  ASSERT_EQ(Shared::get().error, "");
  TempDir dir;
  EnclaveImageOptions o;
  o.agent = test::agent_executable();
  auto m = build_enclave_image(o, dir.path() / "again");
  ASSERT_TRUE(m) << m.error().to_string();
  EXPECT_EQ(read_all(dir.path() / "again/manifest"), read_all(Shared::get().image / "manifest"));
  // and so are the reference values of an image
  auto a = evidence::sim::measure_enclave(enclave_components(dir.path() / "again", *m, {}));
  auto b = evidence::sim::measure_enclave(enclave_components(Shared::get().image, *m, {}));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->reference_values(), b->reference_values());
}

// sim-sgx: the signature binds the image's MRENCLAVE; an image rebuilt with one more file after
// signing (a consistent manifest, so the image check passes) is refused; unsigned is its own error.
TEST(EnclaveImage, SignatureBindsTheImageAndGivesTheIdentity) {
  ASSERT_EQ(Shared::get().error, "");
  TempDir dir;
  const auto image = test::copy_image(dir.path() / "image");
  auto m = verify_enclave_image(image);
  ASSERT_TRUE(m);
  auto measured = evidence::sim::measure_enclave(enclave_components(image, *m, {}));
  ASSERT_TRUE(measured);
  auto unsigned_read = read_enclave_signature(image, measured->mr_enclave);
  ASSERT_FALSE(unsigned_read);
  EXPECT_EQ(unsigned_read.error().code, "enclave_not_signed");

  auto key = crypto::Key::generate(crypto::KeyType::kEcP256);
  ASSERT_TRUE(key);
  auto id = sign_enclave_image(image, *key, {.isv_prod_id = 4, .isv_svn = 9});
  ASSERT_TRUE(id) << id.error().to_string();
  EXPECT_EQ(id->mr_enclave, measured->mr_enclave);
  EXPECT_EQ(id->mr_signer, evidence::sim::sgx_mr_signer(*key).value());
  auto read = read_enclave_signature(image, measured->mr_enclave);
  ASSERT_TRUE(read) << read.error().to_string();
  EXPECT_EQ(read->mr_signer, id->mr_signer);
  EXPECT_EQ(read->isv_prod_id, 4);
  EXPECT_EQ(read->isv_svn, 9);
  // the MRENCLAVE depends on the image, not on the signature file next to it
  auto again = evidence::sim::measure_enclave(enclave_components(image, *m, {}));
  EXPECT_EQ(again->mr_enclave, measured->mr_enclave);
  const Json rv = evidence::sim::sgx_reference_values(*read);
  EXPECT_EQ(rv["sgx.isv_prod_id"], "0400");
  EXPECT_EQ(rv["sgx.isv_svn"], "0900");

  // rebuilt with one more file, the old signature copied over
  std::ofstream(dir.path() / "extra.txt") << "one more file";
  EnclaveImageOptions o;
  o.agent = test::agent_executable();
  o.extra_files = {dir.path() / "extra.txt"};
  auto rebuilt = build_enclave_image(o, dir.path() / "rebuilt");
  ASSERT_TRUE(rebuilt) << rebuilt.error().to_string();
  fs::copy_file(image / "enclave.sig", dir.path() / "rebuilt/enclave.sig");
  auto changed =
      evidence::sim::measure_enclave(enclave_components(dir.path() / "rebuilt", *rebuilt, {}));
  ASSERT_TRUE(changed);
  ASSERT_NE(changed->mr_enclave, measured->mr_enclave);
  auto refused = read_enclave_signature(dir.path() / "rebuilt", changed->mr_enclave);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, "enclave_signature_invalid");
  // a public key cannot sign
  EXPECT_EQ(sign_enclave_image(image, key->public_key(), {}).error().code, "bad_signer_key");
}

TEST(EnclaveImage, BuildRefusesANonEmptyOutput) {
  TempDir dir;
  std::ofstream(dir.path() / "x") << "x";
  EnclaveImageOptions o;
  o.agent = test::agent_executable();
  auto m = build_enclave_image(o, dir.path());
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, "already_exists");
}

void flip_byte(const fs::path& p) {
  const int fd = ::open(p.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  unsigned char c = 0;
  ASSERT_EQ(::pread(fd, &c, 1, 1000), 1);
  c ^= 0x01;
  ASSERT_EQ(::pwrite(fd, &c, 1, 1000), 1);
  ::close(fd);
}

TEST(EnclaveImage, ChangedLibraryByteIsRefused) {
  ASSERT_EQ(Shared::get().error, "");
  TempDir dir;
  const auto image = test::copy_image(dir.path() / "image");
  flip_byte(image / "rootfs/lib/x86_64-linux-gnu/libssl.so.3");
  auto v = verify_enclave_image(image);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, "enclave_image_digest_mismatch");
  EXPECT_NE(v.error().message.find("/lib/x86_64-linux-gnu/libssl.so.3"), std::string::npos);
  // install checks too (the copy is what counts)
  TempDir root;
  auto i = install_enclave_image(image, root.path());
  ASSERT_FALSE(i);
  EXPECT_EQ(i.error().code, "enclave_image_digest_mismatch");
}

// The launcher's path: each file read and hashed once into a sealed memfd, then installed from
// it. The same refusals as verify_enclave_image, and the staged bytes cannot change afterwards.
TEST(EnclaveImage, StagingChecksOnceAndSealsTheBytes) {
  ASSERT_EQ(Shared::get().error, "");
  TempDir dir;
  const auto image = test::copy_image(dir.path() / "image");
  {
    auto staged = stage_enclave_image(image);
    ASSERT_TRUE(staged) << staged.error().to_string();
    ASSERT_EQ(staged->memfds.size(), staged->manifest.entries.size());
    EXPECT_EQ(hex_encode(staged->agent_sha384), staged->manifest.find(kImageAgentPath)->sha384);
    // sealed: neither written nor grown nor shrunk
    const int fd = staged->memfds.front().get();
    const unsigned char c = 0;
    EXPECT_EQ(::pwrite(fd, &c, 1, 0), -1);
    EXPECT_EQ(errno, EPERM);
    EXPECT_EQ(::ftruncate(fd, 1), -1);
    // a change to the image after staging does not reach the installed copy
    flip_byte(image / "rootfs/lib/x86_64-linux-gnu/libssl.so.3");
    TempDir root;
    auto installed = install_staged_image(*staged, root.path());
    ASSERT_TRUE(installed) << installed.error().to_string();
    for (const auto& e : staged->manifest.entries) {
      const auto copy = root.path() / e.path.substr(1);
      auto bytes = read_file(copy, std::size_t{1} << 30);
      ASSERT_TRUE(bytes) << e.path;
      EXPECT_EQ(hex_encode(crypto::sha384(*bytes)), e.sha384) << e.path;
      EXPECT_EQ(static_cast<mode_t>(fs::status(copy).permissions()), e.mode) << e.path;
    }
    auto manifest = read_text_file(root.path() / "etc/coffer/enclave.manifest", 1 << 20);
    ASSERT_TRUE(manifest);
    EXPECT_EQ(*manifest, staged->manifest_text);
  }
  // the changed library is now refused at staging
  auto refused = stage_enclave_image(image);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, "enclave_image_digest_mismatch");
  EXPECT_NE(refused.error().message.find("/lib/x86_64-linux-gnu/libssl.so.3"), std::string::npos);
  // an extra file is refused at staging
  TempDir dir2;
  const auto image2 = test::copy_image(dir2.path() / "image");
  fs::create_directories(image2 / "rootfs/etc");
  std::ofstream(image2 / "rootfs/etc/ld.so.preload") << "/tmp/evil.so\n";
  auto extra = stage_enclave_image(image2);
  ASSERT_FALSE(extra);
  EXPECT_EQ(extra.error().code, "enclave_image_extra_file");
}

TEST(EnclaveImage, MissingExtraModeAndSymlinkAreRefused) {
  ASSERT_EQ(Shared::get().error, "");
  {
    TempDir dir;
    const auto image = test::copy_image(dir.path() / "image");
    fs::remove(image / "rootfs/usr/bin/crun");
    auto v = verify_enclave_image(image);
    ASSERT_FALSE(v);
    EXPECT_EQ(v.error().code, "enclave_image_missing_file");
    EXPECT_NE(v.error().message.find("usr/bin/crun"), std::string::npos);
  }
  {
    TempDir dir;
    const auto image = test::copy_image(dir.path() / "image");
    fs::create_directories(image / "rootfs/etc");
    std::ofstream(image / "rootfs/etc/ld.so.preload") << "/tmp/evil.so\n";
    auto v = verify_enclave_image(image);
    ASSERT_FALSE(v);
    EXPECT_EQ(v.error().code, "enclave_image_extra_file");
    EXPECT_NE(v.error().message.find("/etc/ld.so.preload"), std::string::npos);
  }
  {
    TempDir dir;
    const auto image = test::copy_image(dir.path() / "image");
    ASSERT_EQ(::chmod((image / "rootfs/lib/x86_64-linux-gnu/libc.so.6").c_str(), 0777), 0);
    auto v = verify_enclave_image(image);
    ASSERT_FALSE(v);
    EXPECT_EQ(v.error().code, "enclave_image_mode_mismatch");
    EXPECT_NE(v.error().message.find("libc.so.6"), std::string::npos);
  }
  {
    TempDir dir;
    const auto image = test::copy_image(dir.path() / "image");
    const auto lib = image / "rootfs/lib/x86_64-linux-gnu/libz.so.1";
    fs::rename(lib, image / "libz.so.1");
    fs::create_symlink(image / "libz.so.1", lib);
    auto v = verify_enclave_image(image);
    ASSERT_FALSE(v);
    EXPECT_EQ(v.error().code, "enclave_image_bad_file");
  }
}

TEST(EnclaveManifest, NonCanonicalTextIsRefused) {
  const std::string d(96, 'a');
  const std::string good = "coffer-enclave-manifest v1\nagent /a\nfile 0755 1 " + d + " /a\n";
  ASSERT_TRUE(parse_manifest(good));
  for (const std::string& bad : std::vector<std::string>{
           "coffer-enclave-manifest v2\nagent /a\nfile 0755 1 " + d + " /a\n",
           "coffer-enclave-manifest v1\nagent /a\nfile 0755 1 " + d + " /a",     // no newline
           "coffer-enclave-manifest v1\nagent /b\nfile 0755 1 " + d + " /a\n",   // no agent
           "coffer-enclave-manifest v1\nagent /a\nfile 4755 1 " + d + " /a\n",   // setuid
           "coffer-enclave-manifest v1\nagent /a\nfile 0755 01 " + d + " /a\n",  // size
           "coffer-enclave-manifest v1\nagent /a\nfile 0755 1 " + d + " /a/../b\n",
           "coffer-enclave-manifest v1\nagent /a\nfile 0755 1 " + d + " /a\nfile 0755 1 " + d +
               " /a\n",  // repeated
           "coffer-enclave-manifest v1\nagent /b\nfile 0755 1 " + d + " /b\nfile 0755 1 " + d +
               " /a\n",  // unsorted
           "coffer-enclave-manifest v1\nagent /a\nfile 0755 1 " + std::string(96, 'A') + " /a\n",
           "coffer-enclave-manifest v1\nagent /a\nfile  0755 1 " + d + " /a\n",
       }) {
    auto m = parse_manifest(bad);
    ASSERT_FALSE(m) << bad;
    EXPECT_EQ(m.error().code, "bad_enclave_manifest") << bad;
  }
}

}  // namespace
}  // namespace coffer::runtime::process
