#include "verifier/source_cache.h"

#include <cctype>

#include "core/file.h"

namespace coffer::verifier {
namespace {

// Idle HTTP clients kept per source (more concurrent fetches open more, then close them).
constexpr std::size_t kMaxIdleClients = 4;

}  // namespace

std::filesystem::path DiskCache::path_of(const std::string& key, std::string_view suffix) const {
  std::string name;
  name.reserve(key.size() + suffix.size());
  for (char c : key) name.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  name.append(suffix);
  return dir_ / name;
}

std::optional<DiskCache::Entry> DiskCache::read(const std::string& key,
                                                std::string_view suffix) const {
  if (dir_.empty()) return std::nullopt;
  std::filesystem::path file = path_of(key, suffix);
  std::error_code ec;
  auto written = std::filesystem::last_write_time(file, ec);
  if (ec) return std::nullopt;
  auto data = read_text_file(file, max_file_bytes_);
  if (!data) return std::nullopt;
  return Entry{std::move(*data), written};
}

void DiskCache::write(const std::string& key, std::string_view suffix,
                      std::string_view data) const {
  if (dir_.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  (void)write_file_atomic(path_of(key, suffix), as_bytes(data));
}

HttpFetcher::~HttpFetcher() = default;

Result<net::Response> HttpFetcher::get(const std::string& url) {
  std::unique_ptr<net::HttpClient> client;
  {
    std::lock_guard lock(mutex_);
    ++requests_;
    if (!idle_.empty()) {
      client = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (!client) client = std::make_unique<net::HttpClient>(options_);
  auto response = client->request({.method = "GET", .url = url});
  std::lock_guard lock(mutex_);
  if (idle_.size() < kMaxIdleClients) idle_.push_back(std::move(client));
  return response;
}

std::size_t HttpFetcher::requests_made() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

}  // namespace coffer::verifier
