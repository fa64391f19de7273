// Boots real guest images under QEMU (TCG): few and short (each boot is ~3 s).
#include "runtime/vm/qemu_enclave.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/file.h"
#include "evidence/sim/sim_pki.h"
#include "runtime/agent_client.h"
#include "runtime/vm/guest_image.h"
#include "runtime/vm/test/vm_test_env.h"

namespace coffer::runtime::vm {
namespace {

namespace fs = std::filesystem;

using test::binary;
using test::kernel_package;

class QemuEnclaveTest : public test::VmTest {
 protected:
  fs::path build_image(const std::string& extra_cmdline = "", const std::string& tee = "sample") {
    GuestImageOptions o;
    o.kernel_package = kernel_package();
    o.init = binary("coffer-guest-init");
    o.agent = binary("coffer-agent");
    o.cmdline += " coffer.tee=" + tee + extra_cmdline;
    auto img = build_guest_image(o, dir_ / "image");
    EXPECT_TRUE(img) << img.error().to_string();
    return dir_ / "image";
  }

  EnclaveSpec spec(const fs::path& image) const {
    EnclaveSpec s;
    s.tee = "sample";
    s.enclave_image = image;
    s.run_dir = dir_ / "run";
    return s;
  }

  // The simulated TEE's PKI in dir_/sim.
  void write_pki() const {
    auto pki = evidence::sim::generate_sim_pki();
    ASSERT_TRUE(pki) << pki.error().to_string();
    ASSERT_TRUE(evidence::sim::write_sim_pki(*pki, dir_ / "sim"));
  }

  static bool process_gone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }
};

TEST_F(QemuEnclaveTest, BootsTheGuestAndTheAgentAnswersThroughThePort) {
  const auto image = build_image();
  std::vector<std::string> steps;
  const auto started = std::chrono::steady_clock::now();
  auto enclave =
      launch_vm_enclave(spec(image), {}, [&](const LaunchEvent& e) { steps.push_back(e.step); });
  ASSERT_TRUE(enclave) << enclave.error().to_string();
  const auto boot = std::chrono::steady_clock::now() - started;
  std::cout << "boot to agent ready (TCG): "
            << std::chrono::duration_cast<std::chrono::milliseconds>(boot).count() << " ms\n";
  EXPECT_EQ(steps, (std::vector<std::string>{"check_image", "measure", "start_vm", "agent_ready"}));
  EXPECT_EQ((*enclave)->agent_socket(), dir_ / "run/agent.sock");
  EXPECT_NE((*enclave)->measurements_json().find("tdx.mr_td"), std::string::npos);

  // a second connection through the port, as `coffer run` makes it
  auto client = AgentClient::connect((*enclave)->agent_socket());
  ASSERT_TRUE(client) << client.error().to_string();
  auto health = (*client)->health();
  ASSERT_TRUE(health) << health.error().to_string();
  EXPECT_EQ(*health, "SERVING");
  auto details = (*client)->guest_details();
  ASSERT_TRUE(details) << details.error().to_string();
  // a third connection while the second is open (coffer run polls the pull's progress on its
  // own connection): the launcher multiplexes both onto the port, each gets its own answers
  auto other = AgentClient::connect((*enclave)->agent_socket());
  ASSERT_TRUE(other) << other.error().to_string();
  (*other)->set_timeout(std::chrono::seconds(5));
  for (int i = 0; i < 3; ++i) {
    auto h = (*other)->health();
    ASSERT_TRUE(h) << h.error().to_string();
    EXPECT_EQ(*h, "SERVING");
    auto d = (*client)->guest_details();
    ASSERT_TRUE(d) << d.error().to_string();
    EXPECT_EQ(d->tee(), details->tee());
  }
  (*other)->close();
  (*client)->close();

  // teardown: no QEMU, socket, log or run directory left
  const pid_t pid = (*enclave)->pid();
  ASSERT_TRUE((*enclave)->stop(std::chrono::seconds(5)));
  EXPECT_TRUE(process_gone(pid));
  EXPECT_FALSE(fs::exists(dir_ / "run"));
  enclave->reset();
}

// stop() asks the guest on its control port: init stops the agent (SIGTERM) and powers off, and
// QEMU exits by itself (0); the console shows the guest's side of it.
TEST_F(QemuEnclaveTest, StopPowersTheGuestOffThroughTheControlPort) {
  const auto image = build_image();
  auto s = spec(image);
  s.agent_log_file = dir_ / "console.log";  // kept after teardown, for this test to read
  auto enclave = launch_vm_enclave(s);
  ASSERT_TRUE(enclave) << enclave.error().to_string();
  EXPECT_TRUE(fs::exists(dir_ / "run/control.sock"));
  ASSERT_TRUE((*enclave)->stop(std::chrono::seconds(20)));
  auto status = (*enclave)->wait();
  ASSERT_TRUE(status) << status.error().to_string();
  EXPECT_EQ(*status, 0);
  auto log = read_text_file(dir_ / "console.log", 1 << 20);
  ASSERT_TRUE(log) << log.error().to_string();
  EXPECT_NE(log->find("the host asked for power-off"), std::string::npos) << *log;
  EXPECT_NE(log->find("powering off (coffer-agent exited with 0)"), std::string::npos) << *log;
  EXPECT_FALSE(fs::exists(dir_ / "run"));
}

// sim-tdx: the launcher adds the port "coffer.quote" and answers it with the VM's QuoteService;
// the guest's init finds the port, serves it to the agent as a Unix socket, and the agent starts
// with the simulated TDX attester (it reports tee "tdx").
TEST_F(QemuEnclaveTest, SimulatedTdxGuestReachesItsQuoteServiceThroughThePort) {
  ASSERT_NO_FATAL_FAILURE(write_pki());
  auto s = spec(build_image(" coffer.log=debug", "sim-tdx"));
  s.tee = "sim-tdx";
  s.sim_dir = dir_ / "sim";
  s.agent_log_file = dir_ / "console.log";
  std::vector<std::string> steps;
  std::string ready;
  auto enclave = launch_vm_enclave(s, {}, [&](const LaunchEvent& e) {
    steps.push_back(e.step);
    if (e.step == "agent_ready") ready = e.detail;
  });
  ASSERT_TRUE(enclave) << enclave.error().to_string();
  EXPECT_NE(std::ranges::find(steps, std::string("quote_service")), steps.end());
  // init asked for init-data on the control port (there is none); without init-data the agent
  // sends nothing to the quote service at start (InitDataIsHandedInAndBoundThroughTheQuotePort
  // has the agent's round trip through the quote port)
  EXPECT_TRUE(ready.ends_with("quote service requests answered: 0")) << ready;
  auto client = AgentClient::connect((*enclave)->agent_socket());
  ASSERT_TRUE(client) << client.error().to_string();
  auto details = (*client)->guest_details();
  ASSERT_TRUE(details) << details.error().to_string();
  (*client)->close();
  const pid_t pid = (*enclave)->pid();
  ASSERT_TRUE((*enclave)->stop(std::chrono::seconds(2)));
  EXPECT_TRUE(process_gone(pid));
  EXPECT_FALSE(fs::exists(dir_ / "run"));
  const auto log = read_text_file(dir_ / "console.log", std::size_t{16} << 20);
  ASSERT_TRUE(log);
  EXPECT_NE(log->find("tee tdx"), std::string::npos) << *log;
}

// Init-data handed in through the control port; the agent refuses to start unless the TEE binds
// its digest, which it reads from the quote service ({"op":"measurements"}): a round trip
// guest agent -> init's proxy -> port -> launcher's QuoteService and back.
TEST_F(QemuEnclaveTest, InitDataIsHandedInThroughTheControlPortAndBound) {
  ASSERT_NO_FATAL_FAILURE(write_pki());
  auto s = spec(build_image("", "sim-tdx"));
  s.tee = "sim-tdx";
  s.sim_dir = dir_ / "sim";
  s.init_data = R"(version = "0.1.0"
algorithm = "sha384"
[data]
"cdh.toml" = '''
[image]
insecure_registries = ["10.0.2.2:5000"]
'''
)";
  std::string ready;
  auto enclave = launch_vm_enclave(s, {}, [&](const LaunchEvent& e) {
    if (e.step == "agent_ready") ready = e.detail;
  });
  ASSERT_TRUE(enclave) << enclave.error().to_string();
  // the agent's measurements request (init's init_data request went to the control port)
  EXPECT_TRUE(ready.ends_with("quote service requests answered: 1")) << ready;
  auto client = AgentClient::connect((*enclave)->agent_socket());
  ASSERT_TRUE(client) << client.error().to_string();
  auto details = (*client)->guest_details();
  ASSERT_TRUE(details) << details.error().to_string();
  EXPECT_TRUE(details->config_from_init_data());
  EXPECT_EQ(details->tee(), "tdx");
  EXPECT_EQ(details->init_data_digest().size(), 96U);
  (*client)->close();
  ASSERT_TRUE((*enclave)->stop(std::chrono::seconds(2)));
}

// A host that hands the guest other init-data than the one the TEE binds (MRCONFIGID keeps the
// digest of EnclaveSpec::init_data): the agent checks the binding before it uses anything of
// the init-data and refuses to start; the guest powers off and the launch fails with the
// agent's reason in the console log.
TEST_F(QemuEnclaveTest, InitDataChangedByTheHostIsRefusedByTheAgent) {
  ASSERT_NO_FATAL_FAILURE(write_pki());
  auto s = spec(build_image("", "sim-tdx"));
  s.tee = "sim-tdx";
  s.sim_dir = dir_ / "sim";
  const std::string bound = R"(version = "0.1.0"
algorithm = "sha384"
[data]
"cdh.toml" = '''
[image]
insecure_registries = ["10.0.2.2:5000"]
'''
)";
  s.init_data = bound;
  VmOptions o;
  // the same document with the host's own registry trusted instead
  std::string changed = bound;
  changed.replace(changed.find("5000"), 4, "6000");
  o.delivered_init_data = changed;
  auto enclave = launch_vm_enclave(s, o);
  ASSERT_FALSE(enclave);
  EXPECT_EQ(enclave.error().code, "vm_exited") << enclave.error().to_string();
  EXPECT_NE(enclave.error().message.find("init_data_mismatch"), std::string::npos)
      << enclave.error().message;
  EXPECT_NE(enclave.error().message.find("MRCONFIGID"), std::string::npos)
      << enclave.error().message;
  EXPECT_FALSE(fs::exists(dir_ / "run/agent.sock"));
}

TEST_F(QemuEnclaveTest, SimulatedTeeNeedsItsPki) {
  const auto image = build_image("", "sim-snp");
  auto s = spec(image);
  s.tee = "sim-snp";
  auto enclave = launch_vm_enclave(s);
  ASSERT_FALSE(enclave);
  EXPECT_EQ(enclave.error().code, "usage");
  s.sim_dir = dir_ / "no-such-dir";
  enclave = launch_vm_enclave(s);
  ASSERT_FALSE(enclave);
  EXPECT_EQ(enclave.error().code, "not_found");
}

TEST_F(QemuEnclaveTest, GuestThatStopsEarlyFailsWithItsConsoleLog) {
  // no init: the kernel panics, panic=-1 reboots, -no-reboot makes QEMU exit
  const auto image = build_image(" rdinit=/no-such-init");
  auto enclave = launch_vm_enclave(spec(image));
  ASSERT_FALSE(enclave);
  EXPECT_EQ(enclave.error().code, "vm_exited");
  EXPECT_NE(enclave.error().message.find((dir_ / "run/console.log").string()), std::string::npos);
  EXPECT_NE(enclave.error().message.find("Kernel panic"), std::string::npos)
      << enclave.error().message;
  // the log stays for the reader; QEMU's socket does not
  EXPECT_TRUE(fs::exists(dir_ / "run/console.log"));
  EXPECT_FALSE(fs::exists(dir_ / "run/agent.sock"));
}

TEST_F(QemuEnclaveTest, AgentThatDoesNotAnswerInTimeIsKilled) {
  const auto image = build_image();
  VmOptions o;
  o.ready_timeout = std::chrono::milliseconds(300);  // far less than a boot
  auto enclave = launch_vm_enclave(spec(image), o);
  ASSERT_FALSE(enclave);
  EXPECT_EQ(enclave.error().code, "agent_not_ready");
  EXPECT_NE(enclave.error().message.find("console log " + (dir_ / "run/console.log").string()),
            std::string::npos)
      << enclave.error().message;
  EXPECT_FALSE(fs::exists(dir_ / "run/agent.sock"));
}

TEST_F(QemuEnclaveTest, RefusesImagesForAnotherTeeAndMissingFiles) {
  const auto image = build_image();
  auto s = spec(image);
  s.tee = "sim-tdx";
  auto enclave = launch_vm_enclave(s);
  ASSERT_FALSE(enclave);
  EXPECT_EQ(enclave.error().code, "bad_guest_image");
  fs::remove(image / "initrd");
  enclave = launch_vm_enclave(spec(image));
  ASSERT_FALSE(enclave);
  EXPECT_EQ(enclave.error().code, "bad_guest_image");
  EXPECT_FALSE(fs::exists(dir_ / "run"));
}

}  // namespace
}  // namespace coffer::runtime::vm
