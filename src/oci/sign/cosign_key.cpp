#include "oci/sign/cosign_key.h"

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <sodium.h>

#include <memory>

#include "core/bytes.h"
#include "core/json.h"
#include "crypto/random.h"

namespace coffer::oci::sign {
namespace {

constexpr std::string_view kPemType = "ENCRYPTED SIGSTORE PRIVATE KEY";
constexpr std::string_view kLegacyPemType = "ENCRYPTED COSIGN PRIVATE KEY";
constexpr std::uint64_t kScryptN = 32768;
constexpr std::uint32_t kScryptR = 8;
constexpr std::uint32_t kScryptP = 1;

Result<Bytes> scrypt(std::string_view password, ByteView salt, std::uint64_t n, std::uint32_t r,
                     std::uint32_t p) {
  // Bounds keep a hostile key file from asking for gigabytes.
  if (n < 2 || (n & (n - 1)) != 0 || n > (1u << 20) || r == 0 || r > 32 || p == 0 || p > 16) {
    return make_error("bad_key", "unsupported scrypt parameters in the key file");
  }
  std::unique_ptr<EVP_KDF, decltype(&EVP_KDF_free)> kdf(EVP_KDF_fetch(nullptr, "SCRYPT", nullptr),
                                                        EVP_KDF_free);
  if (!kdf) return make_error("crypto_error", "OpenSSL has no SCRYPT KDF");
  std::unique_ptr<EVP_KDF_CTX, decltype(&EVP_KDF_CTX_free)> ctx(EVP_KDF_CTX_new(kdf.get()),
                                                                EVP_KDF_CTX_free);
  std::uint64_t maxmem = 1ull << 30;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, const_cast<char*>(password.data()),
                                        password.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<std::uint8_t*>(salt.data()),
                                        salt.size()),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
      OSSL_PARAM_construct_end()};
  Bytes key(crypto_secretbox_KEYBYTES);
  if (EVP_KDF_derive(ctx.get(), key.data(), key.size(), params) != 1) {
    return make_error("crypto_error", "scrypt derivation failed");
  }
  return key;
}

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
  if (sodium_init() < 0) return make_error("crypto_error", "libsodium failed to initialise");
  auto der = COFFER_TRY(key.private_der());
  Bytes salt = crypto::random_bytes(32);
  Bytes nonce = crypto::random_bytes(crypto_secretbox_NONCEBYTES);
  auto box_key = COFFER_TRY(scrypt(password, salt, kScryptN, kScryptR, kScryptP));
  Bytes boxed(der.size() + crypto_secretbox_MACBYTES);
  crypto_secretbox_easy(boxed.data(), der.data(), der.size(), nonce.data(), box_key.data());
  sodium_memzero(box_key.data(), box_key.size());
  nlohmann::ordered_json j;
  j["kdf"] = {{"name", "scrypt"},
              {"params", {{"N", kScryptN}, {"r", kScryptR}, {"p", kScryptP}}},
              {"salt", base64_encode(salt)}};
  j["cipher"] = {{"name", "nacl/secretbox"}, {"nonce", base64_encode(nonce)}};
  j["ciphertext"] = base64_encode(boxed);
  return armor(kPemType, as_bytes(j.dump()));
}

Result<CosignKeyPair> generate_cosign_key_pair(std::string_view password) {
  auto key = COFFER_TRY(crypto::Key::generate(crypto::KeyType::kEcP256));
  return CosignKeyPair{COFFER_TRY(encrypt_cosign_private_key(key, password)), key.public_pem()};
}

Result<crypto::Key> load_cosign_private_key(std::string_view pem, std::string_view password) {
  if (sodium_init() < 0) return make_error("crypto_error", "libsodium failed to initialise");
  std::string type;
  auto body = COFFER_TRY(dearmor(pem, type));
  if (type != kPemType && type != kLegacyPemType) {
    return make_error("bad_key", "PEM type '" + type + "' is not a cosign private key");
  }
  auto j = COFFER_TRY(parse_json(to_string(body), JsonLimits{.max_bytes = 64 * 1024}));
  if (!j.is_object() || !j["kdf"].is_object() || !j["cipher"].is_object() ||
      j["kdf"].value("name", "") != "scrypt" || j["cipher"].value("name", "") != "nacl/secretbox" ||
      !j["kdf"]["params"].is_object()) {
    return make_error("bad_key", "cosign key is not scrypt + nacl/secretbox");
  }
  const Json& params = j["kdf"]["params"];
  auto salt = base64_decode(j["kdf"].value("salt", ""));
  auto nonce = base64_decode(j["cipher"].value("nonce", ""));
  auto boxed = base64_decode(j.value("ciphertext", ""));
  if (!salt || !nonce || !boxed || nonce->size() != crypto_secretbox_NONCEBYTES ||
      boxed->size() < crypto_secretbox_MACBYTES || !params["N"].is_number_unsigned() ||
      !params["r"].is_number_unsigned() || !params["p"].is_number_unsigned()) {
    return make_error("bad_key", "cosign key fields are malformed");
  }
  auto box_key =
      COFFER_TRY(scrypt(password, *salt, params["N"].get<std::uint64_t>(),
                        params["r"].get<std::uint32_t>(), params["p"].get<std::uint32_t>()));
  Bytes der(boxed->size() - crypto_secretbox_MACBYTES);
  int rc = crypto_secretbox_open_easy(der.data(), boxed->data(), boxed->size(), nonce->data(),
                                      box_key.data());
  sodium_memzero(box_key.data(), box_key.size());
  if (rc != 0) return make_error("wrong_password", "the password does not open this cosign key");
  auto key = crypto::Key::from_private_der(der);
  sodium_memzero(der.data(), der.size());
  return key;
}

}  // namespace coffer::oci::sign
