#include "oci/sign/cosign_key.h"

#include <memory>

#include "core/bytes.h"
#include "core/json.h"
#include "crypto/kdf.h"
#include "crypto/random.h"
#include "crypto/secretbox.h"

namespace coffer::oci::sign {
namespace {

constexpr std::string_view kPemType = "ENCRYPTED SIGSTORE PRIVATE KEY";
constexpr std::string_view kLegacyPemType = "ENCRYPTED COSIGN PRIVATE KEY";
constexpr crypto::ScryptParams kScrypt{.n = 32768, .r = 8, .p = 1};

std::string armor(std::string_view type, ByteView der) {
  std::string b64 = base64_encode(der);
  std::string out = "-----BEGIN " + std::string(type) + "-----\n";
  for (std::size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
  return out + "-----END " + std::string(type) + "-----\n";
}

Result<Bytes> dearmor(std::string_view pem, std::string& type) {
  auto begin = pem.find("-----BEGIN ");
  if (begin == std::string_view::npos) return make_error("bad_key", "no PEM block");
  auto type_end = pem.find("-----", begin + 11);
  if (type_end == std::string_view::npos) return make_error("bad_key", "malformed PEM header");
  type = std::string(pem.substr(begin + 11, type_end - begin - 11));
  auto body_start = pem.find('\n', type_end);
  auto end = pem.find("-----END " + type + "-----");
  if (body_start == std::string_view::npos || end == std::string_view::npos || end < body_start) {
    return make_error("bad_key", "unterminated PEM block");
  }
  std::string b64;
  for (char c : pem.substr(body_start, end - body_start)) {
    if (c != '\n' && c != '\r' && c != ' ') b64.push_back(c);
  }
  auto der = base64_decode(b64);
  if (!der) return make_error("bad_key", "PEM body is not base64");
  return der;
}

}  // namespace

Result<std::string> encrypt_cosign_private_key(const crypto::Key& key, std::string_view password) {
  auto der = COFFER_TRY(key.private_der());
  Bytes salt = crypto::random_bytes(32);
  Bytes nonce = crypto::random_bytes(crypto::kSecretboxNonceSize);
  auto box_key = COFFER_TRY(crypto::scrypt(password, salt, kScrypt, crypto::kSecretboxKeySize));
  auto boxed = crypto::secretbox_seal(box_key, nonce, der);
  crypto::cleanse(box_key);
  crypto::cleanse(der);
  if (!boxed) return std::unexpected(boxed.error());
  nlohmann::ordered_json j;
  j["kdf"] = {{"name", "scrypt"},
              {"params", {{"N", kScrypt.n}, {"r", kScrypt.r}, {"p", kScrypt.p}}},
              {"salt", base64_encode(salt)}};
  j["cipher"] = {{"name", "nacl/secretbox"}, {"nonce", base64_encode(nonce)}};
  j["ciphertext"] = base64_encode(*boxed);
  return armor(kPemType, as_bytes(j.dump()));
}

Result<CosignKeyPair> generate_cosign_key_pair(std::string_view password) {
  auto key = COFFER_TRY(crypto::Key::generate(crypto::KeyType::kEcP256));
  return CosignKeyPair{COFFER_TRY(encrypt_cosign_private_key(key, password)), key.public_pem()};
}

Result<crypto::Key> load_cosign_private_key(std::string_view pem, std::string_view password) {
  std::string type;
  auto body = COFFER_TRY(dearmor(pem, type));
  if (type != kPemType && type != kLegacyPemType) {
    return make_error("bad_key", "PEM type '" + type + "' is not a cosign private key");
  }
  auto j = COFFER_TRY(parse_json(to_string(body), JsonLimits{.max_bytes = 64 * 1024}));
  auto object = [](const Json& o, const char* key) -> const Json* {
    auto it = o.find(key);
    return it != o.end() && it->is_object() ? &*it : nullptr;
  };
  const Json* kdf = j.is_object() ? object(j, "kdf") : nullptr;
  const Json* cipher = j.is_object() ? object(j, "cipher") : nullptr;
  const Json* params = kdf != nullptr ? object(*kdf, "params") : nullptr;
  if (kdf == nullptr || cipher == nullptr || params == nullptr ||
      kdf->value("name", "") != "scrypt" || cipher->value("name", "") != "nacl/secretbox") {
    return make_error("bad_key", "cosign key is not scrypt + nacl/secretbox");
  }
  auto salt = base64_decode(kdf->value("salt", ""));
  auto nonce = base64_decode(cipher->value("nonce", ""));
  auto boxed = base64_decode(j.value("ciphertext", ""));
  auto unsigned_field = [&](const char* key) {
    auto it = params->find(key);
    return it != params->end() && it->is_number_unsigned();
  };
  if (!salt || !nonce || !boxed || nonce->size() != crypto::kSecretboxNonceSize ||
      boxed->size() < crypto::kSecretboxMacSize || !unsigned_field("N") || !unsigned_field("r") ||
      !unsigned_field("p") || (*params)["r"].get<std::uint64_t>() > UINT32_MAX ||
      (*params)["p"].get<std::uint64_t>() > UINT32_MAX) {
    return make_error("bad_key", "cosign key fields are malformed");
  }
  crypto::ScryptParams sp{.n = (*params)["N"].get<std::uint64_t>(),
                          .r = (*params)["r"].get<std::uint32_t>(),
                          .p = (*params)["p"].get<std::uint32_t>()};
  auto box_key = COFFER_TRY(crypto::scrypt(password, *salt, sp, crypto::kSecretboxKeySize));
  auto der = crypto::secretbox_open(box_key, *nonce, *boxed);
  crypto::cleanse(box_key);
  if (!der) {
    if (der.error().code == "decrypt_failed") {
      return make_error("wrong_password", "the password does not open this cosign key");
    }
    return std::unexpected(der.error());
  }
  auto key = crypto::Key::from_private_der(*der);
  crypto::cleanse(*der);
  return key;
}

}  // namespace coffer::oci::sign
