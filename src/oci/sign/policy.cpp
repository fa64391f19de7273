#include "oci/sign/policy.h"

#include "core/file.h"
#include "oci/sign/cosign.h"
#include "oci/sign/gpg.h"

namespace coffer::oci::sign {
namespace {

namespace fs = std::filesystem;

std::unexpected<Error> bad_policy(const std::string& why) { return make_error("bad_policy", why); }

struct ParsedRef {
  Reference ref;
  bool has_tag = false;
  bool has_digest = false;
};

std::optional<ParsedRef> parse_signed(const std::string& text) {
  auto r = parse_reference(text);
  if (!r) return std::nullopt;
  ParsedRef p{*r, false, !r->digest.empty()};
  // parse_reference adds ":latest" to bare names; a bare name is not a tagged identity.
  auto at = text.find('@');
  auto name_part = text.substr(0, at);
  auto slash = name_part.rfind('/');
  auto colon = name_part.rfind(':');
  p.has_tag = colon != std::string::npos && (slash == std::string::npos || colon > slash);
  if (!p.has_tag) p.ref.tag.clear();
  return p;
}

bool exact_equal(const Reference& a, const ParsedRef& b) {
  if (!b.has_tag && !b.has_digest) return false;
  return a.name() == b.ref.name() && a.tag == b.ref.tag && a.digest == b.ref.digest;
}

bool repo_digest_or_exact(const Reference& image, const ParsedRef& s) {
  if (!image.digest.empty() && image.tag.empty()) return image.name() == s.ref.name();
  return exact_equal(image, s);
}

// Does `name` start with `prefix` at a component boundary ("host/ns" matches "host/ns/x")?
bool prefix_matches(const std::string& name, const std::string& prefix) {
  if (!name.starts_with(prefix)) return false;
  return name.size() == prefix.size() || name[prefix.size()] == '/' || name[prefix.size()] == ':' ||
         name[prefix.size()] == '@';
}

Result<Bytes> load_key(const std::string& location, const PolicyContext& ctx) {
  if (location.starts_with("kbs:///")) {
    if (!ctx.key_resolver) {
      return make_error("bad_policy", "key " + location + " needs a KBS resolver");
    }
    return ctx.key_resolver(location);
  }
  return read_file(location, 1 << 20);
}

Result<std::vector<Bytes>> requirement_keys(const Json& req, const PolicyContext& ctx) {
  std::vector<Bytes> keys;
  int sources = 0;
  if (req.contains("keyPath")) {
    ++sources;
    if (!req["keyPath"].is_string()) return bad_policy("keyPath must be a string");
    keys.push_back(COFFER_TRY(load_key(req["keyPath"].get<std::string>(), ctx)));
  }
  if (req.contains("keyPaths")) {
    ++sources;
    if (!req["keyPaths"].is_array()) return bad_policy("keyPaths must be an array");
    for (const auto& p : req["keyPaths"]) {
      if (!p.is_string()) return bad_policy("keyPaths entries must be strings");
      keys.push_back(COFFER_TRY(load_key(p.get<std::string>(), ctx)));
    }
  }
  if (req.contains("keyData")) {
    ++sources;
    auto data = req["keyData"].is_string() ? base64_decode(req["keyData"].get<std::string>())
                                           : Result<Bytes>(make_error("bad", ""));
    if (!data) return bad_policy("keyData must be base64");
    keys.push_back(std::move(*data));
  }
  if (sources != 1) return bad_policy("exactly one of keyPath, keyPaths, keyData is required");
  return keys;
}

std::optional<Reference> image_reference(const ImageName& image) {
  if (image.transport == Transport::kDocker) return image.reference;
  return std::nullopt;
}

Status check_payload(const SignaturePayload& p, const Json& req, const ImageName& image,
                     const std::string& digest) {
  if (p.manifest_digest != digest) {
    return make_error("signature_invalid",
                      "signature is for manifest " + p.manifest_digest + ", not " + digest);
  }
  const Json identity = req.contains("signedIdentity") ? req["signedIdentity"] : Json();
  if (!COFFER_TRY(identity_matches(identity, image_reference(image), p.docker_reference))) {
    return make_error("identity_mismatch", "signature names '" + p.docker_reference +
                                               "', which does not match " + image.str());
  }
  return ok();
}

Status eval_sigstore(const Json& req, const ImageName& image, ImageSource& source,
                     const std::string& digest, const PolicyContext& ctx) {
  for (const char* unsupported : {"fulcio", "rekorPublicKeyPath", "rekorPublicKeyData"}) {
    if (req.contains(unsupported)) {
      return bad_policy(std::string("sigstoreSigned.") + unsupported + " is not supported");
    }
  }
  auto key_bytes = COFFER_TRY(requirement_keys(req, ctx));
  std::vector<crypto::Key> keys;
  for (const auto& kb : key_bytes) {
    auto k = crypto::Key::from_pem(to_string(kb));
    if (!k) return make_error("bad_key", "sigstoreSigned key: " + k.error().message);
    keys.push_back(std::move(*k));
  }
  auto sigs = COFFER_TRY(fetch_cosign_signatures(source, digest));
  std::string why = sigs.empty() ? "the image has no sigstore signature" : "";
  for (const auto& sig : sigs) {
    for (const auto& key : keys) {
      if (auto st = verify_cosign_signature(sig, key); !st) {
        why += (why.empty() ? "" : "; ") + st.error().message;
        continue;
      }
      auto payload = parse_payload(sig.payload, kCosignType);
      if (!payload) {
        why += "; " + payload.error().message;
        continue;
      }
      auto st = check_payload(*payload, req, image, digest);
      if (st) return ok();
      why += "; " + st.error().message;
    }
  }
  return make_error("no_valid_signature",
                    image.str() + ": no sigstore signature accepted (" + why + ")");
}

Status eval_signed_by(const Json& req, const ImageName& image, const std::string& digest,
                      const PolicyContext& ctx) {
  if (req.value("keyType", "") != "GPGKeys") {
    return bad_policy("signedBy keyType '" + req.value("keyType", "") + "' is not supported");
  }
  if (image.transport != Transport::kDocker) {
    return make_error("no_valid_signature", image.str() +
                                                ": GPG signatures are only looked up "
                                                "for docker:// images");
  }
  if (ctx.lookaside.empty()) {
    return make_error("no_valid_signature", "no lookaside directory configured for GPG signatures");
  }
  auto keys = COFFER_TRY(requirement_keys(req, ctx));
  auto sigs =
      COFFER_TRY(read_lookaside_signatures(ctx.lookaside, image.reference.repository, digest));
  std::string why = sigs.empty() ? "the image has no GPG signature in the lookaside" : "";
  for (const auto& sig : sigs) {
    auto v = verify_gpg_signature(sig, keys);
    if (!v) {
      why += (why.empty() ? "" : "; ") + v.error().message;
      continue;
    }
    auto payload = parse_payload(v->payload, kAtomicType);
    if (!payload) {
      why += "; " + payload.error().message;
      continue;
    }
    auto st = check_payload(*payload, req, image, digest);
    if (st) return ok();
    why += "; " + st.error().message;
  }
  return make_error("no_valid_signature",
                    image.str() + ": no GPG signature accepted (" + why + ")");
}

std::vector<std::string> docker_scopes(const Reference& r) {
  std::vector<std::string> s;
  if (!r.digest.empty()) s.push_back(r.name() + "@" + r.digest);
  if (!r.tag.empty()) s.push_back(r.name() + ":" + r.tag);
  std::string name = r.name();
  for (;;) {
    s.push_back(name);
    auto slash = name.rfind('/');
    if (slash == std::string::npos) break;
    name = name.substr(0, slash);
  }
  // Wildcards for the host: a.b.c -> *.b.c, *.c
  std::string host = r.registry;
  auto dot = host.find('.');
  while (dot != std::string::npos) {
    s.push_back("*" + host.substr(dot));
    dot = host.find('.', dot + 1);
  }
  return s;
}

std::vector<std::string> oci_scopes(const ImageName& image) {
  std::vector<std::string> s;
  std::string dir = image.policy_scope();
  if (!image.tag.empty()) s.push_back(dir + ":" + image.tag);
  fs::path p = dir;
  while (true) {
    s.push_back(p.string());
    if (p == p.root_path() || p.parent_path() == p) break;
    p = p.parent_path();
  }
  return s;
}

}  // namespace

Result<bool> identity_matches(const Json& identity, const std::optional<Reference>& image,
                              const std::string& signed_reference) {
  std::string type = "matchRepoDigestOrExact";
  if (!identity.is_null()) {
    if (!identity.is_object() || !identity.contains("type") || !identity["type"].is_string()) {
      return bad_policy("signedIdentity must be an object with a type");
    }
    type = identity["type"].get<std::string>();
  }
  auto s = parse_signed(signed_reference);
  if (!s) return false;
  if (type == "exactReference") {
    auto want = parse_signed(identity.value("dockerReference", ""));
    if (!want || (!want->has_tag && !want->has_digest)) {
      return bad_policy("exactReference needs a dockerReference with a tag or digest");
    }
    return exact_equal(want->ref, *s);
  }
  if (type == "exactRepository") {
    auto want = parse_reference(identity.value("dockerRepository", ""));
    if (!want) return bad_policy("exactRepository needs a valid dockerRepository");
    return want->name() == s->ref.name();
  }
  if (!image) return false;  // the other forms compare with the image's own docker reference
  if (type == "matchExact") return exact_equal(*image, *s);
  if (type == "matchRepoDigestOrExact") return repo_digest_or_exact(*image, *s);
  if (type == "matchRepository") return image->name() == s->ref.name();
  if (type == "remapIdentity") {
    std::string prefix = identity.value("prefix", "");
    std::string signed_prefix = identity.value("signedPrefix", "");
    if (prefix.empty() || signed_prefix.empty()) {
      return bad_policy("remapIdentity needs prefix and signedPrefix");
    }
    Reference effective = *image;
    std::string full = image->str();
    if (prefix_matches(full, prefix)) {
      auto remapped = parse_reference(signed_prefix + full.substr(prefix.size()));
      if (!remapped) return false;
      effective = *remapped;
      if (image->tag.empty()) effective.tag.clear();
    }
    return repo_digest_or_exact(effective, *s);
  }
  return bad_policy("unknown signedIdentity type '" + type + "'");
}

Result<Policy> Policy::parse(std::string_view json) {
  auto doc = parse_json(json, JsonLimits{.max_bytes = 4 << 20});
  if (!doc) return bad_policy("policy is not valid JSON: " + doc.error().message);
  if (!doc->is_object() || !doc->contains("default") || !(*doc)["default"].is_array() ||
      (*doc)["default"].empty()) {
    return bad_policy("policy needs a non-empty \"default\" requirement list");
  }
  if (doc->contains("transports") && !(*doc)["transports"].is_object()) {
    return bad_policy("\"transports\" must be an object");
  }
  return Policy(std::move(*doc));
}

Result<Policy> Policy::load(const fs::path& path) {
  auto text = read_text_file(path, 4 << 20);
  if (!text) return wrap_error(text.error(), "reading policy " + path.string());
  return parse(*text);
}

Result<Json> Policy::requirements_for(const ImageName& image) const {
  std::string transport = image.transport == Transport::kDocker ? "docker" : "oci";
  auto transports = doc_.find("transports");
  if (transports != doc_.end() && transports->contains(transport)) {
    const Json& scopes = (*transports)[transport];
    if (!scopes.is_object()) return bad_policy("transport " + transport + " is not an object");
    auto candidates =
        image.transport == Transport::kDocker ? docker_scopes(image.reference) : oci_scopes(image);
    candidates.emplace_back();
    for (const auto& c : candidates) {
      if (scopes.contains(c)) return scopes[c];
    }
  }
  return doc_["default"];
}

Status Policy::evaluate(const ImageName& image, ImageSource& source,
                        const std::string& manifest_digest, const PolicyContext& context) const {
  auto reqs = COFFER_TRY(requirements_for(image));
  if (!reqs.is_array() || reqs.empty()) return bad_policy("requirement list must be non-empty");
  for (const auto& req : reqs) {
    if (!req.is_object() || !req.contains("type") || !req["type"].is_string()) {
      return bad_policy("each requirement needs a type");
    }
    std::string type = req["type"].get<std::string>();
    if (type == "insecureAcceptAnything") continue;
    if (type == "reject") {
      return make_error("policy_rejected", "policy rejects " + image.str());
    }
    if (type == "sigstoreSigned") {
      COFFER_TRY_STATUS(eval_sigstore(req, image, source, manifest_digest, context));
    } else if (type == "signedBy") {
      COFFER_TRY_STATUS(eval_signed_by(req, image, manifest_digest, context));
    } else {
      return bad_policy("unknown requirement type '" + type + "'");
    }
  }
  return ok();
}

}  // namespace coffer::oci::sign
