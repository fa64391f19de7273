// Interoperability with python3-jwcrypto and python3-jwt (PyJWT), the Debian packages that
// scripts/install-deps installs. The Python side is test/interop/jose_peer.py, run with
// /usr/bin/python3 (Debian's interpreter, which sees those packages). Missing tools fail the
// test with a pointer to the install script; they never skip it.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "crypto/random.h"
#include "jose/jcs.h"
#include "jose/jwe.h"
#include "jose/jwk.h"
#include "jose/jwt.h"
#include "test_keys.h"

namespace coffer::jose {
namespace {

namespace fs = std::filesystem;
using crypto::KeyType;
using test::test_key;

constexpr const char* kPython = "/usr/bin/python3";

struct RunResult {
  int status = -1;
  std::string out;
};

class Peer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string tmpl = (fs::temp_directory_path() / "coffer-jose-interop-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = new fs::path(tmpl);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(fs::exists(kPython))
        << kPython << " is missing: run scripts/install-deps (installs python3, "
        << "python3-jwcrypto, python3-jwt)";
    auto probe = run_shell(std::string(kPython) + " -c 'import jwcrypto, jwt, cryptography'");
    ASSERT_EQ(probe.status, 0) << "python3-jwcrypto / python3-jwt not importable by " << kPython
                               << ": run scripts/install-deps";
  }

  // Writes `content` to a fresh file in the suite's temp dir and returns its path.
  static std::string file(std::string_view content) {
    static int counter = 0;
    fs::path p = *dir_ / ("f" + std::to_string(counter++));
    std::ofstream(p, std::ios::binary)
        .write(content.data(), static_cast<std::streamsize>(content.size()));
    return p.string();
  }

  static RunResult run_shell(const std::string& command) {
    RunResult r;
    FILE* pipe = popen((command + " 2>&1").c_str(), "r");
    if (pipe == nullptr) return r;
    std::array<char, 4096> buf{};
    std::size_t n = 0;
    while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) r.out.append(buf.data(), n);
    int raw = pclose(pipe);
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    return r;
  }

  // Runs jose_peer.py; all arguments are fixed words or paths in our temp dir (no quoting needed).
  static RunResult peer(std::initializer_list<std::string> args) {
    std::string cmd =
        std::string(kPython) + " " COFFER_SOURCE_DIR "/src/jose/test/interop/jose_peer.py";
    for (const auto& a : args) cmd += " " + a;
    return run_shell(cmd);
  }

  static fs::path* dir_;
};

fs::path* Peer::dir_ = nullptr;

std::string jwk_text(const crypto::Key& key, bool priv) { return key_to_jwk(key, priv)->dump(); }

// ---- JWE ----

class JweInterop : public Peer, public ::testing::WithParamInterface<KeyType> {};

TEST_P(JweInterop, OursDecryptedByJwcrypto) {
  const auto& key = test_key(GetParam());
  Bytes secret = crypto::random_bytes(77);
  auto jwe = jwe_encrypt(secret, key.public_key(), Json{{"kid", "coffer"}});
  ASSERT_TRUE(jwe) << jwe.error().to_string();
  auto r = peer({"jwe-decrypt", file(jwk_text(key, true)), file(jwe->dump())});
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out, hex_encode(secret));
  auto compact = peer({"jwe-decrypt", file(jwk_text(key, true)), file(*jwe_to_compact(*jwe))});
  ASSERT_EQ(compact.status, 0) << compact.out;
  EXPECT_EQ(compact.out, hex_encode(secret));
}

TEST_P(JweInterop, JwcryptoDecryptedByOurs) {
  const auto& key = test_key(GetParam());
  std::string alg = key.is_ec() ? "ECDH-ES+A256KW" : "RSA-OAEP-256";
  Bytes secret = crypto::random_bytes(50);
  for (const char* form : {"json", "compact"}) {
    auto r = peer({"jwe-encrypt", file(jwk_text(key, false)), alg, file(to_string(secret)), form});
    ASSERT_EQ(r.status, 0) << r.out;
    auto plain = jwe_decrypt_text(r.out, key);
    ASSERT_TRUE(plain) << form << ": " << plain.error().to_string() << "\n" << r.out;
    EXPECT_EQ(*plain, secret) << form;
  }
}

TEST_F(Peer, JwcryptoRsaOaepSha1DecryptedByOurs) {
  // ocicrypt's choice for RSA recipients.
  const auto& key = test_key(KeyType::kRsa);
  auto r =
      peer({"jwe-encrypt", file(jwk_text(key, false)), "RSA-OAEP", file("layer opts"), "json"});
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(to_string(*jwe_decrypt_text(r.out, key)), "layer opts");
}

INSTANTIATE_TEST_SUITE_P(Keys, JweInterop,
                         ::testing::Values(KeyType::kEcP256, KeyType::kEcP384, KeyType::kEcP521,
                                           KeyType::kRsa));

// ---- JWT ----

class JwtInterop : public Peer, public ::testing::WithParamInterface<JwsAlg> {};

KeyType key_type_for(JwsAlg alg) {
  switch (alg) {
    case JwsAlg::kES256:
      return KeyType::kEcP256;
    case JwsAlg::kES384:
      return KeyType::kEcP384;
    case JwsAlg::kEdDSA:
      return KeyType::kEd25519;
    default:
      return KeyType::kRsa;
  }
}

Json sample_claims() {
  auto now = unix_seconds(std::chrono::system_clock::now());
  return {{"iss", "coffer"}, {"iat", now}, {"exp", now + 600}, {"nested", {{"a", {1, 2}}}}};
}

TEST_P(JwtInterop, OursVerifiedByPyJwt) {
  JwsAlg alg = GetParam();
  const auto& key = test_key(key_type_for(alg));
  Json claims = sample_claims();
  auto token = jwt_sign(claims, key, alg);
  ASSERT_TRUE(token);
  auto r = peer(
      {"jwt-verify", file(jwk_text(key, false)), std::string(jws_alg_name(alg)), file(*token)});
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(Json::parse(r.out), claims);
  // A tampered token is refused by PyJWT too.
  std::string bad = *token;
  bad[bad.size() - 5] = bad[bad.size() - 5] == 'A' ? 'B' : 'A';
  EXPECT_NE(
      peer({"jwt-verify", file(jwk_text(key, false)), std::string(jws_alg_name(alg)), file(bad)})
          .status,
      0);
}

TEST_P(JwtInterop, PyJwtVerifiedByOurs) {
  JwsAlg alg = GetParam();
  const auto& key = test_key(key_type_for(alg));
  Json claims = sample_claims();
  auto r = peer(
      {"jwt-sign", file(jwk_text(key, true)), std::string(jws_alg_name(alg)), file(claims.dump())});
  ASSERT_EQ(r.status, 0) << r.out;
  JwtValidation v;
  v.now = std::chrono::system_clock::now();
  v.max_lifetime = std::chrono::seconds(3600);
  std::array<JwsAlg, 1> allowed{alg};
  auto got = jwt_verify(r.out, key.public_key(), allowed, v);
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(*got, claims);
  EXPECT_EQ((*jws_peek_header(r.out))["kid"], "pyjwt");
}

INSTANTIATE_TEST_SUITE_P(Algs, JwtInterop,
                         ::testing::Values(JwsAlg::kES256, JwsAlg::kES384, JwsAlg::kRS256,
                                           JwsAlg::kPS256, JwsAlg::kEdDSA));

// ---- JWK ----

TEST_F(Peer, OurJwksImportInJwcrypto) {
  for (KeyType t :
       {KeyType::kEcP256, KeyType::kEcP384, KeyType::kEcP521, KeyType::kRsa, KeyType::kEd25519}) {
    const auto& key = test_key(t);
    for (bool priv : {false, true}) {
      auto r = peer({"jwk-import", file(jwk_text(key, priv))});
      ASSERT_EQ(r.status, 0) << r.out;
      Json got = Json::parse(r.out);
      EXPECT_EQ(got["thumbprint"], *jwk_thumbprint(key)) << crypto::key_type_name(t);
      EXPECT_EQ(got["private"], priv);
    }
  }
}

TEST_F(Peer, JwcryptoJwksImportInOurs) {
  const std::pair<const char*, const char*> kSpecs[] = {
      {"EC", "P-256"}, {"EC", "P-384"}, {"EC", "P-521"}, {"RSA", "2048"}, {"OKP", "Ed25519"}};
  for (const auto& [kty, param] : kSpecs) {
    auto r = peer({"jwk-generate", kty, param});
    ASSERT_EQ(r.status, 0) << r.out;
    Json got = Json::parse(r.out);
    auto key = key_from_jwk(got["jwk"]);
    ASSERT_TRUE(key) << param << ": " << key.error().to_string();
    EXPECT_TRUE(key->has_private());
    EXPECT_EQ(*jwk_thumbprint(got["jwk"]), got["thumbprint"]) << param;
    EXPECT_EQ(*jwk_thumbprint(*key), got["thumbprint"]) << param;
  }
}

}  // namespace
}  // namespace coffer::jose
