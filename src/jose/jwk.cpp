#include "jose/jwk.h"

#include <array>
#include <optional>
#include <string_view>

#include "core/bytes.h"
#include "crypto/digest.h"
#include "jose/detail.h"

namespace coffer::jose {
namespace {

std::unexpected<Error> bad_jwk(std::string message) {
  return make_error("bad_jwk", std::move(message));
}

// A base64url member; absent -> nullopt when optional, "bad_jwk" otherwise.
Result<std::optional<Bytes>> member_bytes(const Json& jwk, const char* name, bool required) {
  auto it = jwk.find(name);
  if (it == jwk.end()) {
    if (required) return bad_jwk(std::string("missing member '") + name + "'");
    return std::optional<Bytes>();
  }
  if (!it->is_string()) return bad_jwk(std::string("member '") + name + "' must be a string");
  const auto& text = it->get_ref<const std::string&>();
  // JOSE base64url never carries padding (RFC 7515 section 2).
  if (text.find('=') != std::string::npos) {
    return bad_jwk(std::string("member '") + name + "' must be unpadded base64url");
  }
  auto bytes = base64url_decode(text);
  if (!bytes) return bad_jwk(std::string("member '") + name + "' is not base64url");
  return std::optional<Bytes>(std::move(*bytes));
}

Result<Bytes> required_bytes(const Json& jwk, const char* name) {
  auto b = COFFER_TRY(member_bytes(jwk, name, true));
  return std::move(*b);
}

Result<std::string_view> member_string(const Json& jwk, const char* name) {
  auto it = jwk.find(name);
  if (it == jwk.end()) return bad_jwk(std::string("missing member '") + name + "'");
  if (!it->is_string()) return bad_jwk(std::string("member '") + name + "' must be a string");
  return std::string_view(it->get_ref<const std::string&>());
}

Result<crypto::KeyType> curve_from_name(std::string_view crv) {
  if (crv == "P-256") return crypto::KeyType::kEcP256;
  if (crv == "P-384") return crypto::KeyType::kEcP384;
  if (crv == "P-521") return crypto::KeyType::kEcP521;
  return bad_jwk("unsupported EC curve '" + std::string(crv) + "'");
}

Result<crypto::Key> ec_from_jwk(const Json& jwk) {
  auto crv = COFFER_TRY(member_string(jwk, "crv"));
  auto curve = COFFER_TRY(curve_from_name(crv));
  std::size_t fs = crypto::ec_field_size(curve);
  crypto::EcPoint point{COFFER_TRY(required_bytes(jwk, "x")), COFFER_TRY(required_bytes(jwk, "y"))};
  // RFC 7518 section 6.2.1.2: coordinates are exactly the field size, not shortened.
  if (point.x.size() != fs || point.y.size() != fs) {
    return bad_jwk("EC coordinates must be " + std::to_string(fs) + " bytes");
  }
  auto d = COFFER_TRY(member_bytes(jwk, "d", false));
  if (d && d->size() != fs)
    return bad_jwk("EC private scalar must be " + std::to_string(fs) + " bytes");
  auto key = d ? crypto::Key::ec_from_point(curve, point, ByteView(*d))
               : crypto::Key::ec_from_point(curve, point);
  if (!key) return bad_jwk("invalid EC key: " + key.error().message);
  return std::move(*key);
}

Result<crypto::Key> rsa_from_jwk(const Json& jwk) {
  crypto::RsaComponents c;
  c.n = COFFER_TRY(required_bytes(jwk, "n"));
  c.e = COFFER_TRY(required_bytes(jwk, "e"));
  if (c.n.empty() || c.n[0] == 0) return bad_jwk("RSA modulus 'n' is empty or has a leading zero");
  if (c.e.empty() || c.e.size() > 8) return bad_jwk("RSA exponent 'e' has a bad length");
  COFFER_TRY_STATUS(detail::check_rsa_public(c.n, c.e, "bad_jwk"));
  if (jwk.contains("oth")) return bad_jwk("multi-prime RSA keys ('oth') are not supported");
  auto d = COFFER_TRY(member_bytes(jwk, "d", false));
  static constexpr std::array<const char*, 5> kCrt = {"p", "q", "dp", "dq", "qi"};
  std::size_t crt_present = 0;
  for (const char* name : kCrt) crt_present += jwk.contains(name) ? 1 : 0;
  if (!d) {
    if (crt_present != 0) return bad_jwk("RSA private members present without 'd'");
    auto key = crypto::Key::rsa_from_components(c);
    if (!key) return bad_jwk("invalid RSA key: " + key.error().message);
    return std::move(*key);
  }
  // RFC 7518 section 6.3.2: the CRT members come all together or not at all.
  if (crt_present != 0 && crt_present != kCrt.size()) {
    return bad_jwk("RSA private key must carry all of p, q, dp, dq, qi or none");
  }
  c.d = std::move(*d);
  if (crt_present != 0) {
    c.p = COFFER_TRY(required_bytes(jwk, "p"));
    c.q = COFFER_TRY(required_bytes(jwk, "q"));
    c.dp = COFFER_TRY(required_bytes(jwk, "dp"));
    c.dq = COFFER_TRY(required_bytes(jwk, "dq"));
    c.qi = COFFER_TRY(required_bytes(jwk, "qi"));
  }
  auto key = crypto::Key::rsa_from_components(c);
  if (!key) return bad_jwk("invalid RSA key: " + key.error().message);
  // OpenSSL does not check that d matches n and e: a signature round trip does.
  static constexpr std::string_view kProbe = "coffer jwk consistency probe";
  auto sig = key->sign(as_bytes(kProbe));
  if (!sig || !key->verify(as_bytes(kProbe), *sig)) {
    return bad_jwk("RSA private members do not match the public key");
  }
  return std::move(*key);
}

Result<crypto::Key> okp_from_jwk(const Json& jwk) {
  auto crv = COFFER_TRY(member_string(jwk, "crv"));
  if (crv != "Ed25519") return bad_jwk("unsupported OKP curve '" + std::string(crv) + "'");
  Bytes x = COFFER_TRY(required_bytes(jwk, "x"));
  if (x.size() != 32) return bad_jwk("Ed25519 public key must be 32 bytes");
  auto d = COFFER_TRY(member_bytes(jwk, "d", false));
  if (!d) {
    auto key = crypto::Key::ed25519_from_raw(x);
    if (!key) return bad_jwk("invalid Ed25519 key: " + key.error().message);
    return std::move(*key);
  }
  if (d->size() != 32) return bad_jwk("Ed25519 private key must be 32 bytes");
  auto key = crypto::Key::ed25519_from_raw(x, ByteView(*d));
  if (!key) return bad_jwk("invalid Ed25519 key: " + key.error().message);
  auto derived = key->ed25519_raw_public();
  if (!derived || !constant_time_equal(*derived, x)) {
    return bad_jwk("Ed25519 private key does not match 'x'");
  }
  return std::move(*key);
}

}  // namespace

Result<crypto::Key> key_from_jwk(const Json& jwk) {
  if (!jwk.is_object()) return bad_jwk("a JWK must be a JSON object");
  auto kty = COFFER_TRY(member_string(jwk, "kty"));
  if (kty == "EC") return ec_from_jwk(jwk);
  if (kty == "RSA") return rsa_from_jwk(jwk);
  if (kty == "OKP") return okp_from_jwk(jwk);
  return bad_jwk("unsupported key type '" + std::string(kty) + "'");
}

Result<Json> key_to_jwk(const crypto::Key& key, bool include_private) {
  if (include_private && !key.has_private()) {
    return make_error("missing_private_key", "cannot export private JWK members of a public key");
  }
  Json jwk = Json::object();
  if (key.is_ec()) {
    auto point = COFFER_TRY(key.ec_point());
    jwk["kty"] = "EC";
    jwk["crv"] = std::string(crypto::key_type_name(key.type()));
    jwk["x"] = base64url_encode(point.x);
    jwk["y"] = base64url_encode(point.y);
    if (include_private) {
      auto d = COFFER_TRY(key.ec_private_scalar());
      std::size_t fs = crypto::ec_field_size(key.type());
      if (d.size() < fs) d.insert(d.begin(), fs - d.size(), 0);  // RFC 7518 section 6.2.2.1
      jwk["d"] = base64url_encode(d);
    }
    return jwk;
  }
  if (key.type() == crypto::KeyType::kRsa) {
    auto c = COFFER_TRY(key.rsa_components());
    jwk["kty"] = "RSA";
    jwk["n"] = base64url_encode(c.n);
    jwk["e"] = base64url_encode(c.e);
    if (include_private) {
      jwk["d"] = base64url_encode(c.d);
      if (!c.p.empty()) {
        jwk["p"] = base64url_encode(c.p);
        jwk["q"] = base64url_encode(c.q);
        jwk["dp"] = base64url_encode(c.dp);
        jwk["dq"] = base64url_encode(c.dq);
        jwk["qi"] = base64url_encode(c.qi);
      }
    }
    return jwk;
  }
  jwk["kty"] = "OKP";
  jwk["crv"] = "Ed25519";
  jwk["x"] = base64url_encode(COFFER_TRY(key.ed25519_raw_public()));
  if (include_private) jwk["d"] = base64url_encode(COFFER_TRY(key.ed25519_raw_private()));
  return jwk;
}

Result<std::string> jwk_thumbprint(const Json& jwk) {
  if (!jwk.is_object()) return bad_jwk("a JWK must be a JSON object");
  auto kty = COFFER_TRY(member_string(jwk, "kty"));
  // RFC 7638 section 3.2: only the required members, sorted, no whitespace. Their values are
  // base64url or fixed names, so no JSON escaping is ever needed; reject anything else.
  std::array<const char*, 3> names{};
  if (kty == "EC") {
    names = {"crv", "x", "y"};
  } else if (kty == "RSA") {
    names = {"e", "n", nullptr};
  } else if (kty == "OKP") {
    names = {"crv", "x", nullptr};
  } else {
    return bad_jwk("unsupported key type '" + std::string(kty) + "'");
  }
  std::string text = "{";
  auto append = [&](std::string_view name, std::string_view value) -> Status {
    for (char ch : value) {
      bool plain = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                   (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
      if (!plain) return bad_jwk("member '" + std::string(name) + "' has an unexpected character");
    }
    if (text.size() > 1) text += ',';
    text += '"';
    text += name;
    text += "\":\"";
    text += value;
    text += '"';
    return ok();
  };
  // kty sorts after crv and e, before n, x and y.
  bool kty_done = false;
  for (const char* name : names) {
    if (name == nullptr) break;
    if (!kty_done && std::string_view(name) > "kty") {
      COFFER_TRY_STATUS(append("kty", kty));
      kty_done = true;
    }
    COFFER_TRY_STATUS(append(name, COFFER_TRY(member_string(jwk, name))));
  }
  if (!kty_done) COFFER_TRY_STATUS(append("kty", kty));
  text += '}';
  return base64url_encode(crypto::sha256(as_bytes(text)));
}

Result<std::string> jwk_thumbprint(const crypto::Key& key) {
  return jwk_thumbprint(COFFER_TRY(key_to_jwk(key)));
}

}  // namespace coffer::jose
