#include "oci/test/layout_registry.h"

#include "core/file.h"
#include "oci/layout.h"
#include "oci/test/test_util.h"

namespace coffer::oci::testing {

LayoutRegistry::LayoutRegistry(std::filesystem::path layout, std::string first_tag,
                               std::string later_tag)
    : layout_(std::move(layout)),
      first_tag_(std::move(first_tag)),
      later_tag_(std::move(later_tag)) {
  server_ = std::make_unique<net::HttpServer>(net::HttpServerConfig{.sockets = {"127.0.0.1:0"}},
                                              [this](const net::Request& r) { return handle(r); });
  if (server_->start()) port_ = server_->bound_ports()[0];
}

std::string LayoutRegistry::host() const { return "127.0.0.1:" + std::to_string(port_); }

int LayoutRegistry::blob_fetches(const std::string& digest) const {
  std::lock_guard lock(mu_);
  auto it = blob_fetches_.find(digest);
  return it == blob_fetches_.end() ? 0 : it->second;
}

void LayoutRegistry::on_blob(std::function<void(const std::string& digest)> hook) {
  std::lock_guard lock(mu_);
  on_blob_ = std::move(hook);
}

net::Response LayoutRegistry::handle(const net::Request& r) {
  auto layout = OciLayout::open(layout_).value();
  const std::string path = r.path();
  const std::string manifests = "/v2/x/y/manifests/";
  const std::string blobs = "/v2/x/y/blobs/";
  if (path == "/v2/") return net::Response::json(200, Json::object());
  if (path.starts_with(manifests)) {
    std::string ref = path.substr(manifests.size());
    std::string digest = ref;
    if (!ref.starts_with("sha256:")) {
      std::string tag = ref;
      if (ref == "v1") tag = tag_fetches_++ == 0 ? first_tag_ : later_tag_;
      auto d = layout.resolve(tag);
      if (!d) return net::Response::json(404, Json{{"errors", Json::array()}});
      digest = d->digest;
    }
    auto data = read_file(layout.blob_path(digest));
    if (!data) return net::Response::json(404, Json{{"errors", Json::array()}});
    auto j = parse_json(to_string(*data)).value();
    auto resp = net::Response::bytes(200, to_string(*data), j.value("mediaType", ""));
    resp.headers.set("Docker-Content-Digest", digest);
    return resp;
  }
  if (path.starts_with(blobs)) {
    std::string digest = path.substr(blobs.size());
    std::function<void(const std::string&)> hook;
    {
      std::lock_guard lock(mu_);
      ++blob_fetches_[digest];
      hook = on_blob_;
    }
    if (hook) hook(digest);
    auto data = read_file(layout.blob_path(digest));
    if (!data) return net::Response::json(404, Json{{"errors", Json::array()}});
    return net::Response::bytes(200, to_string(*data));
  }
  return net::Response::text(404, "not found");
}

std::string write_tag_swap_images(const std::filesystem::path& dir) {
  auto good = write_image(dir, "good", {make_tar({{.name = "signed", .content = "1"}})});
  write_image(dir, "evil", {make_tar({{.name = "evil", .content = "unsigned"}})});
  return good;
}

}  // namespace coffer::oci::testing
