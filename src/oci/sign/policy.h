// containers-policy.json(5) evaluation: "default" and per-transport scopes (docker: exact
// reference, repository, namespaces, host, *.domain wildcards; oci: directory and its parents),
// requirements insecureAcceptAnything, reject, signedBy (GPGKeys: keyPath, keyPaths, keyData)
// and sigstoreSigned (keyPath, keyData), and every signedIdentity form (matchExact,
// matchRepoDigestOrExact, matchRepository, exactReference, exactRepository, remapIdentity).
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "core/json.h"
#include "oci/image.h"
#include "oci/transport.h"

namespace coffer::oci::sign {

struct PolicyContext {
  // Resolves key locations that are not plain files (kbs:///repo/type/tag) to their bytes.
  std::function<Result<Bytes>(const std::string& uri)> key_resolver;
  // Where GPG simple signatures are stored (containers/image lookaside layout).
  std::filesystem::path lookaside;
};

class Policy {
 public:
  // "bad_policy" with the offending part.
  static Result<Policy> parse(std::string_view json);
  static Result<Policy> load(const std::filesystem::path& path);

  // The requirements that apply to `image` (the most specific scope).
  [[nodiscard]] Result<Json> requirements_for(const ImageName& image) const;

  // Passes when every requirement holds for the image whose top-level manifest has
  // `manifest_digest`. Errors: "policy_rejected", "no_valid_signature" (with why each
  // signature failed), "bad_policy", plus key loading errors.
  Status evaluate(const ImageName& image, ImageSource& source, const std::string& manifest_digest,
                  const PolicyContext& context) const;
  // For an image resolved once (pin_image): what passes here is what the caller then copies or
  // unpacks from the same PinnedImage.
  Status evaluate(const ImageName& image, ImageSource& source, const PinnedImage& pinned,
                  const PolicyContext& context) const {
    return evaluate(image, source, pinned.digest(), context);
  }

 private:
  explicit Policy(Json doc) : doc_(std::move(doc)) {}
  Json doc_;
};

// signedIdentity matching, exposed for tests: does a signature claiming `signed_reference`
// fit `image` under `identity` (null: the default matchRepoDigestOrExact)?
Result<bool> identity_matches(const Json& identity, const std::optional<Reference>& image,
                              const std::string& signed_reference);

}  // namespace coffer::oci::sign
