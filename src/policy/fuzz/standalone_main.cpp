// Driver for toolchains without libFuzzer (g++; clang 14 cannot compile <expected> from
// libstdc++ 12): runs every corpus file, then random mutations of them for a fixed time.
// Usage: policy_parser_fuzz_standalone SECONDS CORPUS_DIR
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

int run(const std::string& s) {
  return LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

std::string mutate(std::string s, std::mt19937_64& rng) {
  static const char* kTokens[] = {"{",    "}",    "[",        "]",      "(",       ")",    "\"",
                                  "`",    " if ", " else ",   " some ", " every ", " in ", " not ",
                                  ":=",   "=",    "|",        ",",      "\n",      "#",    "input",
                                  "data", "_",    "contains", "1e9",    "-"};
  int edits = 1 + static_cast<int>(rng() % 8);
  for (int i = 0; i < edits; ++i) {
    std::size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
    switch (rng() % 4) {
      case 0:
        if (!s.empty() && pos < s.size()) s[pos] = static_cast<char>(rng() % 256);
        break;
      case 1:
        if (!s.empty() && pos < s.size()) s.erase(pos, 1 + rng() % 8);
        break;
      case 2:
        s.insert(pos, kTokens[rng() % (sizeof kTokens / sizeof kTokens[0])]);
        break;
      default:
        if (!s.empty()) {
          std::size_t from = rng() % s.size();
          s.insert(pos, s.substr(from, 1 + rng() % 32));
        }
        break;
    }
  }
  return s.substr(0, 8192);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: " << argv[0] << " SECONDS CORPUS_DIR\n";
    return 2;
  }
  double seconds = std::atof(argv[1]);
  std::vector<std::string> corpus;
  for (const auto& e : std::filesystem::directory_iterator(argv[2])) {
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    corpus.push_back(ss.str());
    run(corpus.back());
  }
  if (corpus.empty()) corpus.emplace_back("package p\n");
  std::mt19937_64 rng(0xC0FFE);
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::size_t runs = 0;
  while (std::chrono::steady_clock::now() < end) {
    run(mutate(corpus[rng() % corpus.size()], rng));
    ++runs;
  }
  std::cout << "ran " << runs << " mutated inputs\n";
  return 0;
}
