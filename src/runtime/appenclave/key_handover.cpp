#include "runtime/appenclave/key_handover.h"

#include <algorithm>
#include <array>

#include "crypto/cipher.h"
#include "crypto/digest.h"
#include "crypto/kdf.h"
#include "crypto/random.h"
#include "evidence/byte_reader.h"
#include "evidence/sgx/report.h"

namespace coffer::runtime::appenclave {
namespace {

constexpr std::string_view kSealedFormat = "coffer-efs-sealed-key-v1";
constexpr std::string_view kRequestLabel = "coffer-efs-key-request-v1";
constexpr std::string_view kResponseLabel = "coffer-efs-key-response-v1";
constexpr std::string_view kHkdfSalt = "coffer-efs-key-v1";
constexpr std::size_t kReportBodySize = 384;
constexpr std::size_t kReportSize = 384 + 32 + 16;  // body || KEYID || MAC
constexpr std::size_t kPublicKeySize = 65;          // 0x04 || x || y
constexpr std::size_t kNonceSize = 12;
constexpr std::size_t kTagSize = 16;
constexpr std::size_t kPlainSize = kBundleKeySize + 8;  // key || u64le generation
constexpr std::size_t kMaxSealedKeyBytes = 4096;
constexpr std::uint64_t kFlagsDebug = 1ULL << 1;

void put_u64le(Bytes& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
std::uint64_t get_u64le(ByteView in) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | in[static_cast<std::size_t>(i)];
  return v;
}
void append(Bytes& out, ByteView b) { out.insert(out.end(), b.begin(), b.end()); }
void append(Bytes& out, std::string_view s) { out.insert(out.end(), s.begin(), s.end()); }

// The identity in a REPORT's body (the MAC is checked by the quote service, not here).
Result<std::pair<EnclaveIdentity, Fixed<64>>> parse_body(ByteView report, std::string_view code) {
  if (report.size() != kReportSize) {
    return make_error(std::string(code), "a REPORT is " + std::to_string(kReportSize) +
                                             " bytes, got " + std::to_string(report.size()));
  }
  evidence::ByteReader in(report.first(kReportBodySize), std::string(code));
  auto body = evidence::sgx::read_enclave_report(in);
  if (!body) return make_error(std::string(code), "REPORT body: " + body.error().message);
  EnclaveIdentity id;
  id.mr_enclave = body->mr_enclave;
  id.mr_signer = body->mr_signer;
  id.isv_prod_id = body->isv_prod_id;
  id.isv_svn = body->isv_svn;
  id.flags = get_u64le(body->attributes_flags);
  return std::pair{id, body->report_data};
}

Bytes plaintext_of(const BundleKey& key) {
  Bytes plain = key.key;
  put_u64le(plain, key.generation);
  return plain;
}

Result<BundleKey> bundle_key_of(Bytes plain) {
  if (plain.size() != kPlainSize) {
    crypto::cleanse(plain);
    return make_error("unseal_failed", "the decrypted key has the wrong size");
  }
  BundleKey out;
  out.key.assign(plain.begin(), plain.begin() + kBundleKeySize);
  out.generation = get_u64le(ByteView(plain).subspan(kBundleKeySize));
  crypto::cleanse(plain);
  return out;
}

Status check_key(const BundleKey& key) {
  if (key.key.size() != kBundleKeySize) {
    return make_error("bad_key", "a bundle key is " + std::to_string(kBundleKeySize) + " bytes");
  }
  return ok();
}

Bytes sealed_aad(std::string_view bundle_id) {
  Bytes aad;
  append(aad, kSealedFormat);
  aad.push_back(0);
  append(aad, bundle_id);
  return aad;
}

Bytes request_report_data(std::string_view bundle_id, ByteView public_key) {
  Bytes in;
  append(in, kRequestLabel);
  in.push_back(0);
  append(in, bundle_id);
  in.push_back(0);
  append(in, public_key);
  return crypto::sha256(in);
}

Bytes response_report_data(std::string_view bundle_id, ByteView request_public_key,
                           ByteView response_public_key, ByteView ciphertext) {
  Bytes in;
  append(in, kResponseLabel);
  in.push_back(0);
  append(in, bundle_id);
  in.push_back(0);
  append(in, request_public_key);
  append(in, response_public_key);
  append(in, ciphertext);
  return crypto::sha256(in);
}

// REPORTDATA is 64 bytes: our 32-byte digest, zero-padded.
bool report_data_binds(const Fixed<64>& report_data, ByteView digest) {
  Bytes expected(64, 0);
  std::copy(digest.begin(), digest.end(), expected.begin());
  return constant_time_equal(ByteView(report_data), ByteView(expected));
}

Bytes encode_public(const crypto::EcPoint& p) {
  Bytes out{0x04};
  append(out, p.x);
  append(out, p.y);
  return out;
}

Result<crypto::Key> decode_public(ByteView pub, std::string_view code) {
  if (pub.size() != kPublicKeySize || pub[0] != 0x04) {
    return make_error(std::string(code), "the public key is not an uncompressed P-256 point");
  }
  crypto::EcPoint p;
  p.x.assign(pub.begin() + 1, pub.begin() + 33);
  p.y.assign(pub.begin() + 33, pub.end());
  auto key = crypto::Key::ec_from_point(crypto::KeyType::kEcP256, p);
  if (!key) return make_error(std::string(code), "the public key is not a P-256 point");
  return std::move(*key);
}

// The peer is an enclave of our signer and product, and not a debug enclave unless we are one.
Status check_peer(const EnclaveIdentity& self, const EnclaveIdentity& peer) {
  if (!constant_time_equal(ByteView(peer.mr_signer), ByteView(self.mr_signer))) {
    return make_error(std::string(kPeerRefused), "the peer enclave has another signer (MRSIGNER " +
                                                     hex_encode(peer.mr_signer) + ")");
  }
  if (peer.isv_prod_id != self.isv_prod_id) {
    return make_error(std::string(kPeerRefused),
                      "the peer enclave has another product id (ISVPRODID " +
                          std::to_string(peer.isv_prod_id) + ", ours " +
                          std::to_string(self.isv_prod_id) + ")");
  }
  if ((peer.flags & kFlagsDebug) != 0 && (self.flags & kFlagsDebug) == 0) {
    return make_error(std::string(kPeerRefused), "the peer is a debug enclave");
  }
  return ok();
}

Result<Bytes> transport_key(const crypto::Key& own, const crypto::Key& peer_public,
                            ByteView request_report) {
  Bytes shared = COFFER_TRY(own.ecdh(peer_public));
  auto k = crypto::hkdf_sha256(shared, as_bytes(kHkdfSalt), crypto::sha256(request_report), 32);
  crypto::cleanse(shared);
  return k;
}

}  // namespace

Result<EnclaveIdentity> self_identity(const evidence::sim::QuoteServiceClient& qs) {
  Fixed<32> zero{};
  Bytes report = COFFER_TRY(qs.report(zero, {}));
  auto parsed = COFFER_TRY(parse_body(report, "quote_service_error"));
  return parsed.first;
}

// ---- sealing

Result<std::string> seal_bundle_key(const evidence::sim::QuoteServiceClient& qs,
                                    std::string_view bundle_id, const BundleKey& key) {
  COFFER_TRY_STATUS(check_key(key));
  EnclaveIdentity self = COFFER_TRY(self_identity(qs));
  Bytes key_id = crypto::random_bytes(32);
  Bytes seal_key = COFFER_TRY(qs.seal_key("mrsigner", key_id, self.isv_svn));
  Bytes nonce = crypto::random_bytes(kNonceSize);
  Bytes plain = plaintext_of(key);
  auto sealed = crypto::aes_gcm_encrypt(seal_key, nonce, plain, sealed_aad(bundle_id));
  crypto::cleanse(plain);
  crypto::cleanse(seal_key);
  if (!sealed) return std::unexpected(sealed.error());
  Bytes ct = std::move(sealed->ciphertext);
  append(ct, sealed->tag);
  Json doc = {{"format", kSealedFormat},       {"policy", "mrsigner"},
              {"isv_svn", self.isv_svn},       {"key_id", hex_encode(key_id)},
              {"nonce", base64_encode(nonce)}, {"ciphertext", base64_encode(ct)}};
  return doc.dump() + "\n";
}

Result<BundleKey> unseal_bundle_key(const evidence::sim::QuoteServiceClient& qs,
                                    std::string_view bundle_id, std::string_view text) {
  auto bad = [](const std::string& why) { return make_error(std::string(kBadSealedKey), why); };
  auto doc = parse_json(text, JsonLimits{.max_bytes = kMaxSealedKeyBytes, .max_depth = 2});
  if (!doc) return bad("not a sealed-key file: " + doc.error().message);
  if (!doc->is_object()) return bad("not a JSON object");
  for (const auto& [name, value] : doc->items()) {
    static constexpr std::array kKnown = {"format", "policy", "isv_svn",
                                          "key_id", "nonce",  "ciphertext"};
    if (std::ranges::find(kKnown, name) == kKnown.end()) {
      return bad("unknown member " + printable_excerpt(name, 40));
    }
  }
  auto str = [&](std::string_view name) -> Result<std::string> {
    auto it = doc->find(name);
    if (it == doc->end() || !it->is_string())
      return bad("missing string \"" + std::string(name) + "\"");
    return it->get<std::string>();
  };
  if (COFFER_TRY(str("format")) != kSealedFormat) return bad("unknown format");
  if (COFFER_TRY(str("policy")) != "mrsigner") return bad("the policy must be \"mrsigner\"");
  auto svn = doc->find("isv_svn");
  if (svn == doc->end() || !svn->is_number_unsigned() || svn->get<std::uint64_t>() > 0xffff) {
    return bad("isv_svn must be an integer 0..65535");
  }
  auto key_id = hex_decode(COFFER_TRY(str("key_id")));
  if (!key_id || key_id->size() != 32) return bad("key_id must be 64 hex digits");
  auto nonce = base64_decode(COFFER_TRY(str("nonce")));
  if (!nonce || nonce->size() != kNonceSize) return bad("nonce must be 12 bytes of base64");
  auto ct = base64_decode(COFFER_TRY(str("ciphertext")));
  if (!ct || ct->size() != kPlainSize + kTagSize) {
    return bad("ciphertext must be " + std::to_string(kPlainSize + kTagSize) + " bytes of base64");
  }
  Bytes seal_key = COFFER_TRY(
      qs.seal_key("mrsigner", *key_id, static_cast<std::uint16_t>(svn->get<std::uint64_t>())));
  ByteView all(*ct);
  auto plain = crypto::aes_gcm_decrypt(seal_key, *nonce, all.first(kPlainSize),
                                       all.subspan(kPlainSize), sealed_aad(bundle_id));
  crypto::cleanse(seal_key);
  if (!plain) {
    return make_error(std::string(kUnsealFailed),
                      "the sealed key does not open under this enclave's sealing key (another "
                      "signer or product, another bundle, or an altered file)");
  }
  return bundle_key_of(std::move(*plain));
}

// ---- local attestation

Result<KeyRequester> KeyRequester::create(const evidence::sim::QuoteServiceClient& qs,
                                          std::string bundle_id,
                                          const Fixed<32>& agent_mr_enclave) {
  KeyRequester r;
  r.self_ = COFFER_TRY(self_identity(qs));
  r.bundle_id_ = std::move(bundle_id);
  crypto::Key key = COFFER_TRY(crypto::Key::generate(crypto::KeyType::kEcP256));
  r.request_.public_key = encode_public(COFFER_TRY(key.ec_point()));
  r.private_key_ = std::move(key);
  r.request_.report = COFFER_TRY(
      qs.report(agent_mr_enclave, request_report_data(r.bundle_id_, r.request_.public_key)));
  return r;
}

Result<BundleKey> KeyRequester::accept(const evidence::sim::QuoteServiceClient& qs,
                                       const KeyResponse& response) const {
  auto bad = [](const std::string& why) { return make_error(std::string(kBadKeyResponse), why); };
  if (response.report.size() != kReportSize) return bad("the REPORT has the wrong size");
  crypto::Key peer_public = COFFER_TRY(decode_public(response.public_key, kBadKeyResponse));
  if (response.ciphertext.size() != kNonceSize + kPlainSize + kTagSize) {
    return bad("the ciphertext has the wrong size");
  }
  // Made for us (only our report key verifies its MAC) ...
  COFFER_TRY(qs.verify_report(response.report));
  auto [peer, report_data] = COFFER_TRY(parse_body(response.report, kBadKeyResponse));
  // ... by an enclave of our signer and product ...
  COFFER_TRY_STATUS(check_peer(self_, peer));
  // ... binding our request and its answer.
  if (!report_data_binds(report_data,
                         response_report_data(bundle_id_, request_.public_key, response.public_key,
                                              response.ciphertext))) {
    return make_error(std::string(kPeerRefused),
                      "the agent's REPORT does not bind this request and its answer");
  }
  Bytes k = COFFER_TRY(transport_key(*private_key_, peer_public, request_.report));
  ByteView ct(response.ciphertext);
  auto plain = crypto::aes_gcm_decrypt(k, ct.first(kNonceSize), ct.subspan(kNonceSize, kPlainSize),
                                       ct.subspan(kNonceSize + kPlainSize), as_bytes(bundle_id_));
  crypto::cleanse(k);
  if (!plain) return bad("the key does not decrypt");
  return bundle_key_of(std::move(*plain));
}

Result<KeyResponse> answer_key_request(const evidence::sim::QuoteServiceClient& qs,
                                       std::string_view bundle_id, const KeyRequest& request,
                                       const BundleKey& key) {
  auto bad = [](const std::string& why) { return make_error(std::string(kBadKeyRequest), why); };
  COFFER_TRY_STATUS(check_key(key));
  if (request.report.size() != kReportSize) return bad("the REPORT has the wrong size");
  crypto::Key peer_public = COFFER_TRY(decode_public(request.public_key, kBadKeyRequest));
  EnclaveIdentity self = COFFER_TRY(self_identity(qs));
  // Made for us (report_mac_mismatch otherwise) ...
  COFFER_TRY(qs.verify_report(request.report));
  auto [peer, report_data] = COFFER_TRY(parse_body(request.report, kBadKeyRequest));
  // ... by an enclave of our signer and product ...
  COFFER_TRY_STATUS(check_peer(self, peer));
  // ... for this bundle and this public key.
  if (!report_data_binds(report_data, request_report_data(bundle_id, request.public_key))) {
    return make_error(std::string(kPeerRefused),
                      "the request's REPORT does not bind this bundle and public key");
  }
  crypto::Key own = COFFER_TRY(crypto::Key::generate(crypto::KeyType::kEcP256));
  KeyResponse response;
  response.public_key = encode_public(COFFER_TRY(own.ec_point()));
  Bytes k = COFFER_TRY(transport_key(own, peer_public, request.report));
  Bytes nonce = crypto::random_bytes(kNonceSize);
  Bytes plain = plaintext_of(key);
  auto sealed = crypto::aes_gcm_encrypt(k, nonce, plain, as_bytes(bundle_id));
  crypto::cleanse(plain);
  crypto::cleanse(k);
  if (!sealed) return std::unexpected(sealed.error());
  response.ciphertext = std::move(nonce);
  append(response.ciphertext, sealed->ciphertext);
  append(response.ciphertext, sealed->tag);
  response.report = COFFER_TRY(
      qs.report(peer.mr_enclave, response_report_data(bundle_id, request.public_key,
                                                      response.public_key, response.ciphertext)));
  return response;
}

}  // namespace coffer::runtime::appenclave
