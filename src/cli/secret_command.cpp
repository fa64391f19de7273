#include "cli/secret_command.h"

#include <iostream>
#include <memory>
#include <string>

#include "cli/exit.h"
#include "core/file.h"
#include "core/json.h"
#include "crypto/pkey.h"
#include "jose/jwk.h"
#include "jose/jws.h"

namespace coffer::cli {

namespace {

struct SecretOptions {
  std::string signing_key;
  std::string kid;
  std::string resource;
};

crypto::Key load_private_key(std::string_view prefix, const std::string& path) {
  auto pem = read_text_file(path, 1024 * 1024);
  if (!pem) fail(prefix, pem.error());
  auto key = crypto::Key::from_pem(*pem);
  if (!key) fail(prefix, wrap_error(key.error(), path).error());
  if (!key->has_private()) {
    fail(prefix, Error{"bad_key", path + " holds a public key; sealing needs the private key"});
  }
  return std::move(*key);
}

Result<jose::JwsAlg> alg_for(const crypto::Key& key) {
  switch (key.type()) {
    case crypto::KeyType::kEcP256:
      return jose::JwsAlg::kES256;
    case crypto::KeyType::kEcP384:
      return jose::JwsAlg::kES384;
    case crypto::KeyType::kEd25519:
      return jose::JwsAlg::kEdDSA;
    case crypto::KeyType::kRsa:
      return jose::JwsAlg::kRS256;
    default:
      return make_error("bad_key",
                        std::string("a ") + std::string(crypto::key_type_name(key.type())) +
                            " key cannot sign a sealed secret (P-256, P-384, Ed25519 or RSA)");
  }
}

// kbs:///repo/type/tag, exactly three non-empty segments.
Status check_kbs_uri(std::string_view what, const std::string& uri) {
  constexpr std::string_view kScheme = "kbs:///";
  bool good = uri.starts_with(kScheme);
  if (good) {
    const std::string_view path = std::string_view(uri).substr(kScheme.size());
    std::size_t segments = 0;
    std::size_t start = 0;
    while (good && start <= path.size()) {
      const auto slash = path.find('/', start);
      const auto seg = path.substr(
          start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
      good = !seg.empty() && seg != "." && seg != "..";
      ++segments;
      if (slash == std::string_view::npos) break;
      start = slash + 1;
    }
    good = good && segments == 3;
  }
  if (!good) {
    return make_error("bad_argument", std::string(what) + " must be kbs:///REPO/TYPE/TAG, not '" +
                                          printable_excerpt(uri) + "'");
  }
  return ok();
}

void run_seal(const SecretOptions& o) {
  constexpr std::string_view kPrefix = "coffer secret seal";
  if (auto s = check_kbs_uri("--kid", o.kid); !s) fail(kPrefix, s.error());
  if (auto s = check_kbs_uri("--resource", o.resource); !s) fail(kPrefix, s.error());
  const auto key = load_private_key(kPrefix, o.signing_key);
  auto alg = alg_for(key);
  if (!alg) fail(kPrefix, alg.error());
  // CoCo's vault secret: the value stays in the KBS; the enclave fetches it by name.
  const Json payload = {{"version", "0.1.0"},
                        {"type", "vault"},
                        {"provider", "kbs"},
                        {"name", o.resource},
                        {"provider_settings", Json::object()},
                        {"annotations", Json::object()}};
  auto jws = jose::jws_sign(as_bytes(payload.dump()), key, *alg, Json{{"kid", o.kid}});
  if (!jws) fail(kPrefix, jws.error());
  std::cout << "sealed." << *jws << "\n";
}

void run_verification_key(const SecretOptions& o) {
  constexpr std::string_view kPrefix = "coffer secret verification-key";
  const auto key = load_private_key(kPrefix, o.signing_key);
  if (auto alg = alg_for(key); !alg) fail(kPrefix, alg.error());
  auto jwk = jose::key_to_jwk(key, false);
  if (!jwk) fail(kPrefix, jwk.error());
  std::cout << jwk->dump() << "\n";
}

}  // namespace

void add_secret_command(CLI::App& app) {
  auto* secret = app.add_subcommand("secret", "CoCo sealed secrets");
  secret->require_subcommand(1);
  auto opts = std::make_shared<SecretOptions>();
  auto* seal = secret->add_subcommand(
      "seal", "print a sealed secret naming a KBS resource, signed with your key");
  seal->add_option("--signing-key", opts->signing_key,
                   "private key (PEM: P-256, P-384, Ed25519, RSA)")
      ->required()
      ->check(readable_file());
  seal->add_option("--kid", opts->kid,
                   "kbs:/// URI where the enclave finds the verification key (the public JWK)")
      ->required();
  seal->add_option("--resource", opts->resource, "kbs:/// URI of the resource holding the value")
      ->required();
  seal->callback([opts] { run_seal(*opts); });
  auto* vk = secret->add_subcommand("verification-key",
                                    "print the public JWK that verifies secrets sealed with a key");
  vk->add_option("--signing-key", opts->signing_key, "private key (PEM)")
      ->required()
      ->check(readable_file());
  vk->callback([opts] { run_verification_key(*opts); });
}

}  // namespace coffer::cli
