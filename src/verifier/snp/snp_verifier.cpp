#include "verifier/snp/snp_verifier.h"

#include "evidence/snp/report_json.h"
#include "verifier/binding.h"
#include "verifier/errors.h"

namespace coffer::verifier::snp {
namespace {

namespace esnp = evidence::snp;

std::string flag(bool b) { return b ? "true" : "false"; }

// The VCEK/VLEK entry of the evidence's certificate table, if any.
Result<std::optional<Vek>> vek_from_cert_chain(const Json& evidence) {
  auto it = evidence.find("cert_chain");
  if (it == evidence.end() || it->is_null()) return std::optional<Vek>{};
  if (!it->is_array())
    return make_error(VerifierError::kBadEvidence, "'cert_chain' is not an array");
  for (const auto& entry : *it) {
    if (!entry.is_object() || !entry.contains("cert_type") || !entry.contains("data")) {
      return make_error(VerifierError::kBadEvidence, "cert_chain entries need cert_type and data");
    }
    const Json& type = entry["cert_type"];
    if (!type.is_string()) continue;
    std::string t = type.get<std::string>();
    if (t != "VCEK" && t != "VLEK") continue;
    Bytes der;
    const Json& data = entry["data"];
    if (data.is_string()) {
      auto b = base64_decode(data.get<std::string>());
      if (!b) return make_error(VerifierError::kBadEvidence, "cert_chain data is not base64");
      der = std::move(*b);
    } else if (data.is_array()) {
      for (const auto& v : data) {
        if (!v.is_number_unsigned() || v.get<unsigned>() > 255) {
          return make_error(VerifierError::kBadEvidence, "cert_chain data is not a byte array");
        }
        der.push_back(static_cast<std::uint8_t>(v.get<unsigned>()));
      }
    } else {
      return make_error(VerifierError::kBadEvidence,
                        "cert_chain data must be base64 or a byte array");
    }
    return std::optional<Vek>{Vek{t == "VCEK" ? VekType::kVcek : VekType::kVlek, std::move(der)}};
  }
  return std::optional<Vek>{};
}

}  // namespace

Json snp_report_claims(const esnp::Report& r, Product product) {
  auto tcb = esnp::decode_tcb(r.reported_tcb, product);
  Json c = {{"policy_abi_major", std::to_string(r.policy_abi_major())},
            {"policy_abi_minor", std::to_string(r.policy_abi_minor())},
            {"policy_smt_allowed", flag(r.smt_allowed())},
            {"policy_migrate_ma", flag(r.migrate_ma_allowed())},
            {"policy_debug_allowed", flag(r.debug_allowed())},
            {"policy_single_socket", flag(r.single_socket_required())},
            {"reported_tcb_bootloader", std::to_string(tcb.bootloader)},
            {"reported_tcb_tee", std::to_string(tcb.tee)},
            {"reported_tcb_snp", std::to_string(tcb.snp)},
            {"reported_tcb_microcode", std::to_string(tcb.microcode)},
            {"platform_tsme_enabled", flag((r.platform_info >> 1) & 1)},
            {"platform_smt_enabled", flag(r.platform_info & 1)},
            {"measurement", base64_encode(r.measurement)},
            {"report_data", base64_encode(r.report_data)},
            {"init_data", base64_encode(r.host_data)},
            {"vmpl", r.vmpl},
            {"version", r.version},
            {"guest_svn", r.guest_svn},
            {"chip_id", hex_encode(r.chip_id)},
            {"product", std::string(esnp::product_name(product))}};
  if (product == Product::kTurin) c["reported_tcb_fmc"] = std::to_string(tcb.fmc);
  return c;
}

Result<Json> SnpVerifier::verify(const VerifyInput& input) const {
  const Json& ev = input.evidence;
  if (!ev.is_object() || !ev.contains("attestation_report")) {
    return make_error(VerifierError::kBadEvidence, "evidence lacks 'attestation_report'");
  }
  // CoCo's attester sends the report as the JSON of virtee/sev's AttestationReport; a base64
  // string of the raw 1184 bytes is accepted too
  const Json& report_json = ev["attestation_report"];
  esnp::Report report;
  if (report_json.is_object()) {
    report = COFFER_TRY(esnp::report_from_json(report_json));
  } else if (report_json.is_string()) {
    Bytes raw = COFFER_TRY(decode_evidence_base64(ev, "attestation_report"));
    report = COFFER_TRY(esnp::parse_report(raw));
  } else {
    return make_error(VerifierError::kBadEvidence,
                      "'attestation_report' must be a report object or a base64 raw report");
  }
  auto vek = COFFER_TRY(vek_from_cert_chain(ev));
  auto endorsement = COFFER_TRY(chain_->verify(report, vek, input.now));
  // freshness: REPORT_DATA carries the hash of the KBS nonce and the TEE key
  COFFER_TRY_STATUS(check_binding(report.report_data, input.expected_report_data,
                                  VerifierError::kReportDataMismatch, "REPORT_DATA"));
  // configuration: HOST_DATA carries the init-data digest
  if (input.expected_init_data_digest) {
    COFFER_TRY_STATUS(check_binding(report.host_data, *input.expected_init_data_digest,
                                    VerifierError::kInitDataMismatch, "HOST_DATA"));
  }
  Json claims = snp_report_claims(report, endorsement.product);
  claims["vek_type"] = std::string(vek_type_name(endorsement.vek_type));
  // which anchor vouched: AMD's pinned ARK, or a configured non-AMD one (the simulated TEE)
  claims["tee_root"] = endorsement.amd_root ? "amd" : "simulated";
  // revocation: whether AMD's CRL for the product was checked (policies decide what unchecked
  // means)
  claims["crl_checked"] = endorsement.crl_checked;
  return claims;
}

}  // namespace coffer::verifier::snp
