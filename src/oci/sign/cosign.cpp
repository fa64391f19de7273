#include "oci/sign/cosign.h"

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
  auto j = COFFER_TRY(parse_json(to_string(data), JsonLimits{.max_bytes = kMaxPayload}));
  if (!j.is_object() || !j.contains("critical") || !j["critical"].is_object()) {
    return bad("signature payload has no 'critical' object");
  }
  const Json& c = j["critical"];
  SignaturePayload p;
  p.type = c.value("type", "");
  if (p.type != expected_type) {
    return bad("signature type '" + p.type + "' is not '" + std::string(expected_type) + "'");
  }
  if (!c.contains("identity") || !c["identity"].is_object() || !c.contains("image") ||
      !c["image"].is_object()) {
    return bad("signature payload lacks identity or image");
  }
  p.docker_reference = c["identity"].value("docker-reference", "");
  p.manifest_digest = c["image"].value("docker-manifest-digest", "");
  if (p.manifest_digest.empty()) return bad("signature payload has no docker-manifest-digest");
  if (auto st = validate_digest(p.manifest_digest); !st) return bad(st.error().message);
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
