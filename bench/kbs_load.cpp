// kbs_load: N concurrent KBS clients, each looping auth -> attest (sample TEE) -> get-resource
// over one keep-alive connection, against a coffer-trustee process it starts itself.
//
//   kbs_load --trustee build/release/apps/coffer-trustee --clients 16 --seconds 60
//
// Prints full handshakes/s, p50/p99 per phase, errors, and the server's RSS at start and end.
//
// Floods alongside the load, to check that they do not lock the clients out:
//   --auth-flood N      N threads posting /auth as fast as they can, never attesting
//   --unknown-flood N   N threads requesting unique unknown endpoints (metric label growth)
//   --idle-flood N      N idle TCP connections from 127.0.0.2, opened again every 5 s
// Each client reuses one ephemeral P-256 key (as one KbsClient object does) and decrypts the
// first resource it receives to check the seal; later responses are checked for shape only, so
// that the load generator does not take the CPU the server is measured on.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/file.h"
#include "core/json.h"
#include "crypto/digest.h"
#include "crypto/pkey.h"
#include "jose/jcs.h"
#include "jose/jwe.h"
#include "jose/jwk.h"
#include "jose/jwt.h"
#include "net/http_client.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
using coffer::Json;

struct Samples {
  std::vector<double> auth, attest, resource, total;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto idx = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  return v[idx];
}

long rss_kib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

std::string admin_token(const coffer::crypto::Key& key) {
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  return *coffer::jose::jwt_sign(Json{{"iat", now}, {"exp", now + 600}}, key,
                                 coffer::jose::JwsAlg::kEdDSA);
}

bool admin_post(const std::string& url, const std::string& token, const std::string& body) {
  coffer::net::HttpClient c;
  coffer::net::ClientRequest req{.method = "POST", .url = url};
  req.body = body;
  req.headers.set("Authorization", "Bearer " + token);
  auto r = c.request(req);
  return r && r->status == 200;
}

// An idle TCP connection from 127.0.0.2 (another loopback source address) that sends nothing.
int idle_connection(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in src{};
  src.sin_family = AF_INET;
  src.sin_addr.s_addr = htonl(0x7f000002);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kbs_load: KBS handshake load generator"};
  std::string trustee_bin;
  int clients = 16;
  int seconds = 60;
  int workers = 2;
  int auth_flood = 0;
  int unknown_flood = 0;
  int idle_flood = 0;
  app.add_option("--trustee", trustee_bin, "coffer-trustee executable")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--clients", clients, "concurrent clients")->capture_default_str();
  app.add_option("--seconds", seconds, "duration of the run")->capture_default_str();
  app.add_option("--workers", workers, "server worker threads")->capture_default_str();
  app.add_option("--auth-flood", auth_flood, "threads flooding /auth")->capture_default_str();
  app.add_option("--unknown-flood", unknown_flood, "threads flooding unknown endpoints")
      ->capture_default_str();
  app.add_option("--idle-flood", idle_flood, "idle connections from 127.0.0.2")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  // A private trustee: temp dir, admin key, sample TEE, loopback port 0.
  char tmpl[] = "/tmp/kbs-load-XXXXXX";
  std::filesystem::path dir = ::mkdtemp(tmpl);
  auto admin = *coffer::crypto::Key::generate(coffer::crypto::KeyType::kEd25519);
  (void)coffer::write_file_atomic(dir / "admin.pub", coffer::as_bytes(admin.public_pem()));
  std::string config =
      "log_level = \"warn\"\n[http_server]\nsockets = [\"127.0.0.1:0\"]\ninsecure_http = true\n"
      "worker_threads = " +
      std::to_string(workers) +
      "\n[admin]\nauth_public_keys = [\"admin.pub\"]\n"
      "[attestation_service.verifier.sample]\nenabled = true\n";
  (void)coffer::write_file_atomic(dir / "trustee.toml", coffer::as_bytes(config));

  int out_pipe[2];
  if (pipe(out_pipe) != 0) return 1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, out_pipe[0]);
  std::string cfg_path = (dir / "trustee.toml").string();
  std::vector<char*> args = {trustee_bin.data(), const_cast<char*>("--config"), cfg_path.data(),
                             nullptr};
  pid_t pid = 0;
  if (posix_spawn(&pid, trustee_bin.c_str(), &actions, nullptr, args.data(), environ) != 0) {
    std::cerr << "cannot start " << trustee_bin << "\n";
    return 1;
  }
  close(out_pipe[1]);
  FILE* out = fdopen(out_pipe[0], "r");
  char line[512];
  std::string url;
  if (fgets(line, sizeof line, out) != nullptr) {
    std::string l(line);
    auto pos = l.find("http://");
    if (pos != std::string::npos) url = l.substr(pos, l.find_last_not_of("\r\n") + 1 - pos);
  }
  if (url.empty()) {
    std::cerr << "coffer-trustee did not report its URL\n";
    kill(pid, SIGTERM);
    return 1;
  }
  auto token = admin_token(admin);
  std::string payload = Json{{"sample.svn", Json::array({"1"})}}.dump();
  Json rv = {{"version", "0.1.0"},
             {"type", "sample"},
             {"payload", coffer::base64_encode(coffer::as_bytes(payload))}};
  // The default attestation policy never affirms sample evidence: the load runs under the
  // development policy (read from the source tree), as a development trustee would.
  auto dev_policy = coffer::read_text_file(std::string(COFFER_SOURCE_DIR) +
                                           "/src/trustee/policies/development_attestation.rego");
  if (!dev_policy) {
    std::cerr << "cannot read the development policy: " << dev_policy.error().to_string() << "\n";
    kill(pid, SIGTERM);
    return 1;
  }
  Json policy = {{"type", "rego"},
                 {"policy_id", "default_cpu"},
                 {"policy", coffer::base64url_encode(coffer::as_bytes(*dev_policy))}};
  if (!admin_post(url + "/kbs/v0/attestation-policy", token, policy.dump()) ||
      !admin_post(url + "/kbs/v0/reference-value", token, rv.dump()) ||
      !admin_post(url + "/kbs/v0/resource/default/key/load", token, "load-test-secret")) {
    std::cerr << "admin setup failed\n";
    kill(pid, SIGTERM);
    return 1;
  }
  long rss_start = rss_kib(pid);
  std::cout << "kbs_load: " << clients << " clients, " << seconds << " s, server " << url << " ("
            << workers << " workers), RSS at start " << rss_start << " KiB\n";

  std::atomic<bool> stop{false};
  std::atomic<long> handshakes{0}, errors{0};
  std::mutex mu;
  Samples all;
  std::vector<long> rss_trace;
  std::vector<std::thread> threads;
  auto deadline = Clock::now() + std::chrono::seconds(seconds);
  std::atomic<long> flood_auth{0}, flood_auth_refused{0}, flood_unknown{0};
  std::vector<std::thread> floods;
  for (int t = 0; t < auth_flood; ++t) {
    floods.emplace_back([&] {
      coffer::net::HttpClient http({.cookies = false});
      while (!stop.load(std::memory_order_relaxed) && Clock::now() < deadline) {
        coffer::net::ClientRequest a{.method = "POST", .url = url + "/kbs/v0/auth"};
        a.body = R"({"version":"0.4.0","tee":"sample","extra-params":{}})";
        auto r = http.request(a);
        ++(r && r->status == 200 ? flood_auth : flood_auth_refused);
      }
    });
  }
  for (int t = 0; t < unknown_flood; ++t) {
    floods.emplace_back([&, t] {
      coffer::net::HttpClient http;
      long i = 0;
      while (!stop.load(std::memory_order_relaxed) && Clock::now() < deadline) {
        std::string unique = std::to_string(t) + "-" + std::to_string(i++);
        coffer::net::ClientRequest g{.method = "GET",
                                     .url = url + (i % 2 ? "/kbs/v0/flood-" : "/flood-") + unique};
        (void)http.request(g);
        ++flood_unknown;
      }
    });
  }
  std::uint16_t port = static_cast<std::uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
  std::vector<int> idle_fds;
  auto reopen_idle = [&] {
    for (int fd : idle_fds) ::close(fd);
    idle_fds.clear();
    for (int i = 0; i < idle_flood; ++i) {
      int fd = idle_connection(port);
      if (fd >= 0) idle_fds.push_back(fd);
    }
  };
  reopen_idle();
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&] {
      Samples mine;
      coffer::net::HttpClient http;
      auto key = *coffer::crypto::Key::generate(coffer::crypto::KeyType::kEcP256);
      Json jwk = *coffer::jose::key_to_jwk(key.public_key());
      bool checked = false;
      auto ms = [](Clock::time_point a, Clock::time_point b) {
        return std::chrono::duration<double, std::milli>(b - a).count();
      };
      while (!stop.load(std::memory_order_relaxed) && Clock::now() < deadline) {
        auto t0 = Clock::now();
        coffer::net::ClientRequest a{.method = "POST", .url = url + "/kbs/v0/auth"};
        a.body = R"({"version":"0.4.0","tee":"sample","extra-params":{}})";
        auto ra = http.request(a);
        auto t1 = Clock::now();
        if (!ra || ra->status != 200) {
          ++errors;
          continue;
        }
        std::string nonce = (*coffer::parse_json(ra->body))["nonce"];
        Json binding = {{"tee-pubkey", jwk}, {"nonce", nonce}, {"additional-evidence", ""}};
        auto rd = coffer::crypto::sha384(coffer::as_bytes(*coffer::jose::jcs(binding)));
        Json body = {
            {"runtime-data", {{"nonce", nonce}, {"tee-pubkey", jwk}}},
            {"tee-evidence",
             {{"primary_evidence", {{"svn", "1"}, {"report_data", coffer::base64_encode(rd)}}},
              {"additional_evidence", ""}}}};
        coffer::net::ClientRequest at{.method = "POST", .url = url + "/kbs/v0/attest"};
        at.body = body.dump();
        auto rat = http.request(at);
        auto t2 = Clock::now();
        if (!rat || rat->status != 200) {
          ++errors;
          continue;
        }
        coffer::net::ClientRequest g{.method = "GET",
                                     .url = url + "/kbs/v0/resource/default/key/load"};
        auto rg = http.request(g);
        auto t3 = Clock::now();
        if (!rg || rg->status != 200) {
          ++errors;
          continue;
        }
        if (!checked) {
          auto plain = coffer::jose::jwe_decrypt(*coffer::parse_json(rg->body), key);
          if (!plain || coffer::to_string(*plain) != "load-test-secret") {
            ++errors;
            continue;
          }
          checked = true;
        } else if (rg->body.find("\"ciphertext\"") == std::string::npos) {
          ++errors;
          continue;
        }
        mine.auth.push_back(ms(t0, t1));
        mine.attest.push_back(ms(t1, t2));
        mine.resource.push_back(ms(t2, t3));
        mine.total.push_back(ms(t0, t3));
        ++handshakes;
      }
      std::lock_guard lock(mu);
      auto append = [](std::vector<double>& to, const std::vector<double>& from) {
        to.insert(to.end(), from.begin(), from.end());
      };
      append(all.auth, mine.auth);
      append(all.attest, mine.attest);
      append(all.resource, mine.resource);
      append(all.total, mine.total);
    });
  }
  auto started = Clock::now();
  int tick = 0;
  while (Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    rss_trace.push_back(rss_kib(pid));
    if (idle_flood > 0 && ++tick % 5 == 0) reopen_idle();
  }
  stop = true;
  for (auto& t : threads) t.join();
  for (auto& t : floods) t.join();
  for (int fd : idle_fds) ::close(fd);
  std::size_t metrics_bytes = 0;
  {
    coffer::net::HttpClient http;
    auto m = http.request({.url = url + "/metrics"});
    if (m) metrics_bytes = m->body.size();
  }
  double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  long rss_end = rss_kib(pid);
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  std::filesystem::remove_all(dir);

  std::printf("handshakes: %ld in %.1f s = %.0f full handshakes/s, errors: %ld\n",
              handshakes.load(), elapsed, static_cast<double>(handshakes.load()) / elapsed,
              errors.load());
  std::printf("%-10s %9s %9s %9s\n", "phase", "p50 ms", "p99 ms", "max ms");
  auto row = [](const char* name, const std::vector<double>& v) {
    std::printf("%-10s %9.2f %9.2f %9.2f\n", name, percentile(v, 0.5), percentile(v, 0.99),
                percentile(v, 1.0));
  };
  row("auth", all.auth);
  row("attest", all.attest);
  row("resource", all.resource);
  row("total", all.total);
  long rss_min = *std::min_element(rss_trace.begin(), rss_trace.end());
  long rss_max = *std::max_element(rss_trace.begin(), rss_trace.end());
  std::printf("server RSS: start %ld KiB, end %ld KiB, min/max during run %ld/%ld KiB\n", rss_start,
              rss_end, rss_min, rss_max);
  std::printf("RSS trace (KiB, every 10 s):");
  for (std::size_t i = 9; i < rss_trace.size(); i += 10) std::printf(" %ld", rss_trace[i]);
  std::printf("\n/metrics size at end: %zu bytes\n", metrics_bytes);
  if (auth_flood + unknown_flood + idle_flood > 0) {
    std::printf(
        "floods: /auth %ld answered 200 (%.0f/s), %ld refused or failed; unknown endpoints %ld "
        "(%.0f/s); %d idle connections from 127.0.0.2 reopened every 5 s\n",
        flood_auth.load(), static_cast<double>(flood_auth.load()) / elapsed,
        flood_auth_refused.load(), flood_unknown.load(),
        static_cast<double>(flood_unknown.load()) / elapsed, idle_flood);
  }
  return errors.load() == 0 ? 0 : 1;
}
