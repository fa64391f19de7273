#include "guest/cdh/data_hub.h"

#include <algorithm>
#include <array>

#include "jose/jwk.h"
#include "jose/jws.h"

namespace coffer::guest {
namespace {

constexpr std::string_view kSealedPrefix = "sealed.";

std::unexpected<Error> bad_sealed(const std::string& why) {
  return make_error("bad_sealed_secret", "sealed secret " + why);
}

}  // namespace

DataHub::DataHub(AttestationAgent& aa, const GuestConfig& config) : aa_(aa), config_(config) {}

Result<Bytes> DataHub::get_resource(std::string_view uri) { return aa_.get_resource(uri); }

Result<Bytes> DataHub::unwrap_key(const std::string& kid) {
  if (!kid.starts_with("kbs:///"))
    return make_error("bad_resource_path", "key id must be a kbs:///repo/type/tag URI");
  Bytes key = COFFER_TRY(aa_.get_resource(kid));
  if (key.size() != 32)
    return make_error("bad_key",
                      "the key at " + kid + " is " + std::to_string(key.size()) + " bytes, not 32");
  return key;
}

bool DataHub::is_sealed(std::string_view value) { return value.starts_with(kSealedPrefix); }

Result<Bytes> DataHub::unseal(std::string_view sealed) {
  // 1. shape: "sealed." + exactly three base64url parts, bounded
  if (!is_sealed(sealed)) return bad_sealed("does not start with \"sealed.\"");
  if (sealed.size() > kMaxSealedSecretBytes)
    return bad_sealed("is over " + std::to_string(kMaxSealedSecretBytes) + " bytes");
  std::string_view jws = sealed.substr(kSealedPrefix.size());
  if (std::count(jws.begin(), jws.end(), '.') != 2)
    return bad_sealed("is not a JWS compact serialization (header.payload.signature)");

  // 2. the signing key: named by the header's kid, which init-data must list
  auto header = jose::jws_peek_header(jws);
  if (!header) return bad_sealed("has a malformed JWS header: " + header.error().message);
  auto kid = json_optional_string(*header, "kid");
  if (!kid)
    return make_error("sealed_secret_unknown_key",
                      "sealed secret JWS header has no \"kid\" naming its verification key");
  if (std::find(config_.sealed_secret_keys.begin(), config_.sealed_secret_keys.end(), *kid) ==
      config_.sealed_secret_keys.end())
    return make_error("sealed_secret_unknown_key",
                      "sealed secret signed by \"" + printable_excerpt(*kid, 200) +
                          "\", which init-data does not list in [sealed_secret] verification_keys");
  Bytes jwk_bytes = COFFER_TRY(aa_.get_resource(*kid));
  auto jwk = parse_json(to_string(jwk_bytes), {.max_bytes = 64 * 1024});
  if (!jwk || !jwk->is_object())
    return make_error("bad_key", "the sealed secret key at " + *kid + " is not a JWK");
  auto key = jose::key_from_jwk(*jwk);
  if (!key)
    return make_error("bad_key", "the sealed secret key at " + *kid + ": " + key.error().message);

  // 3. the signature, before anything of the payload is used
  static constexpr std::array kAllowed = {jose::JwsAlg::kES256, jose::JwsAlg::kES384,
                                          jose::JwsAlg::kPS256, jose::JwsAlg::kRS256,
                                          jose::JwsAlg::kEdDSA};
  auto verified = jose::jws_verify(jws, key->public_key(), kAllowed);
  if (!verified) {
    if (verified.error().code == "bad_jws") return bad_sealed(verified.error().message);
    return make_error("sealed_secret_signature",
                      "sealed secret signature: " + verified.error().message);
  }

  // 4. the payload: a vault secret naming a KBS resource
  auto payload = parse_json(to_string(verified->payload), {.max_bytes = kMaxSealedSecretBytes});
  if (!payload || !payload->is_object()) return bad_sealed("payload is not a JSON object");
  auto version = json_optional_string(*payload, "version");
  auto type = json_optional_string(*payload, "type");
  auto provider = json_optional_string(*payload, "provider");
  auto name = json_optional_string(*payload, "name");
  if (version != "0.1.0") return bad_sealed("version must be \"0.1.0\"");
  if (type != "vault")
    return bad_sealed("type must be \"vault\" (envelope secrets need a KMS coffer does not have)");
  if (provider != "kbs") return bad_sealed("provider must be \"kbs\"");
  if (!name || !name->starts_with("kbs:///"))
    return bad_sealed("name must be a kbs:///repo/type/tag URI");
  if (auto it = payload->find("provider_settings"); it != payload->end() && !it->is_object())
    return bad_sealed("provider_settings must be an object");
  if (auto it = payload->find("annotations"); it != payload->end() && !it->is_object())
    return bad_sealed("annotations must be an object");
  return aa_.get_resource(*name);
}

}  // namespace coffer::guest
