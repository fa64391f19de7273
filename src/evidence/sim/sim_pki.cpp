#include "evidence/sim/sim_pki.h"

#include <sys/stat.h>

#include <algorithm>

#include "core/file.h"
#include "core/json.h"
#include "crypto/der_writer.h"
#include "crypto/digest.h"
#include "crypto/random.h"
#include "crypto/x509_issue.h"

namespace coffer::evidence::sim {
namespace {

namespace fs = std::filesystem;
using crypto::Certificate;
using crypto::CertificateSpec;
using crypto::Key;

constexpr std::string_view kSgxExt = "1.2.840.113741.1.13.1";
constexpr std::string_view kOrg = "Coffer Simulation (NOT A REAL TEE VENDOR)";

std::unexpected<Error> failed(const Error& e, std::string_view what) {
  return make_error("sim_pki_failed", std::string(what) + ": " + e.to_string());
}

// SEQUENCE { OID <kSgxExt>.<suffix>, value }
Result<Bytes> sgx_entry(std::string_view suffix, ByteView value) {
  Bytes oid = COFFER_TRY(crypto::der_oid(std::string(kSgxExt) + "." + std::string(suffix)));
  return crypto::der_sequence({oid, value});
}

// The SGX extensions of a Platform-CA-issued PCK certificate (Intel SGX PCK Certificate and CRL
// Profile, 1.5): PPID, TCB (16 components, PCESVN, CPUSVN), PCE-ID, FMSPC, SGX Type,
// PlatformInstanceID and Configuration.
Result<Bytes> pck_extension(const SimPlatform& p, ByteView ppid, ByteView instance_id) {
  std::vector<Bytes> tcb;
  for (int i = 0; i < 16; ++i) {
    tcb.push_back(COFFER_TRY(sgx_entry("2." + std::to_string(i + 1),
                                       crypto::der_uint(p.cpu_svn[static_cast<std::size_t>(i)]))));
  }
  tcb.push_back(COFFER_TRY(sgx_entry("2.17", crypto::der_uint(p.pce_svn))));
  tcb.push_back(COFFER_TRY(sgx_entry("2.18", crypto::der_octet_string(p.cpu_svn))));
  Bytes oid_tcb = COFFER_TRY(crypto::der_oid(std::string(kSgxExt) + ".2"));
  std::vector<Bytes> top;
  top.push_back(COFFER_TRY(sgx_entry("1", crypto::der_octet_string(ppid))));
  top.push_back(crypto::der_sequence({oid_tcb, crypto::der_sequence_of(tcb)}));
  top.push_back(COFFER_TRY(sgx_entry("3", crypto::der_octet_string(p.pce_id))));
  top.push_back(COFFER_TRY(sgx_entry("4", crypto::der_octet_string(p.fmspc))));
  top.push_back(COFFER_TRY(sgx_entry("5", crypto::der_tlv(0x0a, Bytes{0x01}))));  // Scalable
  top.push_back(COFFER_TRY(sgx_entry("6", crypto::der_octet_string(instance_id))));
  Bytes cfg_oid = COFFER_TRY(crypto::der_oid(std::string(kSgxExt) + ".7"));
  std::vector<Bytes> cfg;
  cfg.push_back(COFFER_TRY(sgx_entry("7.1", crypto::der_tlv(0x01, Bytes{0x00}))));  // dynamic
  cfg.push_back(COFFER_TRY(sgx_entry("7.2", crypto::der_tlv(0x01, Bytes{0x00}))));  // cached keys
  cfg.push_back(COFFER_TRY(sgx_entry("7.3", crypto::der_tlv(0x01, Bytes{0x00}))));  // SMT
  top.push_back(crypto::der_sequence({cfg_oid, crypto::der_sequence_of(cfg)}));
  return crypto::der_sequence_of(top);
}

// AMD VCEK extensions (KDS interface spec #57230, "VCEK Certificate Extensions").
Result<std::vector<crypto::CertificateExtension>> vcek_extensions(const SimPlatform& p) {
  auto spl = [](std::string_view n, std::uint8_t v) -> Result<crypto::CertificateExtension> {
    return crypto::CertificateExtension{"1.3.6.1.4.1.3704.1.3." + std::string(n),
                                        crypto::der_uint(v)};
  };
  std::vector<crypto::CertificateExtension> out;
  out.push_back({"1.3.6.1.4.1.3704.1.1", crypto::der_uint(1)});  // structVersion
  out.push_back({"1.3.6.1.4.1.3704.1.2",
                 crypto::der_ia5_string(snp::product_name(p.product))});  // productName
  out.push_back(COFFER_TRY(spl("1", p.snp_tcb.bootloader)));
  out.push_back(COFFER_TRY(spl("2", p.snp_tcb.tee)));
  out.push_back(COFFER_TRY(spl("3", p.snp_tcb.snp)));
  out.push_back(COFFER_TRY(spl("8", p.snp_tcb.microcode)));
  if (p.product == snp::Product::kTurin) out.push_back(COFFER_TRY(spl("9", p.snp_tcb.fmc)));
  out.push_back({"1.3.6.1.4.1.3704.1.4", crypto::der_octet_string(p.chip_id)});  // hwID
  return out;
}

std::string rfc3339(TimePoint t) {
  return format_rfc3339(std::chrono::time_point_cast<std::chrono::seconds>(t));
}

std::string upper_hex(ByteView b) {
  std::string s = hex_encode(b);
  std::transform(s.begin(), s.end(), s.begin(), [](char c) { return std::toupper(c); });
  return s;
}

Json components(ByteView svns) {
  Json a = Json::array();
  for (auto v : svns) a.push_back({{"svn", v}});
  return a;
}

// {"<member>": <body>, "signature": "<hex r||s>"} with the signature over the body's exact text,
// as Intel PCS signs TCB info and enclave identity.
Result<std::string> sign_collateral(std::string_view member, const Json& body, const Key& key) {
  std::string text = body.dump();
  Bytes sig = COFFER_TRY(key.sign(as_bytes(text), {.digest = crypto::DigestAlg::kSha256,
                                                   .format = crypto::SignatureFormat::kRaw}));
  return "{\"" + std::string(member) + "\":" + text + ",\"signature\":\"" + hex_encode(sig) + "\"}";
}

Result<std::string> tcb_info(const SimPki& pki, const SimPkiOptions& o) {
  const SimPlatform& p = pki.platform;
  // Intel signs the TDX module: MRSIGNER_SEAM is zero.
  std::string zeros48 = upper_hex(Bytes(48, 0));
  Json module_levels = Json::array({{{"tcb", {{"isvsvn", p.tee_tcb_svn[0]}}},
                                     {"tcbDate", rfc3339(o.now)},
                                     {"tcbStatus", "UpToDate"}}});
  char module_id[8];
  std::snprintf(module_id, sizeof module_id, "TDX_%02X", p.tee_tcb_svn[1]);
  Json body = {{"id", "TDX"},
               {"version", 3},
               {"issueDate", rfc3339(o.now)},
               {"nextUpdate", rfc3339(o.now + o.collateral_lifetime)},
               {"fmspc", upper_hex(p.fmspc)},
               {"pceId", upper_hex(p.pce_id)},
               {"tcbType", 0},
               {"tcbEvaluationDataNumber", 1},
               {"tdxModule",
                {{"mrsigner", zeros48},
                 {"attributes", "0000000000000000"},
                 {"attributesMask", "FFFFFFFFFFFFFFFF"}}},
               {"tdxModuleIdentities", Json::array({{{"id", module_id},
                                                     {"mrsigner", zeros48},
                                                     {"attributes", "0000000000000000"},
                                                     {"attributesMask", "FFFFFFFFFFFFFFFF"},
                                                     {"tcbLevels", module_levels}}})},
               {"tcbLevels", Json::array({{{"tcb",
                                            {{"sgxtcbcomponents", components(p.cpu_svn)},
                                             {"pcesvn", p.pce_svn},
                                             {"tdxtcbcomponents", components(p.tee_tcb_svn)}}},
                                           {"tcbDate", rfc3339(o.now)},
                                           {"tcbStatus", "UpToDate"}}})}};
  return sign_collateral("tcbInfo", body, pki.tcb_signing_key);
}

// SGX TCB info v3 (id "SGX"): one level, the platform's CPUSVN components and PCESVN, up to date.
Result<std::string> sgx_tcb_info(const SimPki& pki, const SimPkiOptions& o) {
  const SimPlatform& p = pki.platform;
  Json body = {
      {"id", "SGX"},
      {"version", 3},
      {"issueDate", rfc3339(o.now)},
      {"nextUpdate", rfc3339(o.now + o.collateral_lifetime)},
      {"fmspc", upper_hex(p.fmspc)},
      {"pceId", upper_hex(p.pce_id)},
      {"tcbType", 0},
      {"tcbEvaluationDataNumber", 1},
      {"tcbLevels",
       Json::array({{{"tcb", {{"sgxtcbcomponents", components(p.cpu_svn)}, {"pcesvn", p.pce_svn}}},
                     {"tcbDate", rfc3339(o.now)},
                     {"tcbStatus", "UpToDate"}}})}};
  return sign_collateral("tcbInfo", body, pki.tcb_signing_key);
}

Result<std::string> qe_identity(const SimPki& pki, const SimPkiOptions& o, bool sgx = false) {
  const SimPlatform& p = pki.platform;
  Json body = {{"id", sgx ? "QE" : "TD_QE"},
               {"version", 2},
               {"issueDate", rfc3339(o.now)},
               {"nextUpdate", rfc3339(o.now + o.collateral_lifetime)},
               {"tcbEvaluationDataNumber", 1},
               {"miscselect", "00000000"},
               {"miscselectMask", "FFFFFFFF"},
               {"attributes", "11000000000000000000000000000000"},
               {"attributesMask", "FBFFFFFFFFFFFFFF0000000000000000"},
               {"mrsigner", upper_hex(p.qe_mr_signer)},
               {"isvprodid", sgx ? 1 : 2},
               {"tcbLevels", Json::array({{{"tcb", {{"isvsvn", p.qe_isv_svn}}},
                                           {"tcbDate", rfc3339(o.now)},
                                           {"tcbStatus", "UpToDate"}}})}};
  return sign_collateral("enclaveIdentity", body, pki.tcb_signing_key);
}

template <std::size_t N>
void fill_from_digest(Fixed<N>& out, std::string_view label) {
  Bytes d = crypto::sha512(as_bytes(label));
  std::copy_n(d.begin(), N, out.begin());
}

// ---- persistence
Json platform_to_json(const SimPlatform& p) {
  return {{"fmspc", hex_encode(p.fmspc)},
          {"pce_id", hex_encode(p.pce_id)},
          {"cpu_svn", hex_encode(p.cpu_svn)},
          {"pce_svn", p.pce_svn},
          {"tee_tcb_svn", hex_encode(p.tee_tcb_svn)},
          {"mr_seam", hex_encode(p.mr_seam)},
          {"qe_isv_svn", p.qe_isv_svn},
          {"qe_mr_signer", hex_encode(p.qe_mr_signer)},
          {"qe_mr_enclave", hex_encode(p.qe_mr_enclave)},
          {"product", std::string(snp::product_name(p.product))},
          {"snp_tcb",
           {{"fmc", p.snp_tcb.fmc},
            {"bootloader", p.snp_tcb.bootloader},
            {"tee", p.snp_tcb.tee},
            {"snp", p.snp_tcb.snp},
            {"microcode", p.snp_tcb.microcode}}},
          {"chip_id", hex_encode(p.chip_id)}};
}

template <typename Out>
Status hex_field(const Json& j, const char* key, Out& out, std::size_t size) {
  auto s = json_string(j, key);
  if (!s) return make_error("sim_pki_invalid", std::string("sim.json: ") + key);
  auto b = hex_decode(*s);
  if (!b || b->size() != size)
    return make_error("sim_pki_invalid", std::string("sim.json: bad ") + key);
  if constexpr (std::is_same_v<Out, Bytes>) {
    out = *b;
  } else {
    std::copy(b->begin(), b->end(), out.begin());
  }
  return ok();
}

Result<SimPlatform> platform_from_json(const Json& j) {
  SimPlatform p;
  try {
    COFFER_TRY_STATUS(hex_field(j, "fmspc", p.fmspc, 6));
    COFFER_TRY_STATUS(hex_field(j, "pce_id", p.pce_id, 2));
    COFFER_TRY_STATUS(hex_field(j, "cpu_svn", p.cpu_svn, 16));
    COFFER_TRY_STATUS(hex_field(j, "tee_tcb_svn", p.tee_tcb_svn, 16));
    COFFER_TRY_STATUS(hex_field(j, "mr_seam", p.mr_seam, 48));
    COFFER_TRY_STATUS(hex_field(j, "qe_mr_signer", p.qe_mr_signer, 32));
    COFFER_TRY_STATUS(hex_field(j, "qe_mr_enclave", p.qe_mr_enclave, 32));
    COFFER_TRY_STATUS(hex_field(j, "chip_id", p.chip_id, 64));
    p.pce_svn = j.at("pce_svn").get<std::uint16_t>();
    p.qe_isv_svn = j.at("qe_isv_svn").get<std::uint16_t>();
    auto product = snp::product_from_name(j.at("product").get<std::string>());
    if (!product) return make_error("sim_pki_invalid", "sim.json: unknown product");
    p.product = *product;
    const Json& t = j.at("snp_tcb");
    p.snp_tcb = {.fmc = t.at("fmc").get<std::uint8_t>(),
                 .bootloader = t.at("bootloader").get<std::uint8_t>(),
                 .tee = t.at("tee").get<std::uint8_t>(),
                 .snp = t.at("snp").get<std::uint8_t>(),
                 .microcode = t.at("microcode").get<std::uint8_t>()};
  } catch (const Json::exception& e) {
    return make_error("sim_pki_invalid", std::string("sim.json: ") + e.what());
  }
  return p;
}

Status write_text(const fs::path& path, std::string_view text, mode_t mode = 0644) {
  auto s = write_file_atomic(path, as_bytes(text), mode);
  if (!s) return wrap_error(s.error(), "writing " + path.string());
  if (::chmod(path.c_str(), mode) != 0)
    return make_error("io_error", "cannot set the mode of " + path.string());
  return ok();
}

Status write_key(const fs::path& path, const Key& key) {
  std::string pem = COFFER_TRY(key.private_pem());
  return write_text(path, pem, 0600);
}

Result<Key> read_key(const fs::path& path) {
  auto text = read_text_file(path, 1 << 20);
  if (!text) return wrap_error(text.error(), "reading " + path.string());
  auto k = Key::from_pem(*text);
  if (!k) return make_error("sim_pki_invalid", path.string() + ": " + k.error().message);
  return k;
}

Result<Certificate> read_cert(const fs::path& path) {
  auto text = read_text_file(path, 1 << 20);
  if (!text) return wrap_error(text.error(), "reading " + path.string());
  auto c = Certificate::from_pem(*text);
  if (!c) return make_error("sim_pki_invalid", path.string() + ": " + c.error().message);
  return c;
}

}  // namespace

std::string SimPki::pck_chain_pem() const { return pck.pem() + platform_ca.pem() + root_ca.pem(); }
std::string SimPki::tcb_signing_chain_pem() const { return tcb_signing.pem() + root_ca.pem(); }
std::string SimPki::pck_crl_chain_pem() const { return platform_ca.pem() + root_ca.pem(); }
std::string SimPki::amd_vendor_chain_pem() const { return ask.pem() + ark.pem(); }

Result<SimPki> generate_sim_pki(const SimPkiOptions& o, const SimPlatform& platform) {
  auto run = [&]() -> Result<SimPki> {
    SimPlatform p = platform;
    if (p.qe_mr_signer == Fixed<32>{}) fill_from_digest(p.qe_mr_signer, "coffer sim QE signer");
    if (p.qe_mr_enclave == Fixed<32>{}) fill_from_digest(p.qe_mr_enclave, "coffer sim QE");
    if (p.mr_seam == Fixed<48>{}) fill_from_digest(p.mr_seam, "coffer sim TDX module");
    if (p.chip_id == Fixed<64>{}) {
      Bytes r = crypto::random_bytes(64);
      std::copy(r.begin(), r.end(), p.chip_id.begin());
    }
    auto p256 = [] { return Key::generate(crypto::KeyType::kEcP256); };
    CertificateSpec base;
    base.not_before = o.now - std::chrono::hours(24);
    base.not_after = o.now + o.cert_lifetime;

    auto root_key = COFFER_TRY(p256());
    CertificateSpec spec = base;
    spec.subject = {{"CN", "Coffer Simulated SGX Root CA"},
                    {"O", std::string(kOrg)},
                    {"L", "Nowhere"},
                    {"ST", "SIM"},
                    {"C", "US"}};
    spec.ca = true;
    spec.path_len = 1;
    auto root = COFFER_TRY(crypto::issue_certificate(spec, root_key, root_key, nullptr));

    auto platform_ca_key = COFFER_TRY(p256());
    spec.subject[0].second = "Coffer Simulated SGX PCK Platform CA";
    spec.path_len = 0;
    auto platform_ca =
        COFFER_TRY(crypto::issue_certificate(spec, platform_ca_key, root_key, &root));

    auto tcb_key = COFFER_TRY(p256());
    spec.subject[0].second = "Coffer Simulated SGX TCB Signing";
    spec.ca = false;
    spec.path_len.reset();
    auto tcb_signing = COFFER_TRY(crypto::issue_certificate(spec, tcb_key, root_key, &root));

    auto pck_key = COFFER_TRY(p256());
    spec.subject[0].second = "Coffer Simulated SGX PCK Certificate";
    Bytes ppid = crypto::random_bytes(16);
    Bytes instance = crypto::random_bytes(16);
    spec.extensions = {{std::string(kSgxExt), COFFER_TRY(pck_extension(p, ppid, instance))}};
    auto pck = COFFER_TRY(crypto::issue_certificate(spec, pck_key, platform_ca_key, &platform_ca));

    // AMD-like: ARK and ASK are RSA with RSASSA-PSS SHA-384 signatures like AMD's.
    auto ark_key = COFFER_TRY(Key::generate(crypto::KeyType::kRsa, o.rsa_bits));
    std::string product(snp::product_name(p.product));
    CertificateSpec amd = base;
    amd.digest = crypto::DigestAlg::kSha384;
    amd.rsa_pss = true;
    amd.subject = {{"OU", "Engineering"},    {"C", "US"},
                   {"L", "Santa Clara"},     {"ST", "CA"},
                   {"O", std::string(kOrg)}, {"CN", "ARK-" + product}};
    amd.ca = true;
    auto ark = COFFER_TRY(crypto::issue_certificate(amd, ark_key, ark_key, nullptr));
    auto ask_key = COFFER_TRY(Key::generate(crypto::KeyType::kRsa, o.rsa_bits));
    amd.subject.back().second = "SEV-" + product;
    amd.path_len = 0;
    auto ask = COFFER_TRY(crypto::issue_certificate(amd, ask_key, ark_key, &ark));
    auto vcek_key = COFFER_TRY(Key::generate(crypto::KeyType::kEcP384));
    amd.subject.back().second = "SEV-VCEK";
    amd.ca = false;
    amd.path_len.reset();
    amd.serial = {0x00};  // AMD VCEKs have serial number 0
    amd.extensions = COFFER_TRY(vcek_extensions(p));
    auto vcek = COFFER_TRY(crypto::issue_certificate(amd, vcek_key, ask_key, &ask));

    SimPki pki{p,
               std::move(root_key),
               std::move(platform_ca_key),
               std::move(pck_key),
               std::move(tcb_key),
               COFFER_TRY(p256()),
               std::move(root),
               std::move(platform_ca),
               std::move(pck),
               std::move(tcb_signing),
               {},
               {},
               {},
               {},
               {},
               {},
               {},
               std::move(ark_key),
               std::move(ask_key),
               std::move(vcek_key),
               std::move(ark),
               std::move(ask),
               std::move(vcek),
               {}};
    pki.tcb_info_json = COFFER_TRY(tcb_info(pki, o));
    pki.qe_identity_json = COFFER_TRY(qe_identity(pki, o));
    pki.sgx_tcb_info_json = COFFER_TRY(sgx_tcb_info(pki, o));
    pki.sgx_qe_identity_json = COFFER_TRY(qe_identity(pki, o, true));
    pki.platform_secret = crypto::random_bytes(32);
    crypto::CrlSpec crl{.this_update = o.now - std::chrono::hours(1),
                        .next_update = o.now + o.collateral_lifetime};
    pki.pck_crl = COFFER_TRY(crypto::issue_crl(crl, pki.platform_ca, pki.platform_ca_key));
    pki.root_ca_crl = COFFER_TRY(crypto::issue_crl(crl, pki.root_ca, pki.root_key));
    crypto::CrlSpec amd_crl = crl;
    amd_crl.digest = crypto::DigestAlg::kSha384;
    amd_crl.rsa_pss = true;
    pki.amd_crl = COFFER_TRY(crypto::issue_crl(amd_crl, pki.ark, pki.ark_key));
    return pki;
  };
  auto pki = run();
  if (!pki) return failed(pki.error(), "generating the simulation PKI");
  return pki;
}

namespace {
// AMD's CRL file name for the product, as DirectoryCrlSource reads it ("Genoa.crl").
std::string amd_crl_name(const SimPlatform& p) {
  return std::string(snp::product_name(p.product)) + ".crl";
}
}  // namespace

Status write_sim_pki(const SimPki& pki, const fs::path& dir, bool force) {
  std::error_code ec;
  if (fs::exists(dir / "sim.json", ec) && !force) {
    return make_error("already_exists", dir.string() +
                                            " already holds a simulation PKI; pass --force to "
                                            "replace it (every enclave quote made with it "
                                            "becomes unverifiable)");
  }
  for (const auto& sub : {dir / "intel" / "collateral", dir / "intel" / "collateral_sgx",
                          dir / "amd" / "vcek", dir / "amd" / "crl"}) {
    fs::create_directories(sub, ec);
    if (ec) return make_error("io_error", "cannot create " + sub.string() + ": " + ec.message());
  }
  fs::permissions(dir, fs::perms::owner_all, ec);
  const fs::path intel = dir / "intel", col = intel / "collateral", amd = dir / "amd";
  COFFER_TRY_STATUS(write_key(intel / "root_ca.key", pki.root_key));
  COFFER_TRY_STATUS(write_key(intel / "pck_platform_ca.key", pki.platform_ca_key));
  COFFER_TRY_STATUS(write_key(intel / "pck.key", pki.pck_key));
  COFFER_TRY_STATUS(write_key(intel / "tcb_signing.key", pki.tcb_signing_key));
  COFFER_TRY_STATUS(write_key(intel / "qe_attestation.key", pki.attestation_key));
  COFFER_TRY_STATUS(write_text(intel / "root_ca.pem", pki.root_ca.pem()));
  COFFER_TRY_STATUS(write_text(intel / "pck_platform_ca.pem", pki.platform_ca.pem()));
  COFFER_TRY_STATUS(write_text(intel / "pck.pem", pki.pck.pem()));
  COFFER_TRY_STATUS(write_text(intel / "tcb_signing.pem", pki.tcb_signing.pem()));
  COFFER_TRY_STATUS(write_text(col / "tcb_info.json", pki.tcb_info_json));
  COFFER_TRY_STATUS(write_text(col / "tcb_info_issuer_chain.pem", pki.tcb_signing_chain_pem()));
  COFFER_TRY_STATUS(write_text(col / "qe_identity.json", pki.qe_identity_json));
  COFFER_TRY_STATUS(write_text(col / "qe_identity_issuer_chain.pem", pki.tcb_signing_chain_pem()));
  COFFER_TRY_STATUS(write_text(col / "pck_crl_issuer_chain.pem", pki.pck_crl_chain_pem()));
  COFFER_TRY_STATUS(write_text(col / "pck_crl.der", to_string(pki.pck_crl)));
  COFFER_TRY_STATUS(write_text(col / "root_ca_crl.der", to_string(pki.root_ca_crl)));
  if (!pki.sgx_tcb_info_json.empty()) {
    const fs::path sgx = intel / "collateral_sgx";
    COFFER_TRY_STATUS(write_text(sgx / "tcb_info.json", pki.sgx_tcb_info_json));
    COFFER_TRY_STATUS(write_text(sgx / "tcb_info_issuer_chain.pem", pki.tcb_signing_chain_pem()));
    COFFER_TRY_STATUS(write_text(sgx / "qe_identity.json", pki.sgx_qe_identity_json));
    COFFER_TRY_STATUS(
        write_text(sgx / "qe_identity_issuer_chain.pem", pki.tcb_signing_chain_pem()));
    COFFER_TRY_STATUS(write_text(sgx / "pck_crl_issuer_chain.pem", pki.pck_crl_chain_pem()));
    COFFER_TRY_STATUS(write_text(sgx / "pck_crl.der", to_string(pki.pck_crl)));
    COFFER_TRY_STATUS(write_text(sgx / "root_ca_crl.der", to_string(pki.root_ca_crl)));
  }
  if (!pki.platform_secret.empty())
    COFFER_TRY_STATUS(write_text(dir / "platform_secret", to_string(pki.platform_secret), 0600));
  COFFER_TRY_STATUS(write_key(amd / "ark.key", pki.ark_key));
  COFFER_TRY_STATUS(write_key(amd / "ask.key", pki.ask_key));
  COFFER_TRY_STATUS(write_key(amd / "vcek.key", pki.vcek_key));
  COFFER_TRY_STATUS(write_text(amd / "ark.pem", pki.ark.pem()));
  COFFER_TRY_STATUS(write_text(amd / "ask.pem", pki.ask.pem()));
  COFFER_TRY_STATUS(write_text(amd / "ask_ark.pem", pki.amd_vendor_chain_pem()));
  COFFER_TRY_STATUS(write_text(amd / "vcek" / "vcek.der", to_string(pki.vcek.der())));
  COFFER_TRY_STATUS(write_text(amd / "crl" / amd_crl_name(pki.platform), to_string(pki.amd_crl)));
  // Last, so that a half-written directory is not mistaken for a complete one.
  return write_text(dir / "sim.json", platform_to_json(pki.platform).dump(2) + "\n");
}

Result<SimPki> load_sim_pki(const fs::path& dir) {
  auto text = read_text_file(dir / "sim.json", 1 << 20);
  if (!text) {
    return make_error("not_found", "no simulation PKI in " + dir.string() +
                                       " (run `coffer sim init --dir " + dir.string() + "`)");
  }
  auto j = parse_json(*text);
  if (!j) return make_error("sim_pki_invalid", "sim.json: " + j.error().message);
  const fs::path intel = dir / "intel", col = intel / "collateral", amd = dir / "amd";
  auto vcek_der = COFFER_TRY(read_file(amd / "vcek" / "vcek.der", 1 << 20));
  auto vcek = Certificate::from_der(vcek_der);
  if (!vcek) return make_error("sim_pki_invalid", "amd/vcek/vcek.der: " + vcek.error().message);
  auto platform = COFFER_TRY(platform_from_json(*j));
  Bytes amd_crl;  // absent in directories written before the sim PKI had one
  if (auto crl = read_file(amd / "crl" / amd_crl_name(platform), 1 << 20)) amd_crl = *crl;
  // Absent in directories written before sim-sgx: SGX quotes and keys are then unavailable.
  std::string sgx_tcb_info, sgx_qe_identity;
  if (auto t = read_text_file(intel / "collateral_sgx" / "tcb_info.json", 1 << 20))
    sgx_tcb_info = *t;
  if (auto t = read_text_file(intel / "collateral_sgx" / "qe_identity.json", 1 << 20))
    sgx_qe_identity = *t;
  Bytes secret;
  std::error_code ec;
  if (fs::exists(fs::symlink_status(dir / "platform_secret", ec))) {
    auto s = read_file(dir / "platform_secret", 64);
    if (!s || s->size() != 32)
      return make_error("sim_pki_invalid", "platform_secret is not a 32-byte file");
    secret = std::move(*s);
  }
  return SimPki{std::move(platform),
                COFFER_TRY(read_key(intel / "root_ca.key")),
                COFFER_TRY(read_key(intel / "pck_platform_ca.key")),
                COFFER_TRY(read_key(intel / "pck.key")),
                COFFER_TRY(read_key(intel / "tcb_signing.key")),
                COFFER_TRY(read_key(intel / "qe_attestation.key")),
                COFFER_TRY(read_cert(intel / "root_ca.pem")),
                COFFER_TRY(read_cert(intel / "pck_platform_ca.pem")),
                COFFER_TRY(read_cert(intel / "pck.pem")),
                COFFER_TRY(read_cert(intel / "tcb_signing.pem")),
                COFFER_TRY(read_text_file(col / "tcb_info.json", 1 << 20)),
                COFFER_TRY(read_text_file(col / "qe_identity.json", 1 << 20)),
                std::move(sgx_tcb_info),
                std::move(sgx_qe_identity),
                std::move(secret),
                COFFER_TRY(read_file(col / "pck_crl.der", 1 << 20)),
                COFFER_TRY(read_file(col / "root_ca_crl.der", 1 << 20)),
                COFFER_TRY(read_key(amd / "ark.key")),
                COFFER_TRY(read_key(amd / "ask.key")),
                COFFER_TRY(read_key(amd / "vcek.key")),
                COFFER_TRY(read_cert(amd / "ark.pem")),
                COFFER_TRY(read_cert(amd / "ask.pem")),
                std::move(*vcek),
                std::move(amd_crl)};
}

Result<SignedQeReport> make_qe_report(const SimPki& pki, bool sgx) {
  SignedQeReport out;
  const SimPlatform& p = pki.platform;
  sgx::EnclaveReport& r = out.report;
  std::copy(p.cpu_svn.begin(), p.cpu_svn.end(), r.cpu_svn.begin());
  r.attributes_flags = {0x11, 0, 0, 0, 0, 0, 0, 0};  // INIT | MODE64BIT, not DEBUG
  r.attributes_xfrm = {0xe7, 0, 0, 0, 0, 0, 0, 0};
  r.mr_enclave = p.qe_mr_enclave;
  r.mr_signer = p.qe_mr_signer;
  r.isv_prod_id = sgx ? 1 : 2;  // QE : TD_QE
  r.isv_svn = p.qe_isv_svn;
  // QE authentication data: 32 bytes, as Intel's QE emits (here: fixed, not secret).
  out.auth_data = crypto::sha256(as_bytes("coffer sim QE authentication data"));
  auto point = COFFER_TRY(pki.attestation_key.ec_point());
  Bytes bound = point.x;
  bound.insert(bound.end(), point.y.begin(), point.y.end());
  bound.insert(bound.end(), out.auth_data.begin(), out.auth_data.end());
  Bytes h = crypto::sha256(bound);
  std::copy(h.begin(), h.end(), r.report_data.begin());
  Bytes sig = COFFER_TRY(pki.pck_key.sign(
      sgx::serialize_enclave_report(r),
      {.digest = crypto::DigestAlg::kSha256, .format = crypto::SignatureFormat::kRaw}));
  std::copy(sig.begin(), sig.end(), out.signature.begin());
  return out;
}

}  // namespace coffer::evidence::sim
