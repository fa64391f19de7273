// Policies in the style of the field (Trustee attestation and resource policies), explanations,
// concurrent evaluation and hostile inputs.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "policy/policy.h"

namespace coffer::policy {
namespace {

std::string read_policy(const std::string& name) {
  std::ifstream in(std::filesystem::path(COFFER_SOURCE_DIR) / "src/policy/test/policies" / name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const Json kReferenceValues = Json::parse(R"({
  "launch_digest": ["abcde"], "svn": [1], "major_version": 0, "minimum_minor_version": 1,
  "rtmr_1": ["aa11"], "rtmr_2": ["bb22"], "mr_seam": ["5eam"], "tcb_svn": ["0a0b"],
  "mr_td": ["7d7d"], "xfam": ["e718060000000000"],
  "snp_launch_measurement": ["5e5e"], "snp_bootloader": [3], "snp_microcode": [209],
  "snp_snp_svn": [20], "snp_tee_svn": [0], "snp_smt_enabled": [true],
  "snp_guest_abi_major": [0],
  "mr_enclave": ["e0e0"], "mr_signer": ["5151"], "sgx_min_isv_svn": [2, 3]
})");

CompileOptions attestation_options() {
  CompileOptions opts;
  opts.builtins["query_reference_value"] = {
      1, [](std::span<const Json> args) -> Result<Json> {
        auto it = kReferenceValues.find(args[0].get<std::string>());
        return it == kReferenceValues.end() ? Json::array() : *it;
      }};
  return opts;
}

std::shared_ptr<const CompiledPolicy> compile_file(const std::string& name,
                                                   CompileOptions opts = {}) {
  auto p = compile({{name, read_policy(name)}}, std::move(opts));
  EXPECT_TRUE(p.has_value()) << p.error().to_string();
  return p ? *p : nullptr;
}

Json trust_claims(const CompiledPolicy& p, const Json& claims) {
  auto r = p.evaluate("data.policy.trust_claims", claims);
  EXPECT_TRUE(r.has_value()) << r.error().to_string();
  return r && r->value ? *r->value : Json();
}

const Json kTdxClaims = Json::parse(R"({"tdx": {"quote": {
  "header": {"tee_type": "81000000", "vendor_id": "939a7233f79c4ca9940a0db3957f0607"},
  "body": {"rtmr_1": "aa11", "rtmr_2": "bb22", "mr_seam": "5eam", "tcb_svn": "0a0b",
           "mr_td": "7d7d", "xfam": "e718060000000000", "td_attributes": "0000000000000000"}}}})");

TEST(AttestationPolicy, SampleClaims) {
  auto p = compile_file("attestation.rego", attestation_options());
  Json claims = Json::parse(
      R"({"sample": {"launch_digest": "abcde", "svn": 1, "platform_version": {"major": 0, "minor": 1}}})");
  Json tc = trust_claims(*p, claims);
  EXPECT_EQ(tc["executables"], 3);
  EXPECT_EQ(tc["hardware"], 2);
  EXPECT_EQ(tc["configuration"], 36);  // the sample TEE reports no configuration
  EXPECT_EQ(tc.size(), 8u);
}

TEST(AttestationPolicy, TdxClaims) {
  auto p = compile_file("attestation.rego", attestation_options());
  Json tc = trust_claims(*p, kTdxClaims);
  EXPECT_EQ(tc["executables"], 3);
  EXPECT_EQ(tc["hardware"], 2);
  EXPECT_EQ(tc["configuration"], 2);
}

TEST(AttestationPolicy, TdxDebugTdIsNotConfigurationAffirming) {
  auto p = compile_file("attestation.rego", attestation_options());
  Json claims = kTdxClaims;
  claims["tdx"]["quote"]["body"]["td_attributes"] = "0100000000000000";
  EXPECT_EQ(trust_claims(*p, claims)["configuration"], 36);
}

TEST(AttestationPolicy, TdxUnknownKernelMeasurement) {
  auto p = compile_file("attestation.rego", attestation_options());
  Json claims = kTdxClaims;
  claims["tdx"]["quote"]["body"]["rtmr_2"] = "ffff";
  Json tc = trust_claims(*p, claims);
  EXPECT_EQ(tc["executables"], 33);
  EXPECT_EQ(tc["hardware"], 2);
}

TEST(AttestationPolicy, SnpClaimsAndElse) {
  auto p = compile_file("attestation.rego", attestation_options());
  Json claims = Json::parse(R"({"snp": {"measurement": "5e5e", "reported_tcb_bootloader": 3,
    "reported_tcb_microcode": 209, "reported_tcb_snp": 20, "reported_tcb_tee": 0,
    "policy_debug_allowed": 0, "policy_migrate_ma": 0, "platform_smt_enabled": true,
    "policy_abi_major": 0}})");
  Json tc = trust_claims(*p, claims);
  EXPECT_EQ(tc["executables"], 3);
  EXPECT_EQ(tc["hardware"], 2);
  EXPECT_EQ(tc["configuration"], 2);
  claims["snp"]["platform_smt_enabled"] = false;  // unknown platform config: the else branch
  EXPECT_EQ(trust_claims(*p, claims)["configuration"], 3);
  claims["snp"]["policy_debug_allowed"] = 1;
  EXPECT_EQ(trust_claims(*p, claims)["configuration"], 36);
}

TEST(AttestationPolicy, SgxClaims) {
  auto p = compile_file("attestation.rego", attestation_options());
  Json claims = Json::parse(R"({"sgx": {"body": {"mr_enclave": "e0e0", "mr_signer": "5151",
    "isv_svn": 2, "attributes": {"debug": false}}, "tcb_status": ["UpToDate"]}})");
  Json tc = trust_claims(*p, claims);
  EXPECT_EQ(tc["executables"], 3);
  EXPECT_EQ(tc["hardware"], 2);
  EXPECT_EQ(tc["configuration"], 2);
  claims["sgx"]["tcb_status"] = Json::array({"UpToDate", "OutOfDate"});
  EXPECT_EQ(trust_claims(*p, claims)["hardware"], 97);
}

TEST(AttestationPolicy, EmptyClaimsGiveDefaults) {
  auto p = compile_file("attestation.rego", attestation_options());
  Json tc = trust_claims(*p, Json::object());
  EXPECT_EQ(tc["executables"], 33);
  EXPECT_EQ(tc["hardware"], 97);
  EXPECT_EQ(tc["configuration"], 36);
}

Json ear(const std::string& status) {
  return Json{{"submods",
               {{"cpu0",
                 {{"ear.status", status},
                  {"ear.trustworthiness-vector", {{"hardware", 2}}},
                  {"ear.veraison.annotated-evidence", {{"tdx", {{"x", 1}}}}}}}}}};
}

std::optional<Json> allow(const std::string& file, const Json& input,
                          const Json& data = Json::object()) {
  auto p = compile_file(file);
  auto r = p->evaluate("data.policy.allow", input, data);
  EXPECT_TRUE(r.has_value()) << r.error().to_string();
  return r->value;
}

TEST(ResourcePolicy, AllowAll) {
  EXPECT_EQ(allow("resource_allow_all.rego", ear("contraindicated")), Json(true));
}

TEST(ResourcePolicy, DenyAll) {
  EXPECT_EQ(allow("resource_deny_all.rego", ear("affirming")), Json(false));
}

TEST(ResourcePolicy, AllowWhenAffirming) {
  EXPECT_EQ(allow("resource_affirming.rego", ear("affirming")), Json(true));
  EXPECT_EQ(allow("resource_affirming.rego", ear("warning")), Json(false));
  Json two = ear("affirming");
  two["submods"]["gpu0"] = {{"ear.status", "affirming"}};
  EXPECT_EQ(allow("resource_affirming.rego", two), Json(true));
  two["submods"]["gpu0"]["ear.status"] = "contraindicated";
  EXPECT_EQ(allow("resource_affirming.rego", two), Json(false));
  EXPECT_EQ(allow("resource_affirming.rego", Json{{"submods", Json::object()}}), Json(false));
}

TEST(ResourcePolicy, PathBased) {
  auto path = [](const std::string& p) { return Json{{"resource-path", p}}; };
  EXPECT_EQ(allow("resource_path.rego", ear("affirming"), path("public/key/1")), Json(true));
  EXPECT_EQ(allow("resource_path.rego", ear("warning"), path("public/key/1")), Json(false));
  EXPECT_EQ(allow("resource_path.rego", ear("affirming"), path("tdx-only/key/1")), Json(true));
  EXPECT_EQ(allow("resource_path.rego", ear("affirming"), path("tdx-only/cert/1")), Json(false));
  EXPECT_EQ(allow("resource_path.rego", ear("affirming"), path("secret/key/1")), Json(false));
}

TEST(Explanation, ReportsFailingExpressionWithValues) {
  auto p = compile({{"kbs.rego",
                     "package policy\nimport rego.v1\n\ndefault allow := false\n\n"
                     "allow if {\n  input.tee == \"tdx\"\n  input.svn >= 3\n}\n"}});
  ASSERT_TRUE(p) << p.error().to_string();
  auto r =
      (*p)->evaluate("data.policy.allow", Json{{"tee", "tdx"}, {"svn", 2}}, Json::object(), true);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->value, Json(false));
  ASSERT_TRUE(r->explanation);
  ASSERT_EQ(r->explanation->entries.size(), 1u);
  const auto& e = r->explanation->entries[0];
  EXPECT_EQ(e.rule, "data.policy.allow");
  EXPECT_EQ(e.location, "kbs.rego:8:3");
  EXPECT_EQ(e.expression, "input.svn >= 3");
  ASSERT_EQ(e.values.size(), 1u);
  EXPECT_EQ(e.values[0].first, "input.svn");
  EXPECT_EQ(e.values[0].second, "2");
  EXPECT_NE(r->explanation->to_string().find("kbs.rego:8:3"), std::string::npos);
}

TEST(Explanation, UndefinedOperandAndNestedRule) {
  auto p =
      compile({{"p.rego",
                "package policy\nimport rego.v1\n"
                "allow if {\n  affirming\n}\n"
                "affirming if {\n  input.submods.cpu0[\"ear.status\"] == \"affirming\"\n}\n"}});
  ASSERT_TRUE(p) << p.error().to_string();
  auto r =
      (*p)->evaluate("data.policy.allow", Json{{"submods", Json::object()}}, Json::object(), true);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_FALSE(r->value);
  ASSERT_EQ(r->explanation->entries.size(), 2u);
  const auto& inner = r->explanation->entries[0];
  EXPECT_EQ(inner.rule, "data.policy.affirming");
  EXPECT_EQ(inner.location, "p.rego:7:3");
  ASSERT_EQ(inner.values.size(), 1u);
  EXPECT_EQ(inner.values[0].second, "undefined");
  EXPECT_EQ(r->explanation->entries[1].rule, "data.policy.allow");
  EXPECT_EQ(r->explanation->entries[1].expression, "affirming");
}

TEST(Explanation, DeepestFailureAcrossIterations) {
  auto p = compile({{"p.rego",
                     "package policy\nimport rego.v1\n"
                     "allow if {\n  some s in input.subs\n  s.kind == \"cpu\"\n  s.ok\n}\n"}});
  ASSERT_TRUE(p);
  Json in = Json::parse(R"({"subs": [{"kind": "gpu", "ok": true}, {"kind": "cpu", "ok": false}]})");
  auto r = (*p)->evaluate("data.policy.allow", in, Json::object(), true);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->explanation->entries.size(), 1u);
  EXPECT_EQ(r->explanation->entries[0].expression, "s.ok");
  EXPECT_EQ(r->explanation->entries[0].values[0].second, "false");
}

TEST(Explanation, NoneWithoutExplainFlag) {
  auto p = compile({{"p.rego", "package policy\nallow if false\n"}});
  ASSERT_TRUE(p);
  auto r = (*p)->evaluate("data.policy.allow", Json::object());
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->explanation);
}

TEST(Concurrency, ManyThreadsEvaluateOnePolicy) {
  auto p = compile_file("attestation.rego", attestation_options());
  ASSERT_TRUE(p);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        Json claims = kTdxClaims;
        bool good = (i + t) % 2 == 0;
        if (!good) claims["tdx"]["quote"]["body"]["mr_td"] = "not-hex";
        auto r = p->evaluate("data.policy.trust_claims", claims, Json::object(), i % 5 == 0);
        if (!r || !r->value || (*r->value)["hardware"] != (good ? 2 : 97)) ++mismatches;
        auto re = p->evaluate("regex.match(\"^[0-9a-f]+$\", input.tdx.quote.body.mr_td)", claims);
        if (!re || !re->value || *re->value != Json(good)) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(Limits, NativeStackBudget) {
  std::string src = "package p\nimport rego.v1\nx if {\n";
  for (int i = 0; i < 2000; ++i)
    src += "  v" + std::to_string(i) + " := " + std::to_string(i) + "\n";
  src += "}\n";
  CompileOptions opts;
  opts.limits.max_stack_bytes = 64 * 1024;
  auto p = compile({{"deep.rego", src}}, opts);
  ASSERT_TRUE(p) << p.error().to_string();
  auto r = (*p)->evaluate("data.p.x", Json::object());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "eval_limit_exceeded");
}

TEST(Limits, HostileInputDocumentIsBoundedBySteps) {
  auto p = compile({{"p.rego",
                     "package p\nimport rego.v1\n"
                     "x := count({[a, b] | some a in input; some b in input})\n"}},
                   CompileOptions{.limits = {.max_steps = 50'000}});
  ASSERT_TRUE(p);
  Json big = Json::array();
  for (int i = 0; i < 1000; ++i) big.push_back(i);
  auto r = (*p)->evaluate("data.p.x", big);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "eval_limit_exceeded");
}

// Few steps, much work: hashing a large input string once per element. Steps do not bound
// it; the bytes builtins process do.
TEST(Limits, BuiltinCostIsBounded) {
  auto p = compile({{"p.rego",
                     "package p\nimport rego.v1\n"
                     "x := count({crypto.sha256(concat(\"\", [input.s, format_int(i, 10)])) |\n"
                     "  some i in input.n})\n"}});
  ASSERT_TRUE(p) << p.error().to_string();
  Json n = Json::array();
  for (int i = 0; i < 200; ++i) n.push_back(i);
  // Per element: 300 KiB into concat, out of it, into sha256; x 200 is far over 64 MiB.
  Json input = {{"s", std::string(300 * 1024, 'a')}, {"n", n}};
  auto r = (*p)->evaluate("data.p.x", input);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "policy_cost_exceeded");
  EXPECT_NE(r.error().message.find("p.rego:3"), std::string::npos) << r.error().message;
  // The same policy over a small string is well within the budget.
  auto small = (*p)->evaluate("data.p.x", Json{{"s", "abc"}, {"n", n}});
  ASSERT_TRUE(small) << small.error().to_string();
  EXPECT_EQ(small->value, Json(200));
  // Host builtins are charged too.
  CompileOptions opts;
  opts.limits.max_builtin_bytes = 1000;
  opts.builtins["echo"] = {1, [](std::span<const Json> a) -> Result<Json> { return a[0]; }};
  auto h = compile({{"h.rego", "package h\nimport rego.v1\nx := echo(input.s)\n"}}, opts);
  ASSERT_TRUE(h);
  EXPECT_EQ((*h)->evaluate("data.h.x", Json{{"s", std::string(2000, 'b')}}).error().code,
            "policy_cost_exceeded");
}

// A per-evaluation deadline: a long evaluation ends with its own error, promptly.
TEST(Limits, EvaluationDeadline) {
  CompileOptions opts;
  opts.limits.max_steps = 50'000'000;
  opts.limits.deadline = std::chrono::milliseconds(50);
  auto p = compile({{"p.rego",
                     "package p\nimport rego.v1\n"
                     "x if {\n  some i in input\n  some j in input\n  some k in input\n"
                     "  i + j + k < 0\n}\n"}},
                   opts);
  ASSERT_TRUE(p) << p.error().to_string();
  Json n = Json::array();
  for (int i = 0; i < 1000; ++i) n.push_back(i);
  auto begin = std::chrono::steady_clock::now();
  auto r = (*p)->evaluate("data.p.x", n);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "policy_deadline_exceeded");
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(2));
}

TEST(Limits, DeeplyNestedInputIsReadable) {
  Json deep = Json::array();
  for (int i = 0; i < 200; ++i) deep = Json::array({deep});
  auto p = compile({{"p.rego", "package p\nimport rego.v1\nx if input == input\n"}});
  ASSERT_TRUE(p);
  auto r = (*p)->evaluate("data.p.x", deep);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->value, Json(true));
}

// A value nested n levels: [[[...]]].
Json nested_arrays(std::size_t n) {
  Json root = Json::array();
  Json* cur = &root;
  for (std::size_t i = 1; i < n; ++i) {
    cur->push_back(Json::array());
    cur = &cur->back();
  }
  return root;
}

// Input built by a host (init-data claims, a token's claims) is walked recursively when compared,
// sized and copied: a deep one is refused before evaluation instead of overflowing the stack.
TEST(Limits, TooDeepInputDataAndHostResultsAreRefused) {
  auto p = compile({{"p.rego", "package p\nimport rego.v1\nx := input\ny := data.d\n"}});
  ASSERT_TRUE(p);
  EXPECT_TRUE((*p)->evaluate("data.p.x", nested_arrays(256)));
  Json hostile = nested_arrays(200'000);
  for (const char* query : {"data.p.x", "input == [input]"}) {
    auto r = (*p)->evaluate(query, hostile);
    ASSERT_FALSE(r) << query;
    EXPECT_EQ(r.error().code, "eval_limit_exceeded") << query;
  }
  auto r = (*p)->evaluate("data.p.x", nested_arrays(257));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "eval_limit_exceeded");
  r = (*p)->evaluate("data.p.y", Json::object(), Json{{"d", nested_arrays(200'000)}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "eval_limit_exceeded");

  CompileOptions opts;
  opts.builtins["deep"] = {
      0, [](std::span<const Json>) -> Result<Json> { return nested_arrays(200'000); }};
  auto host = compile({{"h.rego", "package h\nimport rego.v1\nx := deep()\n"}}, std::move(opts));
  ASSERT_TRUE(host) << host.error().to_string();
  r = (*host)->evaluate("data.h.x", Json::object());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "eval_limit_exceeded");
}

TEST(Query, InputIsNotCopied) {
  // The same document is referenced in place: identity comparisons short-circuit.
  auto p = compile({{"p.rego", "package p\nimport rego.v1\nx := input.a\n"}});
  ASSERT_TRUE(p);
  Json in = {{"a", {{"b", 1}}}};
  auto r = (*p)->evaluate("data.p.x", in);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r->value, in["a"]);
}

int run_tool(const std::string& args) {
  std::string cmd =
      std::string(COFFER_BINARY_DIR) + "/apps/coffer policy eval " + args + " >/dev/null 2>&1";
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST(Cli, ExitCodes) {
  auto dir =
      std::filesystem::temp_directory_path() / ("coffer_policy_cli_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
    return (dir / name).string();
  };
  std::string good = write(
      "good.rego", "package policy\nimport rego.v1\ndefault allow := false\nallow if input.ok\n");
  std::string bad = write("bad.rego", "package policy\nallow if {\n");
  std::string input = write("in.json", R"({"ok": true})");
  EXPECT_EQ(run_tool("--policy " + good + " --input " + input + " data.policy.allow"), 0);
  EXPECT_EQ(run_tool("--policy " + good + " --explain data.policy.allow"), 0);
  EXPECT_EQ(run_tool("--policy " + good + " data.policy.nothing"), 0);
  EXPECT_EQ(run_tool("--policy " + bad + " data.policy.allow"), 2);
  EXPECT_EQ(run_tool("data.policy.allow"), 2);  // --policy missing
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace coffer::policy
