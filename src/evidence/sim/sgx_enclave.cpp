#include "evidence/sim/sgx_enclave.h"

#include <algorithm>

#include "core/json.h"
#include "crypto/digest.h"
#include "crypto/kdf.h"
#include "crypto/random.h"

namespace coffer::evidence::sim {
namespace {

constexpr std::string_view kKdfSalt = "coffer-sim-sgx-v1";
constexpr std::uint64_t kSealFlagsMask = kSgxFlagsInit | kSgxFlagsDebug | kSgxFlagsMode64;

std::unexpected<Error> invalid(std::string message) {
  return make_error("enclave_signature_invalid", std::move(message));
}

Result<crypto::SignatureParams> signature_params(const crypto::Key& key) {
  if (key.type() == crypto::KeyType::kRsa) {
    return crypto::SignatureParams{.digest = crypto::DigestAlg::kSha256,
                                   .rsa_padding = crypto::RsaPadding::kPkcs1v15};
  }
  if (key.type() == crypto::KeyType::kEcP256) {
    return crypto::SignatureParams{.digest = crypto::DigestAlg::kSha256,
                                   .format = crypto::SignatureFormat::kRaw};
  }
  return make_error("bad_signer_key", "the enclave signer key must be RSA or EC P-256, not " +
                                          std::string(crypto::key_type_name(key.type())));
}

std::string hex_u64(std::uint64_t v) {
  std::uint8_t b[8];
  store_le64(b, v);
  return hex_encode(b);
}

Status require_secret(const SimPki& pki) {
  if (pki.platform_secret.size() != 32) {
    return make_error("sgx_unavailable",
                      "the simulation PKI has no platform secret (written before sim-sgx: run "
                      "`coffer sim init --force`)");
  }
  return ok();
}

Result<Bytes> derive(const SimPki& pki, ByteView info) {
  return crypto::hkdf_sha256(pki.platform_secret, as_bytes(kKdfSalt), info, 32);
}

Result<Bytes> report_key(const SimPki& pki, const Fixed<32>& target, ByteView key_id) {
  Bytes info = to_bytes("report");
  info.push_back(0);
  info.insert(info.end(), target.begin(), target.end());
  info.insert(info.end(), key_id.begin(), key_id.end());
  return derive(pki, info);
}

Bytes report_mac(ByteView key, ByteView body, ByteView key_id) {
  Bytes data(body.begin(), body.end());
  data.insert(data.end(), key_id.begin(), key_id.end());
  Bytes mac = crypto::hmac(crypto::DigestAlg::kSha256, key, data);
  mac.resize(16);
  return mac;
}

}  // namespace

Result<Fixed<32>> sgx_mr_signer(const crypto::Key& key) {
  Bytes material;
  if (key.type() == crypto::KeyType::kRsa) {
    auto c = COFFER_TRY(key.rsa_components());
    std::size_t size = static_cast<std::size_t>((key.rsa_bits() + 7) / 8);
    Bytes n = c.n;
    // big-endian, possibly with a leading zero -> exactly `size` bytes little-endian
    while (n.size() > size && n.front() == 0) n.erase(n.begin());
    if (n.size() > size) return make_error("bad_signer_key", "RSA modulus larger than the key");
    material.assign(size - n.size(), 0);
    material.insert(material.end(), n.begin(), n.end());
    std::reverse(material.begin(), material.end());
  } else if (key.type() == crypto::KeyType::kEcP256) {
    auto p = COFFER_TRY(key.ec_point());
    material = p.x;
    material.insert(material.end(), p.y.begin(), p.y.end());
  } else {
    return make_error("bad_signer_key", "the enclave signer key must be RSA or EC P-256");
  }
  Bytes h = crypto::sha256(material);
  Fixed<32> out{};
  std::copy(h.begin(), h.end(), out.begin());
  return out;
}

Bytes sigstruct_signed_bytes(const SgxSigstruct& s) {
  Bytes out = to_bytes(kSigstructFormat);
  out.push_back(0);
  out.insert(out.end(), s.mr_enclave.begin(), s.mr_enclave.end());
  std::uint8_t b[8];
  store_le16(b, s.isv_prod_id);
  out.insert(out.end(), b, b + 2);
  store_le16(b, s.isv_svn);
  out.insert(out.end(), b, b + 2);
  store_le64(b, s.flags);
  out.insert(out.end(), b, b + 8);
  store_le64(b, s.xfrm);
  out.insert(out.end(), b, b + 8);
  return out;
}

Result<std::string> sign_sigstruct(const SgxSigstruct& s, const crypto::Key& signer) {
  if (!signer.has_private()) return make_error("bad_signer_key", "the signer key is public only");
  auto params = COFFER_TRY(signature_params(signer));
  Bytes sig = COFFER_TRY(signer.sign(sigstruct_signed_bytes(s), params));
  Json j = {{"format", std::string(kSigstructFormat)},
            {"mr_enclave", hex_encode(s.mr_enclave)},
            {"isv_prod_id", s.isv_prod_id},
            {"isv_svn", s.isv_svn},
            {"flags", hex_u64(s.flags)},
            {"xfrm", hex_u64(s.xfrm)},
            {"signer", signer.public_pem()},
            {"signature", base64_encode(sig)}};
  return j.dump(2) + "\n";
}

Result<SgxIdentity> verify_sigstruct(std::string_view text, const Fixed<32>& measured_mr_enclave) {
  auto j = parse_json(text, {.max_bytes = kMaxSigstructBytes, .max_depth = 4});
  if (!j || !j->is_object()) return invalid("the enclave signature is not a JSON object");
  if (json_optional_string(*j, "format").value_or("") != kSigstructFormat)
    return invalid("the enclave signature's format is not " + std::string(kSigstructFormat));
  auto u16 = [&](const char* name) -> Result<std::uint16_t> {
    auto it = j->find(name);
    if (it == j->end() || !it->is_number_unsigned() || it->get<std::uint64_t>() > 0xffff)
      return invalid(std::string("the enclave signature needs ") + name + " (0..65535)");
    return static_cast<std::uint16_t>(it->get<std::uint64_t>());
  };
  auto hex_fixed = [&](const char* name, std::size_t size) -> Result<Bytes> {
    auto s = json_optional_string(*j, name);
    auto b = hex_decode(s.value_or("-"));
    if (!b || b->size() != size)
      return invalid(std::string("the enclave signature needs ") + name + " (hex)");
    return std::move(*b);
  };
  SgxSigstruct s;
  Bytes mr = COFFER_TRY(hex_fixed("mr_enclave", 32));
  std::copy(mr.begin(), mr.end(), s.mr_enclave.begin());
  s.isv_prod_id = COFFER_TRY(u16("isv_prod_id"));
  s.isv_svn = COFFER_TRY(u16("isv_svn"));
  s.flags = load_le64(COFFER_TRY(hex_fixed("flags", 8)).data());
  s.xfrm = load_le64(COFFER_TRY(hex_fixed("xfrm", 8)).data());
  auto pem = json_optional_string(*j, "signer");
  auto sig_b64 = json_optional_string(*j, "signature");
  if (!pem || !sig_b64) return invalid("the enclave signature needs signer and signature");
  auto sig = base64_decode(*sig_b64);
  if (!sig) return invalid("the enclave signature's signature is not base64");
  auto key = crypto::Key::from_pem(*pem);
  if (!key) return invalid("the enclave signature's signer is not a public key PEM");
  if (key->has_private()) return invalid("the enclave signature carries a private key");
  auto params = signature_params(*key);
  if (!params) return invalid(params.error().message);
  if ((s.flags & kSgxFlagsInit) == 0 || (s.flags & ~kSealFlagsMask) != 0)
    return invalid("the enclave signature's ATTRIBUTES.FLAGS are not INIT[|DEBUG][|MODE64]");
  if (!key->verify(sigstruct_signed_bytes(s), *sig, *params))
    return invalid("the enclave signature does not verify with its signer key");
  // Only after the signature: the signed MRENCLAVE is the image's.
  if (!constant_time_equal(s.mr_enclave, measured_mr_enclave)) {
    return invalid("the enclave image was signed as MRENCLAVE " + hex_encode(s.mr_enclave) +
                   ", it measures " + hex_encode(measured_mr_enclave));
  }
  SgxIdentity id;
  id.mr_enclave = s.mr_enclave;
  id.mr_signer = COFFER_TRY(sgx_mr_signer(*key));
  id.isv_prod_id = s.isv_prod_id;
  id.isv_svn = s.isv_svn;
  id.flags = s.flags;
  id.xfrm = s.xfrm;
  return id;
}

Json sgx_reference_values(const SgxIdentity& identity) {
  std::uint8_t b[2];
  store_le16(b, identity.isv_prod_id);
  std::string prod = hex_encode(b);
  store_le16(b, identity.isv_svn);
  return {{"sgx.mr_enclave", hex_encode(identity.mr_enclave)},
          {"sgx.mr_signer", hex_encode(identity.mr_signer)},
          {"sgx.isv_prod_id", prod},
          {"sgx.isv_svn", hex_encode(b)}};
}

Result<Bytes> make_sgx_report(const SimPki& pki, const SgxIdentity& self, const Fixed<32>& target,
                              ByteView report_data) {
  COFFER_TRY_STATUS(require_secret(pki));
  if (report_data.size() > 64)
    return make_error("bad_report_data", "REPORTDATA is at most 64 bytes");
  Bytes body = sgx::serialize_enclave_report(sgx_report_body(pki.platform, self, report_data));
  Bytes key_id = crypto::random_bytes(32);
  Bytes key = COFFER_TRY(report_key(pki, target, key_id));
  Bytes mac = report_mac(key, body, key_id);
  crypto::cleanse(key);
  Bytes out = std::move(body);
  out.insert(out.end(), key_id.begin(), key_id.end());
  out.insert(out.end(), mac.begin(), mac.end());
  return out;
}

Result<sgx::EnclaveReport> verify_sgx_report(const SimPki& pki, const SgxIdentity& self,
                                             ByteView report) {
  COFFER_TRY_STATUS(require_secret(pki));
  if (report.size() != kSgxReportSize)
    return make_error("bad_report", "an SGX REPORT is exactly 432 bytes");
  ByteView body = report.first(384);
  ByteView key_id = report.subspan(384, 32);
  Bytes key = COFFER_TRY(report_key(pki, self.mr_enclave, key_id));
  Bytes mac = report_mac(key, body, key_id);
  crypto::cleanse(key);
  if (!constant_time_equal(mac, report.last(16))) {
    return make_error("report_mac_mismatch",
                      "the REPORT's MAC does not verify with this enclave's report key (made for "
                      "another target, or altered)");
  }
  ByteReader in(body, "bad_report");
  return sgx::read_enclave_report(in);
}

Result<Bytes> sgx_seal_key(const SimPki& pki, const SgxIdentity& self, SealPolicy policy,
                           std::uint16_t isv_svn, ByteView key_id) {
  COFFER_TRY_STATUS(require_secret(pki));
  if (key_id.size() != 32) return make_error("bad_key_id", "KEYID is exactly 32 bytes");
  if (isv_svn > self.isv_svn) {
    return make_error("svn_too_high", "ISVSVN " + std::to_string(isv_svn) +
                                          " is above the enclave's own " +
                                          std::to_string(self.isv_svn));
  }
  Bytes info = to_bytes("seal");
  info.push_back(0);
  info.push_back(static_cast<std::uint8_t>(policy));
  const Fixed<32>& m = policy == SealPolicy::kMrEnclave ? self.mr_enclave : self.mr_signer;
  info.insert(info.end(), m.begin(), m.end());
  std::uint8_t b[8];
  store_le16(b, self.isv_prod_id);
  info.insert(info.end(), b, b + 2);
  store_le16(b, isv_svn);
  info.insert(info.end(), b, b + 2);
  store_le64(b, self.flags & kSealFlagsMask);
  info.insert(info.end(), b, b + 8);
  info.insert(info.end(), key_id.begin(), key_id.end());
  return derive(pki, info);
}

}  // namespace coffer::evidence::sim
