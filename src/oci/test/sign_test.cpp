// Signatures and policy: cosign keys and signatures interoperating with skopeo in both
// directions, GPG simple signing from skopeo --sign-by, and policy.json scopes and identities.
#include <cstdlib>
#include <iostream>

#include <gtest/gtest.h>

#include "core/file.h"
#include "oci/copy.h"
#include "oci/sign/cosign.h"
#include "oci/sign/cosign_key.h"
#include "oci/sign/policy.h"
#include "oci/test/test_util.h"
#include "oci/transport.h"

namespace coffer::oci::sign {
namespace {

namespace fs = std::filesystem;
using oci::testing::gpg_signed_by;
using oci::testing::insecure_options;
using oci::testing::policy_json;
using oci::testing::Registry;
using oci::testing::sigstore_signed;
using oci::testing::TempDir;

// Pushes a small image to `ref` and returns its manifest digest.
std::string push_image(const Registry& reg, const TempDir& tmp, const std::string& repo_tag) {
  auto dir = tmp.path() / ("src-" + std::to_string(std::rand()));
  oci::testing::write_image(dir, "v1",
                            {oci::testing::make_tar({{.name = "f", .content = repo_tag}})});
  auto src = make_layout_source(OciLayout::open(dir).value(), "v1");
  auto name = parse_image_name("docker://" + reg.host() + "/" + repo_tag).value();
  auto dst = open_destination(name, insecure_options(reg.host())).value();
  return copy_image(*src, *dst, {}).value().manifest_digest;
}

Status evaluate(const std::string& policy, const Registry& reg, const std::string& repo_tag,
                const std::string& digest, const PolicyContext& ctx = {}) {
  auto p = COFFER_TRY(Policy::parse(policy));
  auto name = COFFER_TRY(parse_image_name("docker://" + reg.host() + "/" + repo_tag));
  auto src = COFFER_TRY(open_source(name, insecure_options(reg.host())));
  return p.evaluate(name, *src, digest, ctx);
}

std::string sigstore_policy(const fs::path& pub) {
  return policy_json(sigstore_signed(pub, {{"type", "matchRepository"}}), "docker");
}

void write_registries_d(const fs::path& dir, const std::string& host, const std::string& extra) {
  fs::create_directories(dir);
  std::string yaml = "docker:\n  " + host + ":\n    use-sigstore-attachments: true\n" + extra;
  ASSERT_TRUE(write_file_atomic(dir / "test.yaml", as_bytes(yaml)));
}

TEST(CosignKey, GenerateLoadAndWrongPassword) {
  auto pair = generate_cosign_key_pair("pw").value();
  EXPECT_NE(pair.private_pem.find("ENCRYPTED SIGSTORE PRIVATE KEY"), std::string::npos);
  auto key = load_cosign_private_key(pair.private_pem, "pw").value();
  EXPECT_TRUE(key.same_public(crypto::Key::from_pem(pair.public_pem).value()));
  EXPECT_EQ(load_cosign_private_key(pair.private_pem, "nope").error().code, "wrong_password");
  EXPECT_EQ(load_cosign_private_key("garbage", "pw").error().code, "bad_key");
}

TEST(SignedIdentity, AllForms) {
  auto img = parse_reference("reg.io/ns/app:v1").value();
  auto by_digest = parse_reference("reg.io/ns/app@sha256:" + std::string(64, 'a')).value();
  auto m = [&](const Json& id, const Reference& r, const std::string& s) {
    return identity_matches(id, r, s).value();
  };
  Json def;  // matchRepoDigestOrExact
  EXPECT_TRUE(m(def, img, "reg.io/ns/app:v1"));
  EXPECT_FALSE(m(def, img, "reg.io/ns/app:v2"));
  EXPECT_FALSE(m(def, img, "reg.io/ns/app"));
  EXPECT_TRUE(m(def, by_digest, "reg.io/ns/app:whatever"));
  Json exact{{"type", "matchExact"}};
  EXPECT_TRUE(m(exact, img, "reg.io/ns/app:v1"));
  EXPECT_FALSE(m(exact, by_digest, "reg.io/ns/app:v1"));
  Json repo{{"type", "matchRepository"}};
  EXPECT_TRUE(m(repo, img, "reg.io/ns/app"));
  EXPECT_FALSE(m(repo, img, "reg.io/ns/other:v1"));
  Json exact_ref{{"type", "exactReference"}, {"dockerReference", "other.io/x:1"}};
  EXPECT_TRUE(m(exact_ref, img, "other.io/x:1"));
  EXPECT_FALSE(m(exact_ref, img, "reg.io/ns/app:v1"));
  Json exact_repo{{"type", "exactRepository"}, {"dockerRepository", "other.io/x"}};
  EXPECT_TRUE(m(exact_repo, img, "other.io/x:9"));
  Json remap{
      {"type", "remapIdentity"}, {"prefix", "reg.io/ns"}, {"signedPrefix", "origin.io/team"}};
  EXPECT_TRUE(m(remap, img, "origin.io/team/app:v1"));
  EXPECT_FALSE(m(remap, img, "reg.io/ns/app:v1"));
  EXPECT_EQ(identity_matches(Json{{"type", "bogus"}}, img, "x").error().code, "bad_policy");
  // Docker Hub normalisation applies to signed references too.
  EXPECT_TRUE(m(def, parse_reference("busybox").value(), "docker.io/library/busybox:latest"));
}

TEST(Policy, ScopesPickTheMostSpecific) {
  auto p = Policy::parse(R"({"default":[{"type":"reject"}],"transports":{"docker":{
      "reg.io/ns/app:v1":[{"type":"insecureAcceptAnything"}],
      "reg.io/ns":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k"}],
      "*.example.com":[{"type":"insecureAcceptAnything"}]},
      "oci":{"/images":[{"type":"insecureAcceptAnything"}]}}})")
               .value();
  auto type = [&](const std::string& name) {
    return p.requirements_for(parse_image_name(name).value()).value()[0]["type"];
  };
  EXPECT_EQ(type("docker://reg.io/ns/app:v1"), "insecureAcceptAnything");
  EXPECT_EQ(type("docker://reg.io/ns/app:v2"), "signedBy");
  EXPECT_EQ(type("docker://reg.io/other:v2"), "reject");
  EXPECT_EQ(type("docker://a.b.example.com/x"), "insecureAcceptAnything");
  EXPECT_EQ(type("oci:/images/one:t"), "insecureAcceptAnything");
  EXPECT_EQ(type("oci:/elsewhere:t"), "reject");
  EXPECT_EQ(Policy::parse(R"({"default":[]})").error().code, "bad_policy");
}

TEST(CosignInterop, CofferSignatureAcceptedBySkopeoAndViceVersa) {
  Registry reg;
  ASSERT_TRUE(reg.ok());
  TempDir tmp;
  std::string skopeo = oci::testing::require_program("skopeo");
  auto digest = push_image(reg, tmp, "signed/app:v1");
  auto pair = generate_cosign_key_pair("pw").value();
  ASSERT_TRUE(write_file_atomic(tmp.path() / "cosign.key", as_bytes(pair.private_pem)));
  ASSERT_TRUE(write_file_atomic(tmp.path() / "cosign.pub", as_bytes(pair.public_pem)));
  ASSERT_TRUE(write_file_atomic(tmp.path() / "pass", as_bytes("pw")));
  auto other = generate_cosign_key_pair("x").value();
  ASSERT_TRUE(write_file_atomic(tmp.path() / "other.pub", as_bytes(other.public_pem)));

  // Unsigned: refused.
  EXPECT_EQ(evaluate(sigstore_policy(tmp.path() / "cosign.pub"), reg, "signed/app:v1", digest)
                .error()
                .code,
            "no_valid_signature");

  auto name = parse_image_name("docker://" + reg.host() + "/signed/app:v1").value();
  auto src = open_source(name, insecure_options(reg.host())).value();
  auto dst = open_destination(name, insecure_options(reg.host())).value();
  auto key = load_cosign_private_key(pair.private_pem, "pw").value();
  ASSERT_TRUE(sign_image(*src, *dst, digest, name.reference.str(), key));

  EXPECT_TRUE(evaluate(sigstore_policy(tmp.path() / "cosign.pub"), reg, "signed/app:v1", digest));
  EXPECT_EQ(evaluate(sigstore_policy(tmp.path() / "other.pub"), reg, "signed/app:v1", digest)
                .error()
                .code,
            "no_valid_signature");

  // An independent check of the signature bytes: OpenSSL's CLI verifies payload + signature.
  {
    auto sigs = fetch_cosign_signatures(*src, digest).value();
    ASSERT_EQ(sigs.size(), 1u);
    ASSERT_TRUE(write_file_atomic(tmp.path() / "payload", sigs[0].payload));
    ASSERT_TRUE(write_file_atomic(tmp.path() / "sig", sigs[0].signature));
    auto v = oci::testing::run({oci::testing::require_program("openssl"), "dgst", "-sha256",
                                "-verify", (tmp.path() / "cosign.pub").string(), "-signature",
                                (tmp.path() / "sig").string(), (tmp.path() / "payload").string()});
    EXPECT_EQ(v.exit_code, 0) << v.output;
    auto payload = parse_payload(sigs[0].payload, kCosignType).value();
    EXPECT_EQ(payload.manifest_digest, digest);
    // A second signature is appended, not replacing the first.
    ASSERT_TRUE(sign_image(*src, *dst, digest, name.reference.str(), key));
    EXPECT_EQ(fetch_cosign_signatures(*src, digest).value().size(), 2u);
  }

  // skopeo: Debian builds skopeo with sigstore support patched out ("Debian-local change:
  // sigstore disabled"), so with Debian's package neither direction can run. When the peer
  // supports sigstore, both directions are required to work.
  write_registries_d(tmp.path() / "registries.d", reg.host(), "");
  auto skopeo_copy = [&](const fs::path& pub) {
    auto policy = tmp.path() / "policy.json";
    EXPECT_TRUE(write_file_atomic(policy, as_bytes(sigstore_policy(pub))));
    return oci::testing::run({skopeo, "--policy", policy.string(), "--registries.d",
                              (tmp.path() / "registries.d").string(), "copy",
                              "--src-tls-verify=false", "docker://" + reg.host() + "/signed/app:v1",
                              "oci:" + (tmp.path() / "out").string() + ":v1"});
  };
  auto accepted = skopeo_copy(tmp.path() / "cosign.pub");
  if (accepted.output.find("sigstore disabled") != std::string::npos) {
    // Reported as skipped, not passed: coffer's own sign/verify above ran, the peer part did not.
    GTEST_SKIP() << "this skopeo build has sigstore disabled (Debian patch): the skopeo <-> "
                    "coffer cosign interop was not run";
  }
  EXPECT_EQ(accepted.exit_code, 0) << accepted.output;
  auto refused = skopeo_copy(tmp.path() / "other.pub");
  EXPECT_NE(refused.exit_code, 0) << refused.output;

  // skopeo signs with a coffer-generated key; coffer verifies.
  auto digest2 = push_image(reg, tmp, "skopeo/app:v1");
  auto r = oci::testing::run(
      {skopeo, "--registries.d", (tmp.path() / "registries.d").string(), "copy",
       "--src-tls-verify=false", "--dest-tls-verify=false", "--sign-by-sigstore-private-key",
       (tmp.path() / "cosign.key").string(), "--sign-passphrase-file",
       (tmp.path() / "pass").string(), "docker://" + reg.host() + "/skopeo/app:v1",
       "docker://" + reg.host() + "/skopeo/app:v1"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(evaluate(sigstore_policy(tmp.path() / "cosign.pub"), reg, "skopeo/app:v1", digest2));
  std::string exact = policy_json(sigstore_signed(tmp.path() / "cosign.pub"));
  EXPECT_TRUE(evaluate(exact, reg, "skopeo/app:v1", digest2));  // skopeo signs the tagged name
  EXPECT_FALSE(evaluate(sigstore_policy(tmp.path() / "other.pub"), reg, "skopeo/app:v1", digest2));
}

TEST(GpgInterop, SkopeoSignByVerifiesUnderSignedBy) {
  Registry reg;
  ASSERT_TRUE(reg.ok());
  TempDir tmp;
  std::string gpg = oci::testing::require_program("gpg");
  fs::path home = tmp.path() / "gnupg";
  fs::create_directories(home);
  fs::permissions(home, fs::perms::owner_all);
  ::setenv("GNUPGHOME", home.c_str(), 1);
  auto gen = oci::testing::run({gpg, "--batch", "--passphrase", "", "--quick-gen-key",
                                "coffer test <test@coffer>", "ed25519", "sign", "never"});
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  auto fpr_out = oci::testing::run({gpg, "--batch", "--with-colons", "--list-keys"});
  std::string fpr;
  auto pos = fpr_out.output.find("\nfpr:");
  if (pos != std::string::npos) {
    auto line = fpr_out.output.substr(pos + 1, fpr_out.output.find('\n', pos + 1) - pos - 1);
    fpr = line.substr(line.find_last_of(':', line.size() - 2) + 1);
    fpr.erase(fpr.find_last_not_of(':') + 1);
  }
  ASSERT_EQ(fpr.size(), 40u) << fpr_out.output;
  auto exported = oci::testing::run({gpg, "--batch", "--armor", "--export", fpr});
  ASSERT_TRUE(write_file_atomic(tmp.path() / "pub.gpg", as_bytes(exported.output)));

  auto digest = push_image(reg, tmp, "gpg/app:v1");
  fs::path lookaside = tmp.path() / "lookaside";
  write_registries_d(tmp.path() / "registries.d", reg.host(),
                     "    lookaside: file://" + lookaside.string() +
                         "\n    lookaside-staging: file://" + lookaside.string() + "\n");
  auto r = oci::testing::run({oci::testing::require_program("skopeo"), "--registries.d",
                              (tmp.path() / "registries.d").string(), "copy",
                              "--src-tls-verify=false", "--dest-tls-verify=false", "--sign-by", fpr,
                              "docker://" + reg.host() + "/gpg/app:v1",
                              "docker://" + reg.host() + "/gpg/app:v1"});
  ::unsetenv("GNUPGHOME");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string policy = policy_json(gpg_signed_by({{"keyPath", (tmp.path() / "pub.gpg").string()}}));
  PolicyContext ctx{.lookaside = lookaside};
  auto st = evaluate(policy, reg, "gpg/app:v1", digest, ctx);
  EXPECT_TRUE(st) << st.error().to_string();
  // keyData form, and a key that did not sign.
  std::string by_data =
      policy_json(gpg_signed_by({{"keyData", base64_encode(as_bytes(exported.output))}}));
  EXPECT_TRUE(evaluate(by_data, reg, "gpg/app:v1", digest, ctx));
  auto pair = generate_cosign_key_pair("x").value();  // not a GPG key at all
  ASSERT_TRUE(write_file_atomic(tmp.path() / "bad.gpg", as_bytes(pair.public_pem)));
  std::string wrong = policy_json(gpg_signed_by({{"keyPath", (tmp.path() / "bad.gpg").string()}}));
  EXPECT_FALSE(evaluate(wrong, reg, "gpg/app:v1", digest, ctx));
  // Signature for another image: a digest mismatch.
  auto digest2 = push_image(reg, tmp, "gpg/app:v2");
  EXPECT_FALSE(evaluate(policy, reg, "gpg/app:v2", digest2, ctx));
}

}  // namespace
}  // namespace coffer::oci::sign
