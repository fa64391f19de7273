// The app enclave through the real executables: the process enclave launcher (sim-sgx) runs
// coffer-app-enclave from a signed image; the bundle is an encrypted filesystem made here, its
// key sealed by a test-side quote service with the same signer and product (as the agent enclave
// would seal it).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <filesystem>
#include <fstream>

#include "coffer/agent/v1/agent.pb.h"
#include "core/file.h"
#include "core/test/temp_dir.h"
#include "crypto/pkey.h"
#include "crypto/random.h"
#include "evidence/sim/quote_service.h"
#include "evidence/sim/sim_pki.h"
#include "net/ttrpc/server.h"
#include "runtime/appenclave/key_handover.h"
#include "runtime/efs/filesystem.h"
#include "runtime/launcher.h"
#include "runtime/process/enclave_image.h"
#include "runtime/process/process_enclave.h"

namespace coffer::runtime::appenclave {
namespace {

namespace fs = std::filesystem;
using coffer::testing::TempDir;

constexpr const char* kBusybox = "/usr/bin/busybox";

fs::path boot_executable() { return fs::path(COFFER_BINARY_DIR) / "apps" / "coffer-app-enclave"; }

struct Shared {
  TempDir dir;
  fs::path sim = dir.path() / "sim";
  fs::path image = dir.path() / "image";
  fs::path other_image = dir.path() / "other-image";
  std::optional<crypto::Key> signer;
  evidence::sim::SgxIdentity identity;
  std::string error;

  Shared() {
    evidence::sim::SimPkiOptions po;
    po.rsa_bits = 2048;
    auto pki = evidence::sim::generate_sim_pki(po);
    if (!pki) {
      error = pki.error().to_string();
      return;
    }
    if (auto w = evidence::sim::write_sim_pki(*pki, sim); !w) error = w.error().to_string();
    for (const auto& out : {image, other_image}) {
      process::EnclaveImageOptions o;
      o.agent = boot_executable();
      o.crun.clear();
      if (auto m = process::build_enclave_image(o, out); !m) error = m.error().to_string();
    }
    signer = crypto::Key::generate(crypto::KeyType::kEcP256).value();
    auto id = process::sign_enclave_image(image, *signer, {.isv_prod_id = 7, .isv_svn = 1});
    if (!id) {
      error = id.error().to_string();
      return;
    }
    identity = *id;
    auto other = crypto::Key::generate(crypto::KeyType::kEcP256).value();
    if (auto o = process::sign_enclave_image(other_image, other, {.isv_prod_id = 7, .isv_svn = 1});
        !o) {
      error = o.error().to_string();
    }
  }
  static Shared& get() {
    static Shared s;
    return s;
  }
};

class AppEnclaveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/fuse is not usable";
    if (!fs::exists(kBusybox)) GTEST_SKIP() << "busybox-static is not installed";
    ASSERT_EQ(Shared::get().error, "");
    storage_ = tmp_.path() / "storage";
    fs::create_directories(storage_);
  }

  // A bundle: /config.json running `script` with busybox sh, /rootfs with busybox and a file.
  void make_bundle(const std::string& id, const std::string& script, bool big_file = false,
                   std::uint32_t uid = 0) {
    const fs::path src = tmp_.path() / ("src-" + id);
    fs::create_directories(src / "rootfs/bin");
    fs::copy_file(kBusybox, src / "rootfs/bin/busybox");
    ASSERT_TRUE(write_file_atomic(src / "rootfs/data.txt", as_bytes("SECRET-DATA-4711\n"), 0644));
    if (big_file) {
      std::string big;
      while (big.size() < 40000) big += "TAMPER-ME-" + std::to_string(big.size()) + "\n";
      ASSERT_TRUE(write_file_atomic(src / "rootfs/big.txt", as_bytes(big), 0644));
    }
    Json config = {{"ociVersion", "1.1.0"},
                   {"process",
                    {{"args", {"busybox", "sh", "-c", script}},
                     {"env", {"PATH=/bin", "GREETING=hello-from-env"}},
                     {"cwd", "/bin"},
                     {"user", {{"uid", uid}, {"gid", uid}, {"additionalGids", {uid + 1}}}}}},
                   {"root", {{"path", "rootfs"}, {"readonly", true}}}};
    ASSERT_TRUE(write_file_atomic(src / "config.json", as_bytes(config.dump()), 0644));
    key_.key = crypto::random_bytes(32);
    auto stats = efs::import_tree(src, storage_ / id / "efs", key_.key);
    ASSERT_TRUE(stats) << stats.error().to_string();
    key_.generation = efs::Filesystem::open(storage_ / id / "efs", key_.key).value()->generation();
  }

  // The key sealed as the agent enclave would: a quote service with the agent's identity (same
  // signer, same product, another MRENCLAVE) on the same platform.
  void seal(const std::string& id, const BundleKey& key) {
    auto pki = evidence::sim::load_sim_pki(Shared::get().sim);
    ASSERT_TRUE(pki) << pki.error().to_string();
    evidence::sim::QuoteServiceConfig cfg;
    cfg.socket_path = tmp_.path() / "agent-qs.sock";
    cfg.sgx = Shared::get().identity;
    cfg.sgx->mr_enclave.fill(0xa9);
    evidence::sim::QuoteService service(std::move(*pki), {}, cfg);
    ASSERT_TRUE(service.start());
    auto text = seal_bundle_key(evidence::sim::QuoteServiceClient(cfg.socket_path), id, key);
    service.stop();
    ASSERT_TRUE(text) << text.error().to_string();
    ASSERT_TRUE(write_file_atomic(storage_ / id / "sealed-key.json", as_bytes(*text), 0600));
  }

  Result<std::unique_ptr<Enclave>> launch(const std::string& id, const fs::path& image,
                                          int stdout_fd = -1, const fs::path& agent_dir = {},
                                          const std::string& agent_mr_enclave = {}) {
    EnclaveSpec spec;
    spec.tee = "sim-sgx";
    spec.enclave_image = image;
    spec.sim_dir = Shared::get().sim;
    spec.run_dir = tmp_.path() / "run";
    spec.storage_dir = storage_;
    spec.agent_log_file = tmp_.path() / "boot.log";
    EnclaveSpec::AppRole role;
    role.args = {"--bundle", id, "--key-handover", "seal"};
    if (!agent_dir.empty()) {
      role.agent_dir = agent_dir;
      role.args = {"--bundle",           id,
                   "--key-handover",     "local",
                   "--agent-socket",     "/run/coffer-agent/agent.sock",
                   "--agent-mr-enclave", agent_mr_enclave};
    }
    out_fd_ = ::open((tmp_.path() / "out").c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    role.stdout_fd = stdout_fd >= 0 ? stdout_fd : out_fd_;
    role.stderr_fd = out_fd_;
    spec.app = role;
    return process::launch_process_enclave(spec);
  }

  // The launch fails with app_enclave_failed, the boot's reason naming `what`.
  void expect_launch_failure(const std::string& id, const fs::path& image, std::string_view what) {
    auto enclave = launch(id, image);
    ASSERT_FALSE(enclave);
    EXPECT_EQ(enclave.error().code, "app_enclave_failed");
    EXPECT_NE(enclave.error().message.find(what), std::string::npos) << enclave.error().message;
  }

  std::string output() { return read_text_file(tmp_.path() / "out", 1 << 20).value_or(""); }
  std::string boot_log() { return read_text_file(tmp_.path() / "boot.log", 1 << 20).value_or(""); }

  void TearDown() override {
    if (out_fd_ >= 0) ::close(out_fd_);
  }

  TempDir tmp_;
  fs::path storage_;
  BundleKey key_;
  int out_fd_ = -1;
};

// Local attestation through the launcher: the app enclave's boot calls HandOverKey on the agent
// directory bound at /run/coffer-agent. The agent here is the test (its quote service with the
// agent's identity on the same platform, answer_key_request); the real agent is the lead's
// end-to-end test.
TEST_F(AppEnclaveTest, KeyByLocalAttestationThroughTheBoundAgentDirectory) {
  make_bundle("b9", "cat /data.txt");
  auto pki = evidence::sim::load_sim_pki(Shared::get().sim);
  ASSERT_TRUE(pki);
  evidence::sim::QuoteServiceConfig cfg;
  cfg.socket_path = tmp_.path() / "agent-qs.sock";
  cfg.sgx = Shared::get().identity;
  cfg.sgx->mr_enclave.fill(0xa9);
  evidence::sim::QuoteService service(std::move(*pki), {}, cfg);
  ASSERT_TRUE(service.start());
  const evidence::sim::QuoteServiceClient qs(cfg.socket_path);
  const fs::path agent_dir = tmp_.path() / "agent";
  fs::create_directories(agent_dir);
  net::ttrpc::Server server;
  std::atomic<int> calls{0};
  const BundleKey key = key_;
  server.add_method(
      "coffer.agent.v1.Agent", "HandOverKey",
      [&](const net::ttrpc::CallContext&, std::string_view body) -> net::ttrpc::CallResult {
        ++calls;
        ::coffer::agent::v1::HandOverKeyRequest req;
        if (!req.ParseFromString(std::string(body))) {
          return net::ttrpc::status_error(net::ttrpc::Code::kInvalidArgument, "bad request");
        }
        auto answer = answer_key_request(qs, req.bundle_id(),
                                         {to_bytes(req.report()), to_bytes(req.public_key())}, key);
        if (!answer) {
          return net::ttrpc::status_error(net::ttrpc::Code::kPermissionDenied,
                                          answer.error().to_string());
        }
        ::coffer::agent::v1::HandOverKeyResponse resp;
        resp.set_report(to_string(answer->report));
        resp.set_public_key(to_string(answer->public_key));
        resp.set_ciphertext(to_string(answer->ciphertext));
        return resp.SerializeAsString();
      });
  ASSERT_TRUE(server.listen_unix(agent_dir / "agent.sock"));
  const std::string agent_mr = hex_encode(cfg.sgx->mr_enclave);

  auto enclave = launch("b9", Shared::get().image, -1, agent_dir, agent_mr);
  ASSERT_TRUE(enclave) << enclave.error().to_string() << "\n" << boot_log();
  auto status = (*enclave)->wait();
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, 0);
  EXPECT_EQ(output(), "SECRET-DATA-4711\n");
  EXPECT_EQ(calls.load(), 1);
  ASSERT_TRUE((*enclave)->stop(std::chrono::seconds(1)));
  enclave->reset();

  // The app enclave of another signer is refused by the agent.
  auto refused = launch("b9", Shared::get().other_image, -1, agent_dir, agent_mr);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, "app_enclave_failed");
  EXPECT_NE(refused.error().message.find("key_handover_failed"), std::string::npos)
      << refused.error().message;
  EXPECT_NE(refused.error().message.find("peer_refused"), std::string::npos)
      << refused.error().message;
  server.stop();
  service.stop();
}

// Scans every host file under `dir` for `needle`.
bool host_holds(const fs::path& dir, const std::string& needle) {
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    auto text = read_text_file(e.path(), 64 << 20);
    if (text && text->find(needle) != std::string::npos) return true;
  }
  return false;
}

TEST_F(AppEnclaveTest, WorkloadRunsFromTheEncryptedFilesystemWithItsOutputAndExitCode) {
  make_bundle("b1",
              "echo MARKER-$GREETING; pwd; cat /data.txt; echo written > /data.txt; "
              "echo new > /tmp-new; cat /data.txt /tmp-new; exit 7");
  seal("b1", key_);
  auto enclave = launch("b1", Shared::get().image);
  ASSERT_TRUE(enclave) << enclave.error().to_string() << "\n" << boot_log();
  EXPECT_TRUE((*enclave)->agent_socket().empty());
  auto status = (*enclave)->wait();
  ASSERT_TRUE(status) << status.error().to_string();
  EXPECT_EQ(*status, 7) << output() << boot_log();
  EXPECT_EQ(output(), "MARKER-hello-from-env\n/bin\nSECRET-DATA-4711\nwritten\nnew\n");
  ASSERT_TRUE((*enclave)->stop(std::chrono::seconds(1)));

  // The writes went to the enclave's tmpfs: the filesystem is as exported.
  auto reopened = efs::Filesystem::open(storage_ / "b1/efs", key_.key);
  ASSERT_TRUE(reopened) << reopened.error().to_string();
  EXPECT_EQ(to_string((*reopened)->read_all("/rootfs/data.txt").value()), "SECRET-DATA-4711\n");
  EXPECT_EQ((*reopened)->stat("/rootfs/tmp-new").error().code, "efs_not_found");
  // The host storage holds no plaintext.
  EXPECT_FALSE(host_holds(storage_, "SECRET-DATA-4711"));
  EXPECT_FALSE(host_holds(storage_, "hello-from-env"));
}

// A workload user other than root reads the image through the FUSE mount (allow_other) and the
// overlay, and cannot write into the image's root-owned directories.
TEST_F(AppEnclaveTest, WorkloadRunsAsItsUser) {
  make_bundle("b8", "id -u; id -g; id -G; cat /data.txt; echo x > /data.txt || echo denied", false,
              1000);
  seal("b8", key_);
  auto enclave = launch("b8", Shared::get().image);
  ASSERT_TRUE(enclave) << enclave.error().to_string() << "\n" << boot_log();
  auto status = (*enclave)->wait();
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, 0) << output();
  EXPECT_NE(output().find("1000\n1000\n1000 1001\nSECRET-DATA-4711\n"), std::string::npos)
      << output();
  EXPECT_NE(output().find("denied"), std::string::npos) << output();
}

// The workload has a PID namespace of its own: it is PID 1 there and cannot see (so neither
// trace nor read the memory of) the boot step and the FUSE server, which hold the key.
TEST_F(AppEnclaveTest, WorkloadSeesOnlyItsOwnProcesses) {
  make_bundle("b9", "echo /proc/[0-9]*; echo $$");
  seal("b9", key_);
  auto enclave = launch("b9", Shared::get().image);
  ASSERT_TRUE(enclave) << enclave.error().to_string() << "\n" << boot_log();
  auto status = (*enclave)->wait();
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, 0) << output();
  EXPECT_EQ(output(), "/proc/1\n1\n");
}

TEST_F(AppEnclaveTest, StopForwardsSigtermToTheWorkload) {
  make_bundle("b2",
              "trap 'echo got-term; exit 3' TERM; echo ready; while :; do busybox sleep 1; done");
  seal("b2", key_);
  std::array<int, 2> pipe{-1, -1};
  ASSERT_EQ(::pipe2(pipe.data(), O_CLOEXEC), 0);
  auto enclave = launch("b2", Shared::get().image, pipe[1]);
  ::close(pipe[1]);
  ASSERT_TRUE(enclave) << enclave.error().to_string() << "\n" << boot_log();
  // The trap is set once "ready" comes.
  std::string got;
  char buf[64];
  while (got.find('\n') == std::string::npos) {
    const ssize_t n = ::read(pipe[0], buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  ASSERT_EQ(got, "ready\n");
  ASSERT_TRUE((*enclave)->stop(std::chrono::seconds(10)));
  auto status = (*enclave)->wait();
  ASSERT_TRUE(status);
  // sh runs the trap once the current sleep ends.
  EXPECT_EQ(*status, 3);
  while (true) {
    const ssize_t n = ::read(pipe[0], buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  ::close(pipe[0]);
  EXPECT_EQ(got, "ready\ngot-term\n");
}

TEST_F(AppEnclaveTest, AppEnclaveOfAnotherSignerCannotUnseal) {
  make_bundle("b3", "echo should-not-run");
  seal("b3", key_);
  expect_launch_failure("b3", Shared::get().other_image, "unseal_failed");
  EXPECT_EQ(output().find("should-not-run"), std::string::npos);
}

void flip_middle_byte(const fs::path& file) {
  const auto size = fs::file_size(file);
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(size / 2));
  char c = 0;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(size / 2));
  f.put(static_cast<char>(c ^ 1));
}

TEST_F(AppEnclaveTest, TamperedSuperblockIsRefusedAtOpen) {
  make_bundle("b4", "cat /data.txt");
  seal("b4", key_);
  flip_middle_byte(storage_ / "b4/efs/superblock");
  expect_launch_failure("b4", Shared::get().image, "efs_integrity");
  EXPECT_EQ(output().find("SECRET-DATA-4711"), std::string::npos) << output();
}

// /big.txt (one 40 KB block) is the second largest object after busybox's: one flipped byte in
// it and reading it inside the enclave gives EIO, not its plaintext.
TEST_F(AppEnclaveTest, TamperedFileContentGivesEioInsideNeverPlaintext) {
  make_bundle("b6", "cat /big.txt; echo cat=$?", true);
  seal("b6", key_);
  std::vector<std::pair<std::uintmax_t, fs::path>> objects;
  for (const auto& e : fs::directory_iterator(storage_ / "b6/efs/objects")) {
    objects.emplace_back(e.file_size(), e.path());
  }
  std::ranges::sort(objects, std::greater<>());
  ASSERT_GE(objects.size(), 2U);
  ASSERT_GT(objects[1].first, 40000U);
  ASSERT_LT(objects[1].first, 50000U);
  flip_middle_byte(objects[1].second);
  auto enclave = launch("b6", Shared::get().image);
  ASSERT_TRUE(enclave) << enclave.error().to_string();
  auto status = (*enclave)->wait();
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, 0);
  EXPECT_NE(output().find("Input/output error"), std::string::npos) << output();
  EXPECT_NE(output().find("cat=1"), std::string::npos) << output();
  EXPECT_EQ(output().find("TAMPER-ME"), std::string::npos) << output();
}

TEST_F(AppEnclaveTest, OlderCopyOfTheFilesystemIsARollback) {
  make_bundle("b5", "echo should-not-run");
  // The host keeps a copy, the filesystem moves on, the new generation is sealed ...
  fs::copy(storage_ / "b5/efs", tmp_.path() / "old-efs", fs::copy_options::recursive);
  {
    auto f = efs::Filesystem::open(storage_ / "b5/efs", key_.key).value();
    ASSERT_TRUE(f->write("/rootfs/data.txt", 0, as_bytes("UPDATED")));
    ASSERT_TRUE(f->commit(true));
    key_.generation = f->generation();
  }
  seal("b5", key_);
  // ... and the host puts the old copy back.
  fs::remove_all(storage_ / "b5/efs");
  fs::copy(tmp_.path() / "old-efs", storage_ / "b5/efs", fs::copy_options::recursive);
  expect_launch_failure("b5", Shared::get().image, "efs_rollback");
}

TEST_F(AppEnclaveTest, MissingBundleReportsTheBootsError) {
  expect_launch_failure("nope", Shared::get().image, "bad_sealed_key");
}

// An entry that exits without a status line (false): the launch fails with its exit status. The
// storage directory is created 0700.
TEST_F(AppEnclaveTest, EntryExitingWithoutStatusLineFailsWithItsStatus) {
  const fs::path image = tmp_.path() / "false-image";
  process::EnclaveImageOptions o;
  o.agent = "/usr/bin/false";
  o.crun.clear();
  auto built = process::build_enclave_image(o, image);
  ASSERT_TRUE(built) << built.error().to_string();
  ASSERT_TRUE(
      process::sign_enclave_image(image, *Shared::get().signer, {.isv_prod_id = 7, .isv_svn = 1}));
  storage_ = tmp_.path() / "fresh-storage";
  auto enclave = launch("b7", image);
  ASSERT_FALSE(enclave);
  EXPECT_EQ(enclave.error().code, "app_enclave_failed");
  EXPECT_NE(enclave.error().message.find("exited (status 1) without reporting its start"),
            std::string::npos)
      << enclave.error().message;
  struct stat st {};
  ASSERT_EQ(::stat(storage_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700U);
}

}  // namespace
}  // namespace coffer::runtime::appenclave
