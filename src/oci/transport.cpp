#include "oci/transport.h"

#include "oci/layout.h"

namespace coffer::oci {

std::string ImageName::str() const {
  if (transport == Transport::kDocker) return "docker://" + reference.str();
  return "oci:" + dir.string() + (tag.empty() ? "" : ":" + tag);
}

std::string ImageName::policy_scope() const {
  if (transport == Transport::kDocker) return reference.str();
  return std::filesystem::absolute(dir).lexically_normal().string();
}

Result<ImageName> parse_image_name(std::string_view text) {
  ImageName n;
  if (text.starts_with("docker://")) {
    n.transport = Transport::kDocker;
    n.reference = COFFER_TRY(parse_reference(text.substr(9)));
    return n;
  }
  if (text.starts_with("oci:")) {
    n.transport = Transport::kOci;
    auto rest = text.substr(4);
    auto colon = rest.find(':');
    n.dir = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) {
      n.tag = std::string(rest.substr(colon + 1));
      if (n.tag.empty())
        return make_error("bad_image_name", "empty tag in '" + std::string(text) + "'");
    }
    if (n.dir.empty())
      return make_error("bad_image_name", "no directory in '" + std::string(text) + "'");
    return n;
  }
  return make_error("bad_image_name", "'" + std::string(text) +
                                          "' has no transport; use docker://REF or oci:DIR[:TAG]");
}

Result<std::unique_ptr<ImageSource>> open_source(const ImageName& name,
                                                 const RegistryOptions& options) {
  if (name.transport == Transport::kDocker) return make_registry_source(name.reference, options);
  auto layout = COFFER_TRY(OciLayout::open(name.dir));
  return make_layout_source(std::move(layout), name.tag);
}

Result<std::unique_ptr<ImageDestination>> open_destination(const ImageName& name,
                                                           const RegistryOptions& options) {
  if (name.transport == Transport::kDocker) {
    if (!name.reference.digest.empty()) {
      return make_error("bad_image_name", "a destination must name a tag, not a digest");
    }
    return make_registry_destination(name.reference, options);
  }
  return open_layout_destination(name.dir, name.tag);
}

}  // namespace coffer::oci
