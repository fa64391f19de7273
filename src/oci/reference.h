// Image references with Docker's normalisation:
//   busybox                 -> docker.io/library/busybox:latest
//   localhost:5000/a/b@sha256:... keeps the registry with its port and the digest.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace coffer::oci {

struct Reference {
  std::string registry;    // "docker.io", "localhost:5000", "[::1]:5000"
  std::string repository;  // "library/busybox"
  std::string tag;         // empty when only a digest was given
  std::string digest;      // "sha256:..." or empty

  // "registry/repository[:tag][@digest]".
  [[nodiscard]] std::string str() const;
  // "registry/repository".
  [[nodiscard]] std::string name() const { return registry + "/" + repository; }
  // What the registry API addresses: the digest if any, else the tag.
  [[nodiscard]] std::string tag_or_digest() const { return digest.empty() ? tag : digest; }
  // The host to talk to for the API: docker.io -> registry-1.docker.io.
  [[nodiscard]] std::string api_host() const;
  bool operator==(const Reference&) const = default;
};

// Parses and normalises ("bad_reference" with the rule broken). A reference without tag or
// digest gets the tag "latest".
Result<Reference> parse_reference(std::string_view text);

// Validates a tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127} ("bad_reference").
Status validate_tag(std::string_view tag);

}  // namespace coffer::oci
