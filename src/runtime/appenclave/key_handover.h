// How the key of an exported bundle's encrypted filesystem passes from the agent enclave to the
// app enclave in the SGX-style two-enclave flow (docs/two-enclave.md): sealed under the MRSIGNER
// policy into a file on host storage, or handed over after local attestation (REPORTs both ways,
// ECDH, AES-256-GCM). Both enclaves link this one implementation; each talks only to its own
// quote service (the simulated CPU: EREPORT, report verification, EGETKEY).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/error.h"
#include "crypto/pkey.h"
#include "evidence/byte_reader.h"
#include "evidence/sim/quote_client.h"

namespace coffer::runtime::appenclave {

using evidence::Fixed;

// Error codes (besides the quote service's own).
inline constexpr std::string_view kBadSealedKey = "bad_sealed_key";  // malformed file
// The file does not open under this enclave's sealing key (another signer, product, or an
// altered file): AES-GCM fails.
inline constexpr std::string_view kUnsealFailed = "unseal_failed";
inline constexpr std::string_view kBadKeyRequest = "bad_key_request";    // malformed request
inline constexpr std::string_view kBadKeyResponse = "bad_key_response";  // malformed response
// A peer's REPORT verified but names another signer or product, carries DEBUG when we do not,
// or its report data does not bind the exchanged keys.
inline constexpr std::string_view kPeerRefused = "peer_refused";

inline constexpr std::size_t kBundleKeySize = 32;

// The efs key of one exported bundle and the efs generation right after the export: the app
// enclave opens the filesystem with min_generation = generation (an older copy is a rollback).
struct BundleKey {
  Bytes key;  // 32 bytes
  std::uint64_t generation = 0;
};

// The calling enclave's own identity, read from the body of a REPORT it makes for itself (an
// all-zero target: the body is in the clear, only its MAC is for the target).
struct EnclaveIdentity {
  evidence::Fixed<32> mr_enclave{};
  evidence::Fixed<32> mr_signer{};
  std::uint16_t isv_prod_id = 0;
  std::uint16_t isv_svn = 0;
  std::uint64_t flags = 0;  // ATTRIBUTES.FLAGS
};
Result<EnclaveIdentity> self_identity(const evidence::sim::QuoteServiceClient& qs);

// ---- sealing (MRSIGNER policy, the sealing enclave's ISVSVN)

// The sealed-key file's text (docs/two-enclave.md "Sealed key file"). The key id is random; the
// bundle id is bound in as associated data.
Result<std::string> seal_bundle_key(const evidence::sim::QuoteServiceClient& qs,
                                    std::string_view bundle_id, const BundleKey& key);
// Opens a sealed-key file made by an enclave of the same signer and product (ISVSVN at most
// ours). bad_sealed_key, unseal_failed, or the quote service's error (svn_too_high...).
Result<BundleKey> unseal_bundle_key(const evidence::sim::QuoteServiceClient& qs,
                                    std::string_view bundle_id, std::string_view text);

// ---- local attestation

// The app enclave's request: its REPORT for the agent enclave with report data
// SHA-256("coffer-efs-key-request-v1" 0x00 || bundle id || 0x00 || public key), and its
// ephemeral P-256 public key (uncompressed point, 65 bytes).
struct KeyRequest {
  Bytes report;
  Bytes public_key;
};
// The agent enclave's answer: its REPORT for the requesting app enclave, its ephemeral public key
// and the key sealed to the app's public key (docs/two-enclave.md "Local attestation").
struct KeyResponse {
  Bytes report;
  Bytes public_key;
  Bytes ciphertext;  // nonce (12) || AES-256-GCM(BundleKey as 32 bytes || u64le generation) || tag
};

// The app enclave side.
class KeyRequester {
 public:
  // `agent_mr_enclave`: the target of the request (from the host: if it lies, the agent cannot
  // verify the REPORT and refuses).
  static Result<KeyRequester> create(const evidence::sim::QuoteServiceClient& qs,
                                     std::string bundle_id,
                                     const evidence::Fixed<32>& agent_mr_enclave);
  [[nodiscard]] const KeyRequest& request() const { return request_; }
  // Verifies the agent's REPORT with our own quote service (made for us, same signer and
  // product, binds our request and its answer), then decrypts.
  Result<BundleKey> accept(const evidence::sim::QuoteServiceClient& qs,
                           const KeyResponse& response) const;

 private:
  KeyRequester() = default;
  std::string bundle_id_;
  std::optional<crypto::Key> private_key_;
  KeyRequest request_;
  EnclaveIdentity self_;
};

// The agent enclave side: verifies the request's REPORT with its own quote service (made for
// it, same signer and product, binds the public key) and answers.
Result<KeyResponse> answer_key_request(const evidence::sim::QuoteServiceClient& qs,
                                       std::string_view bundle_id, const KeyRequest& request,
                                       const BundleKey& key);

}  // namespace coffer::runtime::appenclave
