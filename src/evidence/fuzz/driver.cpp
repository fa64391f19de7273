// A small stand-in for libFuzzer's main(), for toolchains without libFuzzer support for our C++23
// (clang 14 cannot compile libstdc++ 12's <expected>). It runs every corpus file through
// LLVMFuzzerTestOneInput, then random mutations of them (bit flips, byte overwrites with
// interesting values, truncation, insertion, deletion, duplication of chunks, splicing) until a
// time or run budget is spent. Built with -fsanitize=address,undefined, a crash or sanitizer
// report ends the process with a non-zero status; the same -seed reproduces the run.
//
//   fuzz_quote [-max_total_time=S] [-runs=N] [-seed=N] [-max_len=N] FILE_OR_DIR...
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

using Input = std::vector<std::uint8_t>;

// Like libFuzzer, inputs longer than max_len are cut to max_len.
std::vector<Input> load_corpus(const std::vector<std::string>& paths, std::size_t max_len) {
  std::vector<Input> out;
  auto add = [&](const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    Input bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.size() > max_len) bytes.resize(max_len);
    out.push_back(std::move(bytes));
  };
  for (const auto& path : paths) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(path, ec)) {
        if (e.is_regular_file()) add(e.path());
      }
    } else if (std::filesystem::is_regular_file(path, ec)) {
      add(path);
    }
  }
  return out;
}

void run(const Input& in) { LLVMFuzzerTestOneInput(in.data(), in.size()); }

Input mutate(const std::vector<Input>& corpus, std::mt19937_64& rng) {
  Input in = corpus[rng() % corpus.size()];
  static constexpr std::uint8_t kInteresting[] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x7f,
                                                  0x80, 0xfe, 0xff, 0x10, 0x20, 0x40};
  int rounds = 1 + static_cast<int>(rng() % 4);
  for (int r = 0; r < rounds; ++r) {
    std::size_t pos = in.empty() ? 0 : rng() % in.size();
    switch (rng() % 8) {
      case 0:  // bit flip
        if (!in.empty()) in[pos] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
        break;
      case 1:  // interesting byte
        if (!in.empty()) in[pos] = kInteresting[rng() % sizeof(kInteresting)];
        break;
      case 2:  // 32-bit length-like value
        if (in.size() >= 4) {
          std::uint32_t v = static_cast<std::uint32_t>(rng() % 3 == 0 ? rng() : rng() % 4096);
          pos = rng() % (in.size() - 3);
          std::memcpy(&in[pos], &v, 4);
        }
        break;
      case 3:  // truncate
        in.resize(pos);
        break;
      case 4: {  // insert random bytes
        std::size_t n = 1 + rng() % 16;
        Input bytes(n);
        for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
        in.insert(in.begin() + static_cast<std::ptrdiff_t>(pos), bytes.begin(), bytes.end());
        break;
      }
      case 5: {  // delete a chunk
        std::size_t n = std::min<std::size_t>(in.size() - pos, 1 + rng() % 64);
        in.erase(in.begin() + static_cast<std::ptrdiff_t>(pos),
                 in.begin() + static_cast<std::ptrdiff_t>(pos + n));
        break;
      }
      case 6: {  // duplicate a chunk
        std::size_t n = std::min<std::size_t>(in.size() - pos, 1 + rng() % 64);
        Input chunk(in.begin() + static_cast<std::ptrdiff_t>(pos),
                    in.begin() + static_cast<std::ptrdiff_t>(pos + n));
        in.insert(in.begin() + static_cast<std::ptrdiff_t>(pos), chunk.begin(), chunk.end());
        break;
      }
      default: {  // splice with another corpus entry
        const Input& other = corpus[rng() % corpus.size()];
        if (!other.empty()) {
          std::size_t from = rng() % other.size();
          in.resize(pos);
          in.insert(in.end(), other.begin() + static_cast<std::ptrdiff_t>(from), other.end());
        }
        break;
      }
    }
  }
  return in;
}

}  // namespace

int main(int argc, char** argv) {
  double max_seconds = 10;
  long long max_runs = -1;
  std::uint64_t seed = 1;
  std::size_t max_len = 1u << 22;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("-max_total_time=", 0) == 0) {
      max_seconds = std::stod(a.substr(16));
    } else if (a.rfind("-runs=", 0) == 0) {
      max_runs = std::stoll(a.substr(6));
    } else if (a.rfind("-seed=", 0) == 0) {
      seed = std::stoull(a.substr(6));
    } else if (a.rfind("-max_len=", 0) == 0) {
      max_len = std::stoull(a.substr(9));
    } else if (!a.empty() && a[0] == '-') {
      std::cerr << "ignoring libFuzzer option " << a << "\n";
    } else {
      paths.push_back(a);
    }
  }
  auto corpus = load_corpus(paths, max_len);
  if (corpus.empty()) corpus.push_back({});
  for (const auto& in : corpus) run(in);
  std::mt19937_64 rng(seed);
  auto start = std::chrono::steady_clock::now();
  long long runs = 0;
  while (max_runs < 0 || runs < max_runs) {
    if ((runs & 63) == 0) {
      std::chrono::duration<double> spent = std::chrono::steady_clock::now() - start;
      if (spent.count() >= max_seconds) break;
    }
    Input in = mutate(corpus, rng);
    if (in.size() > max_len) in.resize(max_len);
    run(in);
    ++runs;
  }
  std::cout << "fuzz driver: " << corpus.size() << " corpus inputs, " << runs
            << " mutated runs, no crash\n";
  return 0;
}
