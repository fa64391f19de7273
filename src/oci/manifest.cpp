#include "oci/manifest.h"

#include "oci/digest.h"

namespace coffer::oci {
namespace {

std::unexpected<Error> bad_manifest(const std::string& why) {
  return make_error("bad_manifest", why);
}

Result<std::map<std::string, std::string>> parse_annotations(const Json& j) {
  std::map<std::string, std::string> out;
  auto it = j.find("annotations");
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_object()) return bad_manifest("annotations must be an object of strings");
  for (const auto& [k, v] : it->items()) {
    if (!v.is_string()) return bad_manifest("annotation '" + k + "' is not a string");
    out.emplace(k, v.get<std::string>());
  }
  return out;
}

Result<Json> parse_doc(ByteView data, std::size_t max) {
  if (data.size() > max) {
    return make_error("manifest_too_large", "document of " + std::to_string(data.size()) +
                                                " bytes exceeds the " + std::to_string(max) +
                                                "-byte limit");
  }
  auto j = COFFER_TRY(parse_json(to_string(data), JsonLimits{.max_bytes = max, .max_depth = 32}));
  if (!j.is_object()) return bad_manifest("document is not a JSON object");
  return j;
}

Result<Platform> platform_from_json(const Json& p) {
  if (!p.is_object()) return bad_manifest("platform is not an object");
  Platform out;
  out.os = p.value("os", "");
  out.architecture = p.value("architecture", "");
  out.variant = p.value("variant", "");
  out.os_version = p.value("os.version", "");
  return out;
}

bool platform_matches(const Platform& have, const Platform& want) {
  if (have.os != want.os || have.architecture != want.architecture) return false;
  if (want.variant.empty() || have.variant == want.variant) return true;
  // arm64 images rarely carry "v8"; an absent variant matches the default one.
  return have.variant.empty() && want.architecture == "arm64" && want.variant == "v8";
}

}  // namespace

std::string manifest_accept_header() {
  return std::string(media_type::kOciManifest) + ", " + std::string(media_type::kOciIndex) + ", " +
         std::string(media_type::kDockerManifest) + ", " +
         std::string(media_type::kDockerManifestList);
}

Result<LayerType> classify_layer(std::string_view mt) {
  LayerType t;
  if (mt.ends_with(media_type::kEncryptedSuffix)) {
    t.encrypted = true;
    mt.remove_suffix(media_type::kEncryptedSuffix.size());
  }
  if (mt == media_type::kOciLayer || mt == media_type::kOciLayerNonDistributable) {
    t.compression = Compression::kNone;
  } else if (mt == media_type::kOciLayerGzip ||
             mt == "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip") {
    t.compression = Compression::kGzip;
  } else if (mt == media_type::kOciLayerZstd ||
             mt == "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd") {
    t.compression = Compression::kZstd;
  } else if (mt == media_type::kDockerLayerGzip || mt == media_type::kDockerLayerForeign) {
    t.compression = Compression::kGzip;
    t.docker = true;
  } else if (mt == media_type::kDockerLayer) {
    t.docker = true;
  } else {
    return make_error("unsupported_media_type",
                      "'" + std::string(mt) + "' is not a layer media type coffer can unpack");
  }
  return t;
}

std::string layer_media_type(Compression c, bool encrypted) {
  std::string base(c == Compression::kGzip   ? media_type::kOciLayerGzip
                   : c == Compression::kZstd ? media_type::kOciLayerZstd
                                             : media_type::kOciLayer);
  if (encrypted) base += media_type::kEncryptedSuffix;
  return base;
}

std::string Platform::str() const {
  std::string s = os + "/" + architecture;
  if (!variant.empty()) s += "/" + variant;
  return s;
}

Platform host_platform() {
#if defined(__x86_64__)
  return Platform{"linux", "amd64", "", ""};
#elif defined(__aarch64__)
  return Platform{"linux", "arm64", "v8", ""};
#elif defined(__s390x__)
  return Platform{"linux", "s390x", "", ""};
#elif defined(__powerpc64__)
  return Platform{"linux", "ppc64le", "", ""};
#else
  return Platform{"linux", "unknown", "", ""};
#endif
}

Result<Platform> parse_platform(std::string_view text) {
  Platform p;
  auto a = text.find('/');
  if (a == std::string_view::npos || a == 0) {
    return make_error("bad_platform", "platform '" + std::string(text) + "' is not os/arch");
  }
  p.os = std::string(text.substr(0, a));
  auto rest = text.substr(a + 1);
  auto b = rest.find('/');
  p.architecture = std::string(rest.substr(0, b));
  if (b != std::string_view::npos) p.variant = std::string(rest.substr(b + 1));
  if (p.architecture.empty()) {
    return make_error("bad_platform", "platform '" + std::string(text) + "' has no architecture");
  }
  return p;
}

Json Descriptor::to_json() const {
  Json j = Json::object();
  j["mediaType"] = media_type;
  j["digest"] = digest;
  j["size"] = size;
  if (!urls.empty()) j["urls"] = urls;
  if (!annotations.empty()) j["annotations"] = annotations;
  if (!artifact_type.empty()) j["artifactType"] = artifact_type;
  if (platform) {
    Json p{{"architecture", platform->architecture}, {"os", platform->os}};
    if (!platform->variant.empty()) p["variant"] = platform->variant;
    if (!platform->os_version.empty()) p["os.version"] = platform->os_version;
    j["platform"] = p;
  }
  return j;
}

Result<Descriptor> Descriptor::from_json(const Json& j) {
  if (!j.is_object()) return bad_manifest("descriptor is not an object");
  Descriptor d;
  auto mt = j.find("mediaType");
  if (mt != j.end() && !mt->is_string()) return bad_manifest("descriptor mediaType not a string");
  if (mt != j.end()) d.media_type = mt->get<std::string>();
  auto dg = j.find("digest");
  if (dg == j.end() || !dg->is_string()) return bad_manifest("descriptor without a digest");
  d.digest = dg->get<std::string>();
  if (auto st = validate_digest(d.digest); !st) return bad_manifest(st.error().message);
  auto sz = j.find("size");
  if (sz == j.end() || !sz->is_number_integer() || sz->get<std::int64_t>() < 0) {
    return bad_manifest("descriptor " + d.digest + " has no valid size");
  }
  d.size = sz->get<std::int64_t>();
  d.annotations = COFFER_TRY(parse_annotations(j));
  if (auto u = j.find("urls"); u != j.end() && u->is_array()) {
    for (const auto& e : *u) {
      if (e.is_string()) d.urls.push_back(e.get<std::string>());
    }
  }
  if (auto p = j.find("platform"); p != j.end()) d.platform = COFFER_TRY(platform_from_json(*p));
  if (auto a = j.find("artifactType"); a != j.end() && a->is_string()) {
    d.artifact_type = a->get<std::string>();
  }
  return d;
}

Json Manifest::to_json() const {
  Json j = Json::object();
  j["schemaVersion"] = 2;
  j["mediaType"] = media_type;
  if (!artifact_type.empty()) j["artifactType"] = artifact_type;
  j["config"] = config.to_json();
  Json ls = Json::array();
  for (const auto& l : layers) ls.push_back(l.to_json());
  j["layers"] = ls;
  if (subject) j["subject"] = subject->to_json();
  if (!annotations.empty()) j["annotations"] = annotations;
  return j;
}

Bytes Manifest::serialize() const { return to_bytes(to_json().dump()); }

Json Index::to_json() const {
  Json j = Json::object();
  j["schemaVersion"] = 2;
  j["mediaType"] = media_type;
  Json ms = Json::array();
  for (const auto& m : manifests) ms.push_back(m.to_json());
  j["manifests"] = ms;
  if (!annotations.empty()) j["annotations"] = annotations;
  return j;
}

Bytes Index::serialize() const { return to_bytes(to_json().dump()); }

Result<ManifestKind> manifest_kind(ByteView data, std::string_view content_type) {
  auto j = COFFER_TRY(parse_doc(data, kMaxManifestBytes));
  std::string mt = j.value("mediaType", "");
  if (mt.empty()) {
    auto semi = content_type.find(';');
    mt = std::string(content_type.substr(0, semi));
  }
  if (mt == media_type::kOciIndex || mt == media_type::kDockerManifestList) {
    return ManifestKind::kIndex;
  }
  if (mt == media_type::kOciManifest || mt == media_type::kDockerManifest) {
    return ManifestKind::kManifest;
  }
  if (j.value("schemaVersion", 0) == 1) {
    return make_error("unsupported_media_type",
                      "Docker schema 1 manifests are not supported; re-push the image");
  }
  // OCI documents may omit mediaType: decide by shape.
  if (j.contains("manifests")) return ManifestKind::kIndex;
  if (j.contains("config") && j.contains("layers")) return ManifestKind::kManifest;
  return make_error("unsupported_media_type", "unknown manifest type '" + mt + "'");
}

Result<Manifest> parse_manifest(ByteView data) {
  auto j = COFFER_TRY(parse_doc(data, kMaxManifestBytes));
  if (j.value("schemaVersion", 0) != 2) return bad_manifest("schemaVersion is not 2");
  Manifest m;
  m.media_type = j.value("mediaType", std::string(media_type::kOciManifest));
  if (m.media_type != media_type::kOciManifest && m.media_type != media_type::kDockerManifest) {
    return make_error("unsupported_media_type", "'" + m.media_type + "' is not an image manifest");
  }
  auto c = j.find("config");
  if (c == j.end()) return bad_manifest("manifest has no config");
  m.config = COFFER_TRY(Descriptor::from_json(*c));
  auto ls = j.find("layers");
  if (ls == j.end() || !ls->is_array()) return bad_manifest("manifest has no layers array");
  if (ls->size() > 1000) return bad_manifest("manifest has more than 1000 layers");
  for (const auto& l : *ls) m.layers.push_back(COFFER_TRY(Descriptor::from_json(l)));
  m.annotations = COFFER_TRY(parse_annotations(j));
  if (auto s = j.find("subject"); s != j.end()) m.subject = COFFER_TRY(Descriptor::from_json(*s));
  if (auto a = j.find("artifactType"); a != j.end() && a->is_string()) {
    m.artifact_type = a->get<std::string>();
  }
  return m;
}

Result<Index> parse_index(ByteView data) {
  auto j = COFFER_TRY(parse_doc(data, kMaxManifestBytes));
  if (j.value("schemaVersion", 0) != 2) return bad_manifest("schemaVersion is not 2");
  Index idx;
  idx.media_type = j.value("mediaType", std::string(media_type::kOciIndex));
  auto ms = j.find("manifests");
  if (ms == j.end() || !ms->is_array()) return bad_manifest("index has no manifests array");
  for (const auto& m : *ms) idx.manifests.push_back(COFFER_TRY(Descriptor::from_json(m)));
  idx.annotations = COFFER_TRY(parse_annotations(j));
  return idx;
}

Result<Descriptor> select_platform(const Index& index, const Platform& want) {
  std::string offered;
  for (const auto& d : index.manifests) {
    if (!d.platform) continue;
    if (platform_matches(*d.platform, want)) return d;
    offered += (offered.empty() ? "" : ", ") + d.platform->str();
  }
  return make_error("no_matching_platform",
                    "the image index has no manifest for " + want.str() + " (it offers: " +
                        (offered.empty() ? "none" : offered) + "); choose one with --platform");
}

Result<ImageConfig> parse_image_config(ByteView data) {
  if (data.size() > kMaxConfigBytes) {
    return make_error("config_too_large",
                      "image config exceeds " + std::to_string(kMaxConfigBytes) + " bytes");
  }
  ImageConfig c;
  c.json = COFFER_TRY(parse_json(to_string(data), JsonLimits{.max_bytes = kMaxConfigBytes}));
  if (!c.json.is_object()) return make_error("bad_config", "image config is not a JSON object");
  c.platform.os = c.json.value("os", "");
  c.platform.architecture = c.json.value("architecture", "");
  c.platform.variant = c.json.value("variant", "");
  auto rootfs = c.json.find("rootfs");
  if (rootfs != c.json.end() && rootfs->is_object()) {
    auto ids = rootfs->find("diff_ids");
    if (ids != rootfs->end() && ids->is_array()) {
      for (const auto& id : *ids) {
        if (!id.is_string()) return make_error("bad_config", "diff_id is not a string");
        auto s = id.get<std::string>();
        if (auto st = validate_digest(s); !st) return make_error("bad_config", st.error().message);
        c.diff_ids.push_back(std::move(s));
      }
    }
  }
  return c;
}

}  // namespace coffer::oci
