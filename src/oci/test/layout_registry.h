// A registry on loopback that serves an OCI layout (repository "x/y") and can lie: the tag
// "v1" is answered from one layout tag on the first fetch and from another on every later
// fetch, as a hostile registry would to make a client check one manifest and use another.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "net/http_server.h"

namespace coffer::oci::testing {

class LayoutRegistry {
 public:
  // "v1" resolves to `first_tag` of `layout` once, then to `later_tag`.
  LayoutRegistry(std::filesystem::path layout, std::string first_tag, std::string later_tag);
  [[nodiscard]] bool ok() const { return port_ != 0; }
  [[nodiscard]] std::string host() const;  // "127.0.0.1:PORT"
  [[nodiscard]] std::string image() const { return "docker://" + host() + "/x/y:v1"; }
  [[nodiscard]] int tag_fetches() const { return tag_fetches_.load(); }
  // How often each blob was requested.
  [[nodiscard]] int blob_fetches(const std::string& digest) const;
  // Called (on a server thread) before each blob is served: tests hold a download here.
  void on_blob(std::function<void(const std::string& digest)> hook);

 private:
  net::Response handle(const net::Request& r);

  std::filesystem::path layout_;
  std::string first_tag_, later_tag_;
  std::atomic<int> tag_fetches_{0};
  mutable std::mutex mu_;
  std::map<std::string, int> blob_fetches_;
  std::function<void(const std::string&)> on_blob_;
  std::unique_ptr<net::HttpServer> server_;
  std::uint16_t port_ = 0;
};

// Writes the two images of a tag swap into the layout `dir`: "good" (one file "signed") and "evil"
// (one file "evil"), and returns good's manifest digest. Serve them with
// LayoutRegistry(dir, "good", "evil").
std::string write_tag_swap_images(const std::filesystem::path& dir);

}  // namespace coffer::oci::testing
