#include "cli/run_support.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "guest/config.h"

namespace coffer::cli {
namespace {

TEST(RunInitData, CarriesTrusteeCertPolicyAndRegistries) {
  InitDataOptions o;
  o.tee = "sim-tdx";
  o.trustee_url = "https://127.0.0.1:8080";
  o.kbs_cert_pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  o.image_policy_uri = "kbs:///default/security-policy/test";
  o.require_encrypted = true;
  o.insecure_registries = {"127.0.0.1:5000", "localhost:5001"};
  o.agent_policy_rego = "package agent_policy\ndefault HealthRequest := true\n";
  auto t = generate_init_data(o);
  ASSERT_TRUE(t) << t.error().to_string();
  auto g = guest::parse_guest_config(*t);
  ASSERT_TRUE(g) << g.error().to_string();
  EXPECT_EQ(g->kbs_url, "https://127.0.0.1:8080");
  EXPECT_EQ(g->kbs_cert_pem, o.kbs_cert_pem);
  EXPECT_EQ(g->image_security_policy_uri, o.image_policy_uri);
  EXPECT_TRUE(g->require_encrypted_layers);
  EXPECT_EQ(g->insecure_registries, o.insecure_registries);
  EXPECT_EQ(g->agent_policy_rego, o.agent_policy_rego);
  EXPECT_EQ(g->init_data_algorithm, crypto::DigestAlg::kSha384);
  EXPECT_NE(t->find("name = \"cc_kbc\""), std::string::npos);
}

TEST(RunInitData, SnpUsesSha256) {
  InitDataOptions o;
  o.tee = "sim-snp";
  o.trustee_url = "http://127.0.0.1:8080";
  auto t = generate_init_data(o);
  ASSERT_TRUE(t);
  auto g = guest::parse_guest_config(*t);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->init_data_algorithm, crypto::DigestAlg::kSha256);
  EXPECT_TRUE(g->agent_policy_rego.empty());
}

// sim-sgx binds init-data in CONFIGID (64 bytes): SHA-384, as for sim-tdx.
TEST(RunInitData, SgxUsesSha384) {
  InitDataOptions o;
  o.tee = "sim-sgx";
  o.trustee_url = "http://127.0.0.1:8080";
  auto t = generate_init_data(o);
  ASSERT_TRUE(t) << t.error().to_string();
  auto g = guest::parse_guest_config(*t);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->init_data_algorithm, crypto::DigestAlg::kSha384);
}

TEST(RunInitData, RefusesValuesThatWouldBreakOutOfTheToml) {
  InitDataOptions o;
  o.trustee_url = "http://k";
  o.agent_policy_rego = "package agent_policy\n'''\n\"aa.toml\" = 'x'\n";
  EXPECT_EQ(generate_init_data(o).error().code, "bad_init_data");
  o.agent_policy_rego.clear();
  o.kbs_cert_pem = "x\"\"\"\nurl = \"http://evil\"";
  EXPECT_EQ(generate_init_data(o).error().code, "bad_init_data");
  o.kbs_cert_pem.clear();
  o.insecure_registries = {"a\", \"b"};
  EXPECT_EQ(generate_init_data(o).error().code, "bad_init_data");
  o.insecure_registries.clear();
  o.image_policy_uri = "file:///etc/policy.json";  // the agent's own check: kbs:/// only
  EXPECT_EQ(generate_init_data(o).error().code, "bad_init_data");
  o.image_policy_uri.clear();
  o.tee = "sample";
  EXPECT_EQ(generate_init_data(o).error().code, "bad_init_data");
}

RunState sample(const std::string& id, const std::string& name, std::int64_t t) {
  RunState s;
  s.id = id;
  s.name = name;
  s.image = "docker://r/app:v1";
  s.supervisor_pid = 42;
  s.status = "running";
  s.created_unix = t;
  return s;
}

TEST(RunState, RoundTripsThroughItsFile) {
  const auto dir = std::filesystem::temp_directory_path() / "coffer-run-state-test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "0123456789ab");
  RunState s = sample("0123456789ab", "web", 7);
  s.status = "exited";
  s.exit_code = 143;
  s.supervisor_start = 123456789;
  ASSERT_TRUE(write_state(dir / "0123456789ab", s));
  auto back = read_state(dir / "0123456789ab");
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(back->name, "web");
  EXPECT_EQ(back->exit_code, 143);
  EXPECT_EQ(back->status, "exited");
  EXPECT_EQ(back->supervisor_start, 123456789U);
  // a directory whose name is not its state's id, and garbage, are skipped
  std::filesystem::create_directories(dir / "other");
  ASSERT_TRUE(write_state(dir / "other", s));
  std::filesystem::create_directories(dir / "bad");
  std::ofstream(dir / "bad" / "state.json") << "{\"id\":1}";
  auto all = list_states(dir);
  ASSERT_EQ(all.size(), 1U);
  EXPECT_EQ(all[0].id, "0123456789ab");
  std::filesystem::remove_all(dir);
}

TEST(RunState, RefusesMalformedState) {
  EXPECT_EQ(state_from_json("[]").error().code, "bad_state_file");
  EXPECT_EQ(state_from_json(R"({"id":"xyz","name":"a","image":"i","status":"running",
      "supervisor_pid":1,"created_unix":1})")
                .error()
                .code,
            "bad_state_file");
  EXPECT_EQ(state_from_json(R"({"id":"0123456789ab","name":"../x","image":"i",
      "status":"running","supervisor_pid":1,"created_unix":1})")
                .error()
                .code,
            "bad_state_file");
  EXPECT_EQ(state_from_json(R"({"id":"0123456789ab","id":"0123456789ac","name":"a","image":"i",
      "status":"running","supervisor_pid":1,"created_unix":1})")
                .error()
                .code,
            "bad_state_file");
}

TEST(RunResolve, NameIdAndUniquePrefix) {
  const std::vector<RunState> all = {sample("aaaa11112222", "web", 1),
                                     sample("aaaa33334444", "db", 2),
                                     sample("bbbb55556666", "aaaa", 3)};
  EXPECT_EQ(resolve_container(all, "web")->id, "aaaa11112222");
  EXPECT_EQ(resolve_container(all, "aaaa33334444")->name, "db");
  EXPECT_EQ(resolve_container(all, "bbbb5")->name, "aaaa");
  // an exact name wins over an id prefix
  EXPECT_EQ(resolve_container(all, "aaaa")->id, "bbbb55556666");
  EXPECT_EQ(resolve_container(all, "aaaa1")->id, "aaaa11112222");
  EXPECT_EQ(resolve_container(all, "aaa").error().code, "container_not_found");  // too short
  EXPECT_EQ(resolve_container(all, "zzzz").error().code, "container_not_found");
  const std::vector<RunState> two = {sample("cccc11112222", "x", 1),
                                     sample("cccc33334444", "y", 2)};
  EXPECT_EQ(resolve_container(two, "cccc").error().code, "ambiguous_reference");
}

TEST(RunStatus, DeadSupervisorIsNotRunning) {
  RunState s = sample("0123456789ab", "web", 1);
  EXPECT_EQ(display_status(s, true), "running");
  EXPECT_EQ(display_status(s, false), "dead");
  s.status = "exited";
  s.exit_code = 7;
  EXPECT_EQ(display_status(s, false), "exited (7)");
}

TEST(RunSupervisor, StartTimeFromProcStat) {
  // comm with spaces and parentheses; field 22 is the start time
  const std::string stat =
      "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
  EXPECT_EQ(proc_stat_start_time(stat), 987654U);
  EXPECT_FALSE(proc_stat_start_time("4242 (x) S 1 2"));
  EXPECT_FALSE(proc_stat_start_time("no paren"));
  EXPECT_FALSE(proc_stat_start_time("1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12a 1 1"));
}

TEST(RunSupervisor, AReusedPidIsNotTheSupervisor) {
  RunState s = sample("0123456789ab", "web", 1);
  s.supervisor_pid = ::getpid();
  s.supervisor_start = process_start_time(::getpid()).value_or(0);
  ASSERT_NE(s.supervisor_start, 0U);
  EXPECT_TRUE(supervisor_alive(s));
  s.supervisor_start += 1;  // same pid, another process
  EXPECT_FALSE(supervisor_alive(s));
  s.supervisor_pid = 0;
  EXPECT_FALSE(supervisor_alive(s));
}

TEST(RunExitCode, SignalsAre128Plus) {
  EXPECT_EQ(container_exit_code(7, 0), 7);
  EXPECT_EQ(container_exit_code(143, 15), 143);
  EXPECT_EQ(container_exit_code(0, 9), 137);
}

TEST(RunNames, Validation) {
  EXPECT_TRUE(valid_container_name("web-1.a_b"));
  EXPECT_FALSE(valid_container_name(""));
  EXPECT_FALSE(valid_container_name("-x"));
  EXPECT_FALSE(valid_container_name("a/b"));
  EXPECT_FALSE(valid_container_name(std::string(65, 'a')));
  EXPECT_EQ(default_run_dir("/run/user/1000"), "/run/user/1000/coffer");
  EXPECT_EQ(default_run_dir(nullptr), "/run/coffer");
  EXPECT_EQ(default_run_dir("relative"), "/run/coffer");
}

// --enclave vm: an address the guest would resolve to its own loopback, not the host's
TEST(RunAddress, NamesTheLoopback) {
  for (const char* a : {"https://127.0.0.1:8080", "http://localhost:1/x", "127.0.0.1:5000",
                        "docker://127.0.0.1:5000/enc:v1", "127.1.2.3", "localhost",
                        "https://[::1]:443/", "LOCALHOST:5000/a", "oci-archive://localhost/x"}) {
    EXPECT_TRUE(names_loopback(a)) << a;
  }
  for (const char* a : {"https://10.0.2.2:8080", "10.0.2.2:5000", "docker://10.0.2.2:5000/enc:v1",
                        "registry.example/localhost:1", "docker.io/library/busybox",
                        "https://localhost.example", "1270.0.0.1", ""}) {
    EXPECT_FALSE(names_loopback(a)) << a;
  }
}

}  // namespace
}  // namespace coffer::cli
