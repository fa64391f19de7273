// Image names with a transport, as skopeo spells them: "docker://REF" and "oci:DIR[:TAG]".
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "oci/image.h"
#include "oci/reference.h"
#include "oci/registry.h"

namespace coffer::oci {

enum class Transport { kDocker, kOci };

struct ImageName {
  Transport transport = Transport::kDocker;
  Reference reference;        // docker
  std::filesystem::path dir;  // oci
  std::string tag;            // oci (may be empty)
  [[nodiscard]] std::string str() const;
  // The reference policy.json scopes and signatures match on: the docker reference, or the
  // layout directory for oci.
  [[nodiscard]] std::string policy_scope() const;
};

// "docker://busybox", "oci:/tmp/layout:v1", "oci:/tmp/layout" ("bad_image_name").
Result<ImageName> parse_image_name(std::string_view text);

Result<std::unique_ptr<ImageSource>> open_source(const ImageName& name,
                                                 const RegistryOptions& options);
// A new layout directory is staged and appears only when the destination is committed
// (copy_image does it last; see open_layout_destination).
Result<std::unique_ptr<ImageDestination>> open_destination(const ImageName& name,
                                                           const RegistryOptions& options);

}  // namespace coffer::oci
