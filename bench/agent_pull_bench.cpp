// One pull through the agent's image service (src/agent/image), for bench/agent_pull_bench.sh to
// time and measure (peak RSS) next to `coffer image unpack` of the same image:
//   agent_pull_bench IMAGE STORAGE_DIR --insecure HOST:PORT --kbs-key kbs:///repo/type/tag=FILE
//                    [--policy policy.json]   (default: insecureAcceptAnything)
// Prints the manifest digest and the wall time of the pull on stdout.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "agent/image/image_service.h"
#include "core/file.h"

namespace {

int usage() {
  std::cerr << "usage: agent_pull_bench IMAGE STORAGE_DIR [--insecure HOST:PORT] "
               "[--kbs-key kbs:///repo/type/tag=FILE] [--policy FILE]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using coffer::Bytes;
  using coffer::Result;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() < 2) return usage();
  coffer::agent::ImageServiceOptions options;
  options.storage_dir = args[1];
  options.security_policy_json = R"({"default":[{"type":"insecureAcceptAnything"}]})";
  std::string kid;
  Bytes key;
  for (std::size_t i = 2; i + 1 < args.size(); i += 2) {
    if (args[i] == "--insecure") {
      options.insecure_registries.push_back(args[i + 1]);
    } else if (args[i] == "--kbs-key") {
      auto eq = args[i + 1].find('=');
      if (eq == std::string::npos) return usage();
      kid = args[i + 1].substr(0, eq);
      auto k = coffer::read_file(args[i + 1].substr(eq + 1), 4096);
      if (!k) {
        std::cerr << k.error().to_string() << "\n";
        return 1;
      }
      key = *k;
    } else if (args[i] == "--policy") {
      auto p = coffer::read_text_file(args[i + 1], 1 << 20);
      if (!p) {
        std::cerr << p.error().to_string() << "\n";
        return 1;
      }
      options.security_policy_json = *p;
    } else {
      return usage();
    }
  }
  options.key_provider = [&](const std::string& asked) -> Result<Bytes> {
    if (asked != kid) return coffer::make_error("not_found", "no key for " + asked);
    return key;
  };
  coffer::agent::ImageService service(std::move(options));
  auto start = std::chrono::steady_clock::now();
  auto pulled = service.pull(args[0]);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!pulled) {
    std::cerr << "pull: " << pulled.error().to_string() << "\n";
    return 1;
  }
  std::printf("%s %.3f s\n", pulled->manifest_digest.c_str(), secs);
  return 0;
}
