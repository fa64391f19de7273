// The agent policy: the built-in default, a custom policy from init-data, load and evaluation
// failures (fail closed), decision counters.
#include "agent/policy.h"

#include <gtest/gtest.h>

namespace coffer::agent {
namespace {

Json create_request(Json extra = Json::object()) {
  Json r = {{"container_id", "c1"}, {"sandbox_id", "s1"},      {"image", "registry/app:1"},
            {"env", Json::array()}, {"mounts", Json::array()}, {"terminal", false},
            {"open_stdin", false},  {"privileged", false}};
  for (auto& [k, v] : extra.items()) r[k] = v;
  return r;
}

TEST(AgentPolicy, DefaultAllowsCreateWithoutOverrides) {
  auto p = AgentPolicy::builtin();
  EXPECT_FALSE(p->from_init_data());
  EXPECT_TRUE(p->check("CreateContainer", create_request()));
  // terminal, stdin and a memory limit are not overrides of what the image runs
  EXPECT_TRUE(p->check("CreateContainer", create_request({{"terminal", true},
                                                          {"open_stdin", true},
                                                          {"memory_limit_bytes", "1048576"}})));
}

TEST(AgentPolicy, DefaultAllowsLifecycleReadsPullAndDetails) {
  auto p = AgentPolicy::builtin();
  for (const char* m :
       {"CreateSandbox", "RemoveSandbox", "StartContainer", "WaitProcess", "SignalProcess",
        "RemoveContainer", "ContainerState", "ListContainers", "ContainerStats", "WriteStdin",
        "CloseStdin", "ReadOutput", "ResizeTty", "PullImage", "GuestDetails", "Health"}) {
    EXPECT_TRUE(p->check(m, Json::object())) << m;
  }
}

TEST(AgentPolicy, DefaultDeniesExec) {
  auto p = AgentPolicy::builtin();
  auto s = p->check("ExecProcess", {{"container_id", "c1"}, {"args", {"/bin/sh"}}});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, "policy_denied");
  EXPECT_NE(s.error().message.find("data.agent_policy.ExecProcessRequest"), std::string::npos)
      << s.error().message;
}

TEST(AgentPolicy, DefaultDeniesEveryOverrideAndNamesTheFailingRule) {
  auto p = AgentPolicy::builtin();
  const std::pair<Json, std::string> cases[] = {
      {{{"entrypoint", {{"values", {"/bin/sh"}}}}}, "entrypoint_allowed"},
      {{{"entrypoint", {{"values", Json::array()}}}}, "entrypoint_allowed"},  // set, even empty
      {{{"command", {{"values", {"-c", "id"}}}}}, "command_allowed"},
      {{{"env", {"SECRET_MODE=debug"}}}, "env_allowed"},
      {{{"working_dir", "/tmp"}}, "working_dir_allowed"},
      {{{"user", "0:0"}}, "user_allowed"},
      {{{"mounts", {{{"destination", "/host"}, {"type", "bind"}, {"source", "/"}}}}},
       "mounts_allowed"},
      {{{"privileged", true}}, "privileged_allowed"},
  };
  for (const auto& [extra, rule] : cases) {
    auto s = p->check("CreateContainer", create_request(extra));
    ASSERT_FALSE(s) << extra.dump();
    EXPECT_EQ(s.error().code, "policy_denied");
    EXPECT_NE(s.error().message.find("data.agent_policy.CreateContainerRequest"),
              std::string::npos);
    EXPECT_NE(s.error().message.find("failed: " + rule), std::string::npos) << s.error().message;
    // the reason quotes the policy, never request values
    EXPECT_EQ(s.error().message.find("SECRET_MODE"), std::string::npos);
  }
}

TEST(AgentPolicy, UnknownMethodIsDenied) {
  auto p = AgentPolicy::builtin();
  auto s = p->check("Reboot", Json::object());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, "policy_denied");
  EXPECT_NE(s.error().message.find("is undefined"), std::string::npos) << s.error().message;
}

TEST(AgentPolicy, CustomPolicyAllowsExecAndListedOverrides) {
  const std::string rego = std::string(default_agent_policy()) +
                           "\nExecProcessRequest if input.request.args[0] == \"/bin/date\"\n";
  auto p = AgentPolicy::load(rego, true);
  ASSERT_TRUE(p) << p.error().to_string();
  EXPECT_TRUE((*p)->from_init_data());
  EXPECT_TRUE((*p)->check("ExecProcess", {{"args", {"/bin/date"}}}));
  EXPECT_EQ((*p)->check("ExecProcess", {{"args", {"/bin/sh"}}}).error().code, "policy_denied");

  // policy_data lists an entrypoint and an environment variable name
  std::string listed(default_agent_policy());
  listed.replace(listed.find("\"allowed_entrypoints\": []"), 25,
                 R"("allowed_entrypoints": [["/bin/app", "--serve"]])");
  listed.replace(listed.find("\"allowed_env_names\": []"), 23, R"("allowed_env_names": ["LOG"])");
  auto q = AgentPolicy::load(listed, true);
  ASSERT_TRUE(q) << q.error().to_string();
  EXPECT_TRUE((*q)->check("CreateContainer",
                          create_request({{"entrypoint", {{"values", {"/bin/app", "--serve"}}}},
                                          {"env", {"LOG=debug", "LOG=info"}}})));
  EXPECT_FALSE(
      (*q)->check("CreateContainer", create_request({{"entrypoint", {{"values", {"/bin/app"}}}}})));
  EXPECT_FALSE((*q)->check("CreateContainer", create_request({{"env", {"LOG=1", "PATH=/x"}}})));
}

TEST(AgentPolicy, SyntaxErrorIsRefusedAtLoad) {
  auto p = AgentPolicy::load("package agent_policy\nCreateContainerRequest if {\n", true);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, "bad_agent_policy");
  EXPECT_NE(p.error().message.find("rego_parse_error"), std::string::npos) << p.error().message;
}

TEST(AgentPolicy, EvaluationErrorDenies) {
  // two complete definitions with different values: an eval_conflict_error at evaluation
  auto p = AgentPolicy::load(
      "package agent_policy\nimport rego.v1\n"
      "HealthRequest := true if input.method == \"Health\"\n"
      "HealthRequest := false if input.method == \"Health\"\n"
      "StartContainerRequest if to_number(input.request.container_id) > 0\n",
      true);
  ASSERT_TRUE(p) << p.error().to_string();
  auto s = (*p)->check("Health", Json::object());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, "policy_denied");
  EXPECT_NE(s.error().message.find("could not evaluate"), std::string::npos) << s.error().message;
  // a builtin failing on a request value is an error, so a denial (strict builtins)
  auto t = (*p)->check("StartContainer", {{"container_id", "abc"}});
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, "policy_denied");
  EXPECT_NE(t.error().message.find("could not evaluate"), std::string::npos) << t.error().message;
}

TEST(AgentPolicy, NonBooleanTrueDenies) {
  auto p = AgentPolicy::load("package agent_policy\nHealthRequest := \"yes\"\n", true);
  ASSERT_TRUE(p);
  EXPECT_EQ((*p)->check("Health", Json::object()).error().code, "policy_denied");
}

TEST(AgentPolicy, DecisionsAreCountedPerMethod) {
  auto p = AgentPolicy::builtin();
  ASSERT_TRUE(p->check("Health", Json::object()));
  ASSERT_TRUE(p->check("Health", Json::object()));
  ASSERT_FALSE(p->check("ExecProcess", {{"args", {"/bin/sh"}}}));
  auto d = p->decisions();
  EXPECT_EQ(d["Health"].allowed, 2U);
  EXPECT_EQ(d["Health"].denied, 0U);
  EXPECT_EQ(d["ExecProcess"].allowed, 0U);
  EXPECT_EQ(d["ExecProcess"].denied, 1U);
}

}  // namespace
}  // namespace coffer::agent
