#include "oci/sign/cosign.h"

#include <algorithm>

#include "core/bytes.h"
#include "oci/digest.h"

namespace coffer::oci::sign {
namespace {

constexpr std::size_t kMaxPayload = 1 << 20;

// cosign's fixed config for signature manifests: one diff_id per signature layer.
Bytes signature_config(const std::vector<Descriptor>& layers) {
  nlohmann::ordered_json diff_ids = nlohmann::ordered_json::array();
  for (const auto& l : layers) diff_ids.push_back(l.digest);
  nlohmann::ordered_json c;
  c["architecture"] = "";
  c["created"] = "0001-01-01T00:00:00Z";
  c["history"] = {{{"created", "0001-01-01T00:00:00Z"}}};
  c["os"] = "";
  c["rootfs"] = {{"type", "layers"}, {"diff_ids", diff_ids}};
  c["config"] = nlohmann::ordered_json::object();
  return to_bytes(c.dump());
}

}  // namespace

Bytes make_payload(const std::string& docker_reference, const std::string& manifest_digest,
                   std::string_view type) {
  nlohmann::ordered_json j;
  j["critical"] = {{"identity", {{"docker-reference", docker_reference}}},
                   {"image", {{"docker-manifest-digest", manifest_digest}}},
                   {"type", type}};
  j["optional"] = nullptr;
  return to_bytes(j.dump());
}

Result<SignaturePayload> parse_payload(ByteView data, std::string_view expected_type) {
  auto bad = [](const std::string& why) { return make_error("bad_signature_payload", why); };
  // The strict parser: a repeated member name (a second "docker-manifest-digest" that another
  // parser would pick) is refused, not resolved.
  auto parsed = parse_json(to_string(data), JsonLimits{.max_bytes = kMaxPayload, .max_depth = 8});
  if (!parsed) return bad("signature payload: " + parsed.error().message);
  const Json& j = *parsed;
  // As containers/image reads it (ParanoidUnmarshalJSONObjectExactFields): the top level and
  // every object under "critical" have exactly these members, so that no field we do not
  // understand can be signed with a meaning we ignore.
  auto exact = [&](const Json& obj, std::initializer_list<std::string_view> fields,
                   const std::string& what) -> Status {
    if (!obj.is_object()) return bad(what + " is not a JSON object");
    for (auto f : fields) {
      if (!obj.contains(f)) return bad(what + " lacks '" + std::string(f) + "'");
    }
    for (const auto& [key, value] : obj.items()) {
      if (std::find(fields.begin(), fields.end(), key) == fields.end()) {
        return bad(what + " has an unknown member '" + printable_excerpt(key) + "'");
      }
    }
    return ok();
  };
  auto string_member = [&](const Json& obj, const char* key,
                           const std::string& what) -> Result<std::string> {
    const Json& v = obj[key];
    if (!v.is_string()) return bad(what + "." + key + " is not a string");
    return v.get<std::string>();
  };
  COFFER_TRY_STATUS(exact(j, {"critical", "optional"}, "signature payload"));
  const Json& c = j["critical"];
  COFFER_TRY_STATUS(exact(c, {"type", "image", "identity"}, "critical"));
  SignaturePayload p;
  p.type = COFFER_TRY(string_member(c, "type", "critical"));
  if (p.type != expected_type) {
    return bad("signature type '" + printable_excerpt(p.type) + "' is not '" +
               std::string(expected_type) + "'");
  }
  COFFER_TRY_STATUS(exact(c["image"], {"docker-manifest-digest"}, "critical.image"));
  COFFER_TRY_STATUS(exact(c["identity"], {"docker-reference"}, "critical.identity"));
  p.manifest_digest =
      COFFER_TRY(string_member(c["image"], "docker-manifest-digest", "critical.image"));
  p.docker_reference =
      COFFER_TRY(string_member(c["identity"], "docker-reference", "critical.identity"));
  if (auto st = validate_digest(p.manifest_digest); !st) return bad(st.error().message);
  // "optional" is null (cosign) or an object whose known members have their types; other
  // optional members are ignored, as containers/image does.
  const Json& opt = j["optional"];
  if (!opt.is_null()) {
    if (!opt.is_object()) return bad("optional is neither null nor an object");
    if (opt.contains("creator") && !opt["creator"].is_string()) {
      return bad("optional.creator is not a string");
    }
    if (opt.contains("timestamp") && !opt["timestamp"].is_number()) {
      return bad("optional.timestamp is not a number");
    }
  }
  return p;
}

std::string cosign_signature_tag(const std::string& manifest_digest) {
  auto colon = manifest_digest.find(':');
  return manifest_digest.substr(0, colon) + "-" + manifest_digest.substr(colon + 1) + ".sig";
}

Result<std::vector<CosignSignature>> fetch_cosign_signatures(ImageSource& source,
                                                             const std::string& manifest_digest) {
  std::vector<CosignSignature> out;
  auto raw = COFFER_TRY(source.manifest_by_tag(cosign_signature_tag(manifest_digest)));
  if (!raw) return out;
  auto m = COFFER_TRY(parse_manifest(raw->data));
  for (const auto& layer : m.layers) {
    if (layer.media_type != kSimpleSigningMediaType) continue;
    auto ann = layer.annotations.find(std::string(kCosignSignatureAnnotation));
    if (ann == layer.annotations.end()) continue;
    auto sig = base64_decode(ann->second);
    if (!sig) continue;  // unusable entry; others may still verify
    auto payload = COFFER_TRY(read_blob(source, layer, kMaxPayload));
    out.push_back(CosignSignature{std::move(payload), std::move(*sig)});
  }
  return out;
}

Status verify_cosign_signature(const CosignSignature& sig, const crypto::Key& public_key) {
  auto st = public_key.verify(sig.payload, sig.signature, crypto::SignatureParams{});
  if (!st) {
    return make_error("signature_invalid", "the signature was not made by the given key");
  }
  return ok();
}

Status sign_image(ImageSource& source, ImageDestination& destination,
                  const std::string& manifest_digest, const std::string& docker_reference,
                  const crypto::Key& private_key) {
  COFFER_TRY_STATUS(validate_digest(manifest_digest));
  Bytes payload = make_payload(docker_reference, manifest_digest);
  auto signature = COFFER_TRY(private_key.sign(payload, crypto::SignatureParams{}));
  std::string tag = cosign_signature_tag(manifest_digest);

  Manifest m;
  m.media_type = media_type::kOciManifest;
  if (auto existing = COFFER_TRY(source.manifest_by_tag(tag))) {
    auto old = COFFER_TRY(parse_manifest(existing->data));
    for (auto& l : old.layers) {
      if (l.media_type == kSimpleSigningMediaType) m.layers.push_back(std::move(l));
    }
  }
  Descriptor layer{.media_type = std::string(kSimpleSigningMediaType),
                   .digest = sha256_digest(payload),
                   .size = static_cast<std::int64_t>(payload.size())};
  layer.annotations[std::string(kCosignSignatureAnnotation)] = base64_encode(signature);
  m.layers.push_back(layer);
  MemoryReader payload_reader(payload);
  if (!COFFER_TRY(destination.has_blob(layer))) {
    COFFER_TRY_STATUS(destination.put_blob(layer, payload_reader));
  }
  Bytes config = signature_config(m.layers);
  m.config = Descriptor{.media_type = std::string(media_type::kOciConfig),
                        .digest = sha256_digest(config),
                        .size = static_cast<std::int64_t>(config.size())};
  MemoryReader config_reader(config);
  if (!COFFER_TRY(destination.has_blob(m.config))) {
    COFFER_TRY_STATUS(destination.put_blob(m.config, config_reader));
  }
  return destination.put_manifest(m.serialize(), media_type::kOciManifest, tag);
}

}  // namespace coffer::oci::sign
