#include "jose/jws.h"

#include <algorithm>
#include <array>

#include "jose/detail.h"

namespace coffer::jose {
namespace {

constexpr JsonLimits kHeaderLimits{64 * 1024, 16};

std::unexpected<Error> bad_jws(std::string message) {
  return make_error("bad_jws", std::move(message));
}

crypto::SignatureParams signature_params(JwsAlg alg) {
  crypto::SignatureParams p;
  p.format = crypto::SignatureFormat::kRaw;  // RFC 7518 section 3.4: r || s
  switch (alg) {
    case JwsAlg::kES384:
      p.digest = crypto::DigestAlg::kSha384;
      break;
    case JwsAlg::kPS256:
      p.rsa_padding = crypto::RsaPadding::kPss;
      break;
    default:
      break;
  }
  return p;
}

struct Segments {
  std::string_view header;
  std::string_view payload;
  std::string_view signature;
  std::string_view signing_input;  // header '.' payload
};

bool is_base64url_text(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

Result<Segments> split_compact(std::string_view compact) {
  if (compact.size() > kMaxJwsBytes) {
    return bad_jws("JWS of " + std::to_string(compact.size()) + " bytes exceeds the limit of " +
                   std::to_string(kMaxJwsBytes));
  }
  auto first = compact.find('.');
  if (first == std::string_view::npos) return bad_jws("JWS must have three '.'-separated parts");
  auto second = compact.find('.', first + 1);
  if (second == std::string_view::npos || compact.find('.', second + 1) != std::string_view::npos) {
    return bad_jws("JWS must have three '.'-separated parts");
  }
  Segments s{compact.substr(0, first), compact.substr(first + 1, second - first - 1),
             compact.substr(second + 1), compact.substr(0, second)};
  // Unpadded base64url only (RFC 7515 section 2); rejects whitespace and '=' too.
  if (s.header.empty() || !is_base64url_text(s.header) || !is_base64url_text(s.payload) ||
      s.signature.empty() || !is_base64url_text(s.signature)) {
    return bad_jws("JWS parts must be non-empty unpadded base64url");
  }
  return s;
}

Result<Json> decode_header(std::string_view b64) {
  auto raw = base64url_decode(b64);
  if (!raw) return bad_jws("JWS header is not base64url");
  auto header = parse_json(to_string(*raw), kHeaderLimits);
  if (!header) return bad_jws("JWS header is not JSON: " + header.error().message);
  if (!header->is_object()) return bad_jws("JWS header must be a JSON object");
  return std::move(*header);
}

}  // namespace

std::string_view jws_alg_name(JwsAlg alg) {
  switch (alg) {
    case JwsAlg::kES256:
      return "ES256";
    case JwsAlg::kES384:
      return "ES384";
    case JwsAlg::kRS256:
      return "RS256";
    case JwsAlg::kPS256:
      return "PS256";
    case JwsAlg::kEdDSA:
      return "EdDSA";
  }
  return "";
}

Result<JwsAlg> parse_jws_alg(std::string_view name) {
  static constexpr std::array<JwsAlg, 5> kAll = {JwsAlg::kES256, JwsAlg::kES384, JwsAlg::kRS256,
                                                 JwsAlg::kPS256, JwsAlg::kEdDSA};
  for (JwsAlg a : kAll) {
    if (jws_alg_name(a) == name) return a;
  }
  return make_error("alg_not_allowed",
                    "JWS algorithm '" + std::string(name.substr(0, 32)) + "' is not supported");
}

Result<JwsAlg> default_jws_alg(const crypto::Key& key) {
  switch (key.type()) {
    case crypto::KeyType::kEcP256:
      return JwsAlg::kES256;
    case crypto::KeyType::kEcP384:
      return JwsAlg::kES384;
    case crypto::KeyType::kRsa:
      return JwsAlg::kPS256;
    case crypto::KeyType::kEd25519:
      return JwsAlg::kEdDSA;
    default:
      return make_error("alg_key_mismatch", "no supported JWS algorithm for a P-521 key");
  }
}

Status check_jws_key(JwsAlg alg, const crypto::Key& key) {
  bool fits = false;
  switch (alg) {
    case JwsAlg::kES256:
      fits = key.type() == crypto::KeyType::kEcP256;
      break;
    case JwsAlg::kES384:
      fits = key.type() == crypto::KeyType::kEcP384;
      break;
    case JwsAlg::kRS256:
    case JwsAlg::kPS256:
      // RFC 7518 section 3.3: RSA keys of 2048 bits or more.
      fits = key.type() == crypto::KeyType::kRsa && key.rsa_bits() >= 2048;
      break;
    case JwsAlg::kEdDSA:
      fits = key.type() == crypto::KeyType::kEd25519;
      break;
  }
  if (!fits) {
    return make_error("alg_key_mismatch",
                      std::string(jws_alg_name(alg)) + " cannot be used with a " +
                          std::string(crypto::key_type_name(key.type())) + " key");
  }
  return ok();
}

Result<std::string> jws_sign(ByteView payload, const crypto::Key& key, JwsAlg alg,
                             const Json& extra_header) {
  if (!extra_header.is_object()) return bad_jws("extra JWS header must be a JSON object");
  if (extra_header.contains("alg")) return bad_jws("extra JWS header must not set 'alg'");
  COFFER_TRY_STATUS(check_jws_key(alg, key));
  Json header = extra_header;
  header["alg"] = std::string(jws_alg_name(alg));
  std::string out = base64url_encode(as_bytes(COFFER_TRY(detail::dump_json(header, "bad_jws"))));
  out += '.';
  out += base64url_encode(payload);
  auto sig = COFFER_TRY(key.sign(as_bytes(out), signature_params(alg)));
  out += '.';
  out += base64url_encode(sig);
  return out;
}

Result<JwsVerified> jws_verify(std::string_view compact, const crypto::Key& key,
                               std::span<const JwsAlg> allowed) {
  auto parts = COFFER_TRY(split_compact(compact));
  Json header = COFFER_TRY(decode_header(parts.header));
  auto alg_it = header.find("alg");
  if (alg_it == header.end() || !alg_it->is_string()) {
    return bad_jws("JWS header has no string 'alg'");
  }
  // "none" and anything unknown fail here, before any key is touched.
  JwsAlg alg = COFFER_TRY(parse_jws_alg(alg_it->get_ref<const std::string&>()));
  if (std::find(allowed.begin(), allowed.end(), alg) == allowed.end()) {
    return make_error("alg_not_allowed",
                      "JWS algorithm " + std::string(jws_alg_name(alg)) + " is not allowed here");
  }
  COFFER_TRY_STATUS(check_jws_key(alg, key));
  // RFC 7515 section 4.1.11: we understand no extension, so any "crit" must be rejected.
  if (header.contains("crit")) return bad_jws("JWS header 'crit' names unsupported extensions");
  auto sig = base64url_decode(parts.signature);
  if (!sig) return bad_jws("JWS signature is not base64url");
  if (key.is_ec() && sig->size() != 2 * crypto::ec_field_size(key.type())) {
    return make_error("signature_invalid", "ECDSA signature has the wrong length");
  }
  auto verified = key.verify(as_bytes(parts.signing_input), *sig, signature_params(alg));
  if (!verified) {
    return make_error("signature_invalid", "JWS signature does not verify with the given key");
  }
  auto payload = base64url_decode(parts.payload);
  if (!payload) return bad_jws("JWS payload is not base64url");
  return JwsVerified{std::move(header), std::move(*payload)};
}

Result<Json> jws_peek_header(std::string_view compact) {
  auto parts = COFFER_TRY(split_compact(compact));
  return decode_header(parts.header);
}

}  // namespace coffer::jose
