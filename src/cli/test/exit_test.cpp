// The exit-code table and the error helpers of cli/exit.h, and the same through the coffer
// executable against loopback fakes of a KBS and a registry: exit codes, hints, sanitised bytes,
// and multi-value options that leave the positionals alone.
#include "cli/exit.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/file.h"
#include "net/test/test_util.h"

extern char** environ;

namespace coffer::cli {
namespace {

namespace fs = std::filesystem;
using net::testing::TempDir;
using net::testing::TestServer;

const std::string kCoffer = std::string(COFFER_BINARY_DIR) + "/apps/coffer";

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

RunResult run(std::vector<std::string> args) {
  args.insert(args.begin(), kCoffer);
  int fds[2];
  if (::pipe(fds) != 0) return {};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  RunResult r;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) r.output.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  if (rc != 0) return r;
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// No control byte but newline, no byte outside ASCII.
bool plain_ascii(const std::string& s) {
  return std::ranges::all_of(s, [](char c) {
    const auto b = static_cast<unsigned char>(c);
    return b == '\n' || b == '\t' || (b >= 0x20 && b < 0x7F);
  });
}

TEST(ExitTable, OneCodePerMeaning) {
  EXPECT_EQ(exit_code_for("policy_deny"), ExitCode::kRefused);
  EXPECT_EQ(exit_code_for("no_valid_signature"), ExitCode::kRefused);
  EXPECT_EQ(exit_code_for("kbs_forbidden"), ExitCode::kRefused);
  EXPECT_EQ(exit_code_for("missing_decryption_key"), ExitCode::kRefused);
  EXPECT_EQ(exit_code_for("some_code_nobody_listed"), ExitCode::kRefused);
  EXPECT_EQ(exit_code_for("bad_argument"), ExitCode::kUsage);
  EXPECT_EQ(exit_code_for("bad_url"), ExitCode::kUsage);
  EXPECT_EQ(exit_code_for("bad_ca_file"), ExitCode::kUsage);
  EXPECT_EQ(exit_code_for("not_found"), ExitCode::kUsage);
  EXPECT_EQ(exit_code_for("rego_parse_error"), ExitCode::kUsage);
  EXPECT_EQ(exit_code_for("connect_failed"), ExitCode::kUnreachable);
  EXPECT_EQ(exit_code_for("timeout"), ExitCode::kUnreachable);
  EXPECT_EQ(exit_code_for("empty_reply"), ExitCode::kUnreachable);
  EXPECT_EQ(exit_code_for("tls_untrusted"), ExitCode::kUnreachable);
  EXPECT_EQ(exit_code_for("tls_wrong_version"), ExitCode::kUnreachable);
  EXPECT_EQ(exit_code_for("kbs_unreachable"), ExitCode::kUnreachable);
  EXPECT_EQ(exit_code_for("kbs_server_error"), ExitCode::kRemoteError);
  EXPECT_EQ(exit_code_for("registry_error"), ExitCode::kRemoteError);
  EXPECT_EQ(exit_code_for("already_exists"), ExitCode::kConflict);
  EXPECT_EQ(exit_code_for("kbs_not_found"), ExitCode::kNotFound);
  EXPECT_EQ(exit_code_for("manifest_unknown"), ExitCode::kNotFound);
  EXPECT_EQ(kbs_status_code(400), "kbs_bad_request");
  EXPECT_EQ(kbs_status_code(401), "kbs_unauthorized");
  EXPECT_EQ(kbs_status_code(403), "kbs_forbidden");
  EXPECT_EQ(kbs_status_code(404), "kbs_not_found");
  EXPECT_EQ(kbs_status_code(409), "kbs_conflict");
  EXPECT_EQ(kbs_status_code(502), "kbs_server_error");
  EXPECT_EQ(kbs_status_code(413), "kbs_too_large");
  EXPECT_EQ(exit_code_for("kbs_too_large"), ExitCode::kRefused);
  EXPECT_EQ(kbs_status_code(418), "kbs_unexpected_status");
}

TEST(ExitTable, UrlsAreNormalisedAndNeedAScheme) {
  EXPECT_EQ(normalize_url("--url", "http://h:1/").value(), "http://h:1");
  EXPECT_EQ(normalize_url("--url", "https://h/kbs//").value(), "https://h/kbs");
  EXPECT_EQ(normalize_url("--url", "https://h").value(), "https://h");
  for (const char* bad :
       {"h:8080", "ftp://h", "http://", "http:///x", "https://h x", "http://h\x1b"}) {
    auto u = normalize_url("--url", bad);
    ASSERT_FALSE(u) << bad;
    EXPECT_EQ(u.error().code, "bad_url");
    EXPECT_TRUE(contains(u.error().message, "--url")) << u.error().message;
    EXPECT_TRUE(plain_ascii(u.error().message)) << u.error().message;
  }
}

TEST(ExitTable, TerminalSafeTextAndPrintable) {
  EXPECT_TRUE(is_terminal_safe("key=value\n\tutf-8: \xc3\xa9"));
  EXPECT_FALSE(is_terminal_safe("\x1b]0;title\x07"));
  EXPECT_FALSE(is_terminal_safe(std::string("a\0b", 3)));
  EXPECT_FALSE(is_terminal_safe("\xff\xfe"));
  EXPECT_FALSE(
      is_terminal_safe("\xc2\x9b"
                       "31m"));  // C1 CSI
  EXPECT_EQ(printable("a\x1b[31mb\n"), "a\\x1b[31mb");
  // lines stay lines, indented: a received line cannot pass for "coffer ...: " or "hint: "
  EXPECT_EQ(printable("rule failed:\n\tx == 1\r\nhint: fake"),
            "rule failed:\n    \tx == 1\\x0d\n    hint: fake");
  EXPECT_EQ(printable("\xc3\xa9\\"), "\\xc3\\xa9\\x5c");
  EXPECT_EQ(printable(std::string(5000, 'x')).size(), 4096u + 3);
}

TEST(ExitTable, HintsNameTheOptionsOfThePeer) {
  auto kbs = hint_for({"tls_untrusted", ""}, Peer::kKbs);
  EXPECT_TRUE(contains(kbs, "KBS CA option (--kbs-ca-file FILE)")) << kbs;
  EXPECT_TRUE(contains(kbs, "--kbs-insecure")) << kbs;
  auto registry = hint_for({"tls_untrusted", ""}, Peer::kRegistry);
  EXPECT_TRUE(contains(registry, "--tls-verify=false")) << registry;
  EXPECT_TRUE(
      contains(hint_for({"tls_wrong_version", ""}, Peer::kRegistry), "--insecure-registry"));
  EXPECT_TRUE(contains(hint_for({"tls_wrong_version", ""}, Peer::kKbs), "http://"));
  EXPECT_TRUE(contains(hint_for({"empty_reply", ""}, Peer::kKbs), "https://"));
  EXPECT_EQ(hint_for({"empty_reply", ""}, Peer::kRegistry),
            "the registry closed the connection without answering: if it serves HTTPS on this "
            "port, do not name it in --insecure-registry");
  auto key = hint_for({"missing_decryption_key", ""}, Peer::kRegistry);
  EXPECT_TRUE(contains(key, "--decryption-key PRIVATE.pem")) << key;
  EXPECT_TRUE(contains(key, "--kbs-key-file")) << key;
  EXPECT_EQ(hint_for({"policy_deny", ""}, Peer::kKbs), "");
}

class CofferExe : public ::testing::Test {
 protected:
  void SetUp() override {
    auto kg = run({"kbs", "keygen", "--out", admin_key()});
    ASSERT_EQ(kg.exit_code, 0) << kg.output;
  }
  std::string admin_key() const { return (dir_.path / "admin.key").string(); }
  std::vector<std::string> kbs(const TestServer& s) const {
    return {"kbs", "--url", s.url(""), "--admin-key", admin_key()};
  }

  TempDir dir_;
};

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// A hostile KBS answers with terminal escape sequences and bytes that are not UTF-8: they reach
// the terminal escaped, and the status picks the exit code.
TEST_F(CofferExe, KbsAnswersArePrintedEscapedAndExitByStatus) {
  const std::string evil = "\x1b]0;owned\x07\x1b[2J\xff\xfe";
  int status = 500;
  TestServer s([&](const net::Request&) {
    net::Response r;
    r.status = status;
    r.body = evil;
    return r;
  });
  auto server_error = run(kbs(s) + std::vector<std::string>{"get-resource-policy"});
  EXPECT_EQ(server_error.exit_code, 4) << server_error.output;
  EXPECT_TRUE(contains(server_error.output, "kbs_server_error: KBS answered 500"))
      << server_error.output;
  EXPECT_TRUE(contains(server_error.output, "\\x1b]0;owned\\x07")) << server_error.output;
  EXPECT_TRUE(plain_ascii(server_error.output)) << server_error.output;

  status = 403;
  auto forbidden = run(kbs(s) + std::vector<std::string>{"get-resource-policy"});
  EXPECT_EQ(forbidden.exit_code, 1) << forbidden.output;
  EXPECT_TRUE(plain_ascii(forbidden.output)) << forbidden.output;

  status = 409;
  auto conflict = run(kbs(s) + std::vector<std::string>{"get-resource-policy"});
  EXPECT_EQ(conflict.exit_code, 5) << conflict.output;
}

// The attestation client prints the KBS's problem report (RFC 7807) escaped too.
TEST_F(CofferExe, KbsProblemDetailIsEscaped) {
  TestServer s([](const net::Request&) {
    net::Response r;
    r.status = 401;
    r.headers.set("Content-Type", "application/json");
    r.body = R"({"type":"https://github.com/confidential-containers/kbs/errors/PolicyDeny",)"
             R"("detail":"denied \u001b[31m\u009b1m"})";
    return r;
  });
  auto r = run({"kbs", "--url", s.url("/"), "attest", "--tee", "sample"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "denied \\x1b[31m")) << r.output;
  EXPECT_TRUE(plain_ascii(r.output)) << r.output;
}

// A registry fake: /v2/ answers, every manifest is unknown.
net::Response registry(const net::Request& req) {
  net::Response r;
  if (req.path() == "/v2/" || req.path() == "/v2") {
    r.status = 200;
    return r;
  }
  r.status = 404;
  r.headers.set("Content-Type", "application/json");
  r.body = R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})";
  return r;
}

TEST_F(CofferExe, PlainHttpRegistrySuggestsInsecureRegistry) {
  TestServer s(registry);
  std::string host = "127.0.0.1:" + std::to_string(s.port);
  auto r = run({"image", "inspect", "docker://" + host + "/x/y:v1", "--authfile",
                (dir_.path / "auth.json").string()});
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_TRUE(contains(r.output, "tls_wrong_version")) << r.output;
  EXPECT_TRUE(contains(r.output,
                       "hint: the registry does not speak TLS on this port: for a plain "
                       "HTTP registry pass --insecure-registry HOST[:PORT]"))
      << r.output;
}

TEST_F(CofferExe, SelfSignedRegistrySuggestsCaFile) {
  ASSERT_TRUE(net::testing::make_self_signed(dir_.path));
  net::HttpServerConfig config;
  config.tls = net::TlsServerConfig{dir_.path / "cert.pem", dir_.path / "key.pem"};
  TestServer s(registry, config);
  auto ref = "docker://127.0.0.1:" + std::to_string(s.port) + "/x/y:v1";
  auto auth = (dir_.path / "auth.json").string();
  auto r = run({"image", "inspect", ref, "--authfile", auth});
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_TRUE(contains(r.output, "tls_untrusted")) << r.output;
  EXPECT_TRUE(contains(r.output, "pass its CA certificate with --registry-ca-file FILE"))
      << r.output;
  // With the CA the registry is reached: its manifest is not there (6).
  auto with_ca = run({"image", "inspect", ref, "--authfile", auth, "--registry-ca-file",
                      (dir_.path / "cert.pem").string()});
  EXPECT_EQ(with_ca.exit_code, 6) << with_ca.output;
  EXPECT_TRUE(contains(with_ca.output, "manifest_unknown")) << with_ca.output;
  // Plain HTTP to it (--insecure-registry): it hangs up; the hint says why.
  auto plain = run({"image", "inspect", ref, "--authfile", auth, "--insecure-registry",
                    "127.0.0.1:" + std::to_string(s.port)});
  EXPECT_EQ(plain.exit_code, 3) << plain.output;
  EXPECT_TRUE(contains(plain.output, "empty_reply")) << plain.output;
  EXPECT_TRUE(contains(plain.output, "do not name it in --insecure-registry")) << plain.output;
  // A missing CA file is a usage error naming it.
  auto missing =
      run({"image", "inspect", ref, "--registry-ca-file", (dir_.path / "none.pem").string()});
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_TRUE(contains(missing.output, "--registry-ca-file: file '" +
                                           (dir_.path / "none.pem").string() + "' does not exist"))
      << missing.output;
}

// `--insecure-registry=H IMAGE` used to take IMAGE as a second registry ("image is required").
TEST_F(CofferExe, MultiValueOptionsLeaveThePositionals) {
  TestServer s(registry);
  std::string host = "127.0.0.1:" + std::to_string(s.port);
  auto auth = (dir_.path / "auth.json").string();
  for (const auto& form : std::vector<std::vector<std::string>>{{"--insecure-registry=" + host},
                                                                {"--insecure-registry", host}}) {
    auto r =
        run(std::vector<std::string>{"image", "inspect"} + form +
            std::vector<std::string>{"docker://" + host + "/x/y:v1", "--raw", "--authfile", auth});
    EXPECT_EQ(r.exit_code, 6) << form[0] << ": " << r.output;
    EXPECT_TRUE(contains(r.output, "manifest_unknown")) << r.output;
  }
  // Repeating the option still collects every value.
  auto two = run({"image", "unpack", "--insecure-registry=other:5000", "--insecure-registry", host,
                  "docker://" + host + "/x/y:v1", "--rootfs", (dir_.path / "root").string(),
                  "--authfile", auth});
  EXPECT_EQ(two.exit_code, 6) << two.output;
  EXPECT_TRUE(contains(two.output, "manifest_unknown")) << two.output;
}

TEST_F(CofferExe, KbsUrlOfImageEncryptNeedsAScheme) {
  auto r = run({"image", "encrypt", "oci:" + (dir_.path / "a").string() + ":v1",
                "oci:" + (dir_.path / "b").string() + ":v1", "--kbs-key", "kbs:///r/t/g",
                "--kbs-url", "127.0.0.1:8080", "--admin-key", admin_key()});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "'127.0.0.1:8080' needs a scheme")) << r.output;
  EXPECT_FALSE(fs::exists(dir_.path / "b"));
}

TEST_F(CofferExe, SimExitCodes) {
  fs::create_directories(dir_.path / "sim");
  ASSERT_TRUE(write_file_atomic(dir_.path / "sim/sim.json", as_bytes("{}")));
  auto exists = run({"sim", "init", "--dir", (dir_.path / "sim").string()});
  EXPECT_EQ(exists.exit_code, 5) << exists.output;
  EXPECT_TRUE(contains(exists.output, "already_exists")) << exists.output;
  auto usage = run({"sim", "measure"});
  EXPECT_EQ(usage.exit_code, 2) << usage.output;
  auto parse = run({"sim", "init"});
  EXPECT_EQ(parse.exit_code, 2) << parse.output;
}

}  // namespace
}  // namespace coffer::cli
