#include "jose/jwe.h"

#include <optional>

#include "crypto/cipher.h"
#include "crypto/oaep_sha1.h"
#include "crypto/random.h"
#include "jose/concat_kdf.h"
#include "jose/detail.h"
#include "jose/jwk.h"

namespace coffer::jose {
namespace {

constexpr std::string_view kEnc = "A256GCM";
constexpr std::string_view kEcdhEsA256kw = "ECDH-ES+A256KW";
constexpr std::string_view kRsaOaep256 = "RSA-OAEP-256";
constexpr std::string_view kRsaOaep = "RSA-OAEP";  // SHA-1; ocicrypt's choice for RSA keys
constexpr std::size_t kCekBytes = 32;
constexpr std::size_t kIvBytes = 12;
constexpr std::size_t kTagBytes = 16;
constexpr std::size_t kMaxRecipients = 64;
constexpr JsonLimits kHeaderLimits{64 * 1024, 16};

std::unexpected<Error> bad_jwe(std::string message) {
  return make_error("bad_jwe", std::move(message));
}
std::unexpected<Error> decrypt_failed() {
  return make_error("decrypt_failed", "JWE does not decrypt with this key: wrong key or tampered");
}

// ---- encryption ----

Status check_extra_header(const Json& extra) {
  if (!extra.is_object()) return bad_jwe("extra JWE header must be a JSON object");
  for (const char* reserved : {"alg", "enc", "epk", "zip", "crit"}) {
    if (extra.contains(reserved)) {
      return bad_jwe(std::string("extra JWE header must not set '") + reserved + "'");
    }
  }
  return ok();
}

// Optional base64url header member (apu, apv).
Result<Bytes> optional_b64(const Json& header, const char* name) {
  auto it = header.find(name);
  if (it == header.end()) return Bytes{};
  if (!it->is_string()) return bad_jwe(std::string("header '") + name + "' must be a string");
  auto b = base64url_decode(it->get_ref<const std::string&>());
  if (!b) return bad_jwe(std::string("header '") + name + "' is not base64url");
  return std::move(*b);
}

// Wraps the CEK for one recipient. `header` holds the header members visible to the recipient
// (for apu/apv); the members this creates (alg, epk) are added to `out_header`.
Result<Bytes> wrap_cek(ByteView cek, const crypto::Key& recipient, JweAlg alg, const Json& header,
                       Json& out_header) {
  COFFER_TRY_STATUS(check_jwe_recipient(recipient));
  out_header["alg"] = std::string(jwe_alg_name(alg));
  if (alg == JweAlg::kRsaOaep256) {
    if (recipient.type() != crypto::KeyType::kRsa) {
      return make_error("jwe_key_mismatch", "RSA-OAEP-256 needs an RSA recipient key");
    }
    return recipient.rsa_oaep_encrypt(cek, crypto::DigestAlg::kSha256);
  }
  if (!recipient.is_ec()) {
    return make_error("jwe_key_mismatch", "ECDH-ES+A256KW needs an EC recipient key");
  }
  auto ephemeral = COFFER_TRY(crypto::Key::generate(recipient.type()));
  Bytes z = COFFER_TRY(ephemeral.ecdh(recipient));
  out_header["epk"] = COFFER_TRY(key_to_jwk(ephemeral));
  Bytes apu = COFFER_TRY(optional_b64(header, "apu"));
  Bytes apv = COFFER_TRY(optional_b64(header, "apv"));
  Bytes kek = concat_kdf_sha256(z, 256, kEcdhEsA256kw, apu, apv);
  return crypto::aes_key_wrap(kek, cek);
}

// Seals the content under `protected_header`, filling protected, iv, ciphertext and tag.
Status seal_content(ByteView plaintext, ByteView cek, const Json& protected_header, Json& out) {
  std::string protected_b64 =
      base64url_encode(as_bytes(COFFER_TRY(detail::dump_json(protected_header, "bad_jwe"))));
  Bytes iv = crypto::random_bytes(kIvBytes);
  auto sealed = COFFER_TRY(crypto::aes_gcm_encrypt(cek, iv, plaintext, as_bytes(protected_b64)));
  out["protected"] = std::move(protected_b64);
  out["iv"] = base64url_encode(iv);
  out["ciphertext"] = base64url_encode(sealed.ciphertext);
  out["tag"] = base64url_encode(sealed.tag);
  return ok();
}

// ---- decryption ----

struct ParsedJwe {
  std::string_view protected_b64;
  Json protected_header = Json::object();
  const Json* unprotected = nullptr;
  std::optional<std::string_view> aad_b64;
  Bytes iv, ciphertext, tag;
};

Result<Bytes> required_b64(const Json& jwe, const char* name) {
  auto it = jwe.find(name);
  if (it == jwe.end() || !it->is_string()) {
    return bad_jwe(std::string("JWE member '") + name + "' is missing or not a string");
  }
  auto b = base64url_decode(it->get_ref<const std::string&>());
  if (!b) return bad_jwe(std::string("JWE member '") + name + "' is not base64url");
  return std::move(*b);
}

// Adds `part`'s members to `merged`; RFC 7516 section 7.2.1: the header parts must be disjoint.
Status merge_disjoint(Json& merged, const Json& part) {
  for (const auto& [name, value] : part.items()) {
    if (merged.contains(name)) return bad_jwe("JWE header member '" + name + "' appears twice");
    merged[name] = value;
  }
  return ok();
}

Result<Bytes> unwrap_ecdh(const Json& header, ByteView encrypted_key, const crypto::Key& key) {
  auto epk_it = header.find("epk");
  if (epk_it == header.end() || !epk_it->is_object()) return bad_jwe("JWE header has no 'epk'");
  auto epk = key_from_jwk(*epk_it);
  // key_from_jwk checks the point is on its curve (invalid-curve attacks).
  if (!epk) return bad_jwe("JWE 'epk' is not a valid public key: " + epk.error().message);
  if (epk->type() != key.type() || epk->has_private()) {
    return bad_jwe("JWE 'epk' is not a public key on the recipient's curve");
  }
  Bytes apu = COFFER_TRY(optional_b64(header, "apu"));
  Bytes apv = COFFER_TRY(optional_b64(header, "apv"));
  auto z = key.ecdh(*epk);
  if (!z) return decrypt_failed();
  Bytes kek = concat_kdf_sha256(*z, 256, kEcdhEsA256kw, apu, apv);
  auto cek = crypto::aes_key_unwrap(kek, encrypted_key);
  if (!cek) return decrypt_failed();
  return std::move(*cek);
}

// One recipient's CEK. RSA failures yield a random CEK so that the GCM check fails the same way
// as any other tampering (RFC 7516 section 11.5, no padding oracle).
Result<Bytes> recipient_cek(const Json& header, ByteView encrypted_key, const crypto::Key& key) {
  const auto& alg = header["alg"].get_ref<const std::string&>();
  if (alg == kEcdhEsA256kw) return unwrap_ecdh(header, encrypted_key, key);
  auto cek = alg == kRsaOaep256 ? key.rsa_oaep_decrypt(encrypted_key, crypto::DigestAlg::kSha256)
                                : crypto::rsa_oaep_sha1_decrypt(key, encrypted_key);
  if (!cek || cek->size() != kCekBytes) return crypto::random_bytes(kCekBytes);
  return std::move(*cek);
}

// Checks one recipient's merged header; false when its alg does not fit the key type.
Result<bool> check_header(const Json& header, const crypto::Key& key) {
  auto enc = header.find("enc");
  auto alg = header.find("alg");
  if (enc == header.end() || !enc->is_string() || alg == header.end() || !alg->is_string()) {
    return bad_jwe("JWE header needs string 'alg' and 'enc'");
  }
  if (enc->get_ref<const std::string&>() != kEnc) {
    return make_error("unsupported_jwe", "JWE 'enc' must be A256GCM");
  }
  if (header.contains("zip")) return make_error("unsupported_jwe", "compressed JWE ('zip')");
  if (header.contains("crit")) return make_error("unsupported_jwe", "JWE 'crit' extensions");
  const auto& a = alg->get_ref<const std::string&>();
  if (a == kEcdhEsA256kw) return key.is_ec();
  if (a == kRsaOaep256 || a == kRsaOaep) return key.type() == crypto::KeyType::kRsa;
  return make_error("unsupported_jwe", "JWE 'alg' " + a.substr(0, 32) + " is not supported");
}

// Whether an ECDH entry's "epk" names the key's curve: entries for other recipients' curves are
// skipped in the general serialization (a lone entry on the wrong curve is an error instead).
bool epk_on_curve_of(const Json& header, const crypto::Key& key) {
  if (!key.is_ec()) return true;
  auto epk = header.find("epk");
  if (epk == header.end() || !epk->is_object()) return true;  // reported by unwrap_ecdh
  auto crv = epk->find("crv");
  return crv == epk->end() || !crv->is_string() ||
         crv->get_ref<const std::string&>() == crypto::key_type_name(key.type());
}

Result<ParsedJwe> parse_common(const Json& jwe) {
  if (!jwe.is_object()) return bad_jwe("a JSON JWE must be an object");
  ParsedJwe p;
  if (auto it = jwe.find("protected"); it != jwe.end()) {
    if (!it->is_string()) return bad_jwe("JWE 'protected' must be a string");
    p.protected_b64 = it->get_ref<const std::string&>();
    auto raw = base64url_decode(p.protected_b64);
    if (!raw) return bad_jwe("JWE 'protected' is not base64url");
    auto header = parse_json(to_string(*raw), kHeaderLimits);
    if (!header || !header->is_object())
      return bad_jwe("JWE protected header is not a JSON object");
    p.protected_header = std::move(*header);
  }
  if (auto it = jwe.find("unprotected"); it != jwe.end()) {
    if (!it->is_object()) return bad_jwe("JWE 'unprotected' must be an object");
    p.unprotected = &*it;
  }
  if (auto it = jwe.find("aad"); it != jwe.end()) {
    if (!it->is_string()) return bad_jwe("JWE 'aad' must be a string");
    p.aad_b64 = it->get_ref<const std::string&>();
  }
  p.iv = COFFER_TRY(required_b64(jwe, "iv"));
  p.ciphertext = COFFER_TRY(required_b64(jwe, "ciphertext"));
  p.tag = COFFER_TRY(required_b64(jwe, "tag"));
  return p;
}

}  // namespace

std::string_view jwe_alg_name(JweAlg alg) {
  return alg == JweAlg::kEcdhEsA256kw ? kEcdhEsA256kw : kRsaOaep256;
}

Status check_jwe_recipient(const crypto::Key& recipient) {
  if (recipient.is_ec()) return ok();
  if (recipient.type() != crypto::KeyType::kRsa) {
    return make_error("unsupported_jwe", "no JWE key management algorithm for an " +
                                             std::string(crypto::key_type_name(recipient.type())) +
                                             " key");
  }
  auto c = COFFER_TRY(recipient.rsa_components());
  return detail::check_rsa_public(c.n, c.e, "weak_key");
}

Result<JweAlg> default_jwe_alg(const crypto::Key& recipient) {
  if (recipient.is_ec()) return JweAlg::kEcdhEsA256kw;
  if (recipient.type() == crypto::KeyType::kRsa) return JweAlg::kRsaOaep256;
  return make_error("unsupported_jwe", "no JWE key management algorithm for an Ed25519 key");
}

Result<Json> jwe_encrypt(ByteView plaintext, const crypto::Key& recipient_public,
                         const Json& extra_protected_header) {
  return jwe_encrypt(plaintext, recipient_public, COFFER_TRY(default_jwe_alg(recipient_public)),
                     extra_protected_header);
}

Result<Json> jwe_encrypt(ByteView plaintext, const crypto::Key& recipient_public, JweAlg alg,
                         const Json& extra_protected_header) {
  COFFER_TRY_STATUS(check_extra_header(extra_protected_header));
  Json header = extra_protected_header;
  header["enc"] = std::string(kEnc);
  Bytes cek = crypto::random_bytes(kCekBytes);
  Json out = Json::object();
  Bytes wrapped = COFFER_TRY(wrap_cek(cek, recipient_public, alg, header, header));
  out["encrypted_key"] = base64url_encode(wrapped);
  COFFER_TRY_STATUS(seal_content(plaintext, cek, header, out));
  return out;
}

Result<Json> jwe_encrypt_multi(ByteView plaintext, std::span<const crypto::Key> recipients,
                               const Json& extra_protected_header) {
  COFFER_TRY_STATUS(check_extra_header(extra_protected_header));
  if (recipients.empty()) return bad_jwe("JWE needs at least one recipient");
  if (recipients.size() > kMaxRecipients) return bad_jwe("too many JWE recipients");
  Json header = extra_protected_header;
  header["enc"] = std::string(kEnc);
  Bytes cek = crypto::random_bytes(kCekBytes);
  Json list = Json::array();
  for (const auto& recipient : recipients) {
    Json own = Json::object();
    JweAlg alg = COFFER_TRY(default_jwe_alg(recipient));
    Bytes wrapped = COFFER_TRY(wrap_cek(cek, recipient, alg, header, own));
    list.push_back(Json{{"header", std::move(own)}, {"encrypted_key", base64url_encode(wrapped)}});
  }
  Json out = Json::object();
  out["recipients"] = std::move(list);
  COFFER_TRY_STATUS(seal_content(plaintext, cek, header, out));
  return out;
}

Result<std::string> jwe_to_compact(const Json& flattened) {
  if (!flattened.is_object() || flattened.contains("recipients") ||
      flattened.contains("unprotected") || flattened.contains("header") ||
      flattened.contains("aad")) {
    return bad_jwe("only a flattened JWE with all headers protected has a compact form");
  }
  static constexpr const char* kNames[] = {"protected", "encrypted_key", "iv", "ciphertext", "tag"};
  std::string out;
  for (const char* name : kNames) {
    auto it = flattened.find(name);
    if (it == flattened.end() || !it->is_string()) {
      return bad_jwe(std::string("JWE member '") + name + "' is missing");
    }
    if (name != kNames[0]) out += '.';
    out += it->get_ref<const std::string&>();
  }
  return out;
}

Result<Bytes> jwe_decrypt(const Json& jwe, const crypto::Key& recipient_private) {
  auto p = COFFER_TRY(parse_common(jwe));
  // The recipients: the top level itself (flattened) or each entry of "recipients" (general).
  std::vector<const Json*> entries;
  auto list = jwe.find("recipients");
  if (list != jwe.end()) {
    if (!list->is_array() || list->empty() || list->size() > kMaxRecipients) {
      return bad_jwe("JWE 'recipients' must be a non-empty array of at most 64 entries");
    }
    if (jwe.contains("encrypted_key") || jwe.contains("header")) {
      return bad_jwe("JWE mixes general and flattened serialization");
    }
    for (const auto& r : *list) {
      if (!r.is_object()) return bad_jwe("JWE recipient must be an object");
      entries.push_back(&r);
    }
  } else {
    entries.push_back(&jwe);
  }
  // RFC 7516 section 5.2 step 14: AAD = ASCII(protected) ['.' ASCII(aad)].
  std::string aad(p.protected_b64);
  if (p.aad_b64) {
    aad += '.';
    aad += *p.aad_b64;
  }
  bool key_fits = false;
  for (const Json* entry : entries) {
    Json header = p.protected_header;
    if (p.unprotected != nullptr) COFFER_TRY_STATUS(merge_disjoint(header, *p.unprotected));
    if (auto h = entry->find("header"); h != entry->end()) {
      if (!h->is_object()) return bad_jwe("JWE recipient 'header' must be an object");
      COFFER_TRY_STATUS(merge_disjoint(header, *h));
    }
    if (!COFFER_TRY(check_header(header, recipient_private))) continue;
    if (entries.size() > 1 && !epk_on_curve_of(header, recipient_private)) continue;
    key_fits = true;
    Bytes encrypted_key = COFFER_TRY(required_b64(*entry, "encrypted_key"));
    auto cek = recipient_cek(header, encrypted_key, recipient_private);
    if (!cek) {
      if (cek.error().code == "decrypt_failed") continue;  // maybe another recipient's entry
      return std::unexpected(cek.error());
    }
    if (p.iv.size() != kIvBytes || p.tag.size() != kTagBytes) return decrypt_failed();
    auto plaintext = crypto::aes_gcm_decrypt(*cek, p.iv, p.ciphertext, p.tag, as_bytes(aad));
    if (plaintext) return std::move(*plaintext);
  }
  if (!key_fits) {
    return make_error("jwe_key_mismatch",
                      "no JWE recipient uses an algorithm for a " +
                          std::string(crypto::key_type_name(recipient_private.type())) + " key");
  }
  return decrypt_failed();
}

Result<Bytes> jwe_decrypt_compact(std::string_view compact, const crypto::Key& recipient_private) {
  if (compact.size() > kMaxJweBytes) return bad_jwe("JWE exceeds the size limit");
  static constexpr const char* kNames[] = {"protected", "encrypted_key", "iv", "ciphertext", "tag"};
  Json jwe = Json::object();
  std::size_t start = 0;
  for (std::size_t i = 0; i < 5; ++i) {
    auto dot = compact.find('.', start);
    if ((i < 4) == (dot == std::string_view::npos)) {
      return bad_jwe("compact JWE must have five '.'-separated parts");
    }
    auto end = i < 4 ? dot : compact.size();
    jwe[kNames[i]] = std::string(compact.substr(start, end - start));
    start = end + 1;
  }
  return jwe_decrypt(jwe, recipient_private);
}

Result<Bytes> jwe_decrypt_text(std::string_view text, const crypto::Key& recipient_private) {
  auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text[first] == '{') {
    auto jwe = parse_json(text, JsonLimits{kMaxJweBytes, 16});
    if (!jwe) return bad_jwe("JWE is not JSON: " + jwe.error().message);
    return jwe_decrypt(*jwe, recipient_private);
  }
  return jwe_decrypt_compact(text, recipient_private);
}

}  // namespace coffer::jose
