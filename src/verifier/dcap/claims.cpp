#include "verifier/dcap/claims.h"

#include "verifier/dcap/intel_root.h"

namespace coffer::verifier::dcap {

void add_dcap_claims(const DcapResult& r, Json& claims) {
  if (r.tcb) {
    claims["tcb_status"] = std::string(tcb_status_name(r.tcb->status));
    claims["advisory_ids"] = r.tcb->advisory_ids;
    claims["tcb_date"] = r.tcb->tcb_date;
    claims["qe_tcb_status"] = std::string(tcb_status_name(r.tcb->qe_status));
    claims["platform_tcb_status"] = std::string(tcb_status_name(r.tcb->platform_status));
    if (r.tcb->tdx_module_status) {
      claims["tdx_module_tcb_status"] = std::string(tcb_status_name(*r.tcb->tdx_module_status));
    }
  } else {
    // chain-only mode: no collateral, so no TCB judgement; policies must not read UpToDate
    claims["tcb_status"] = "Unknown";
    claims["advisory_ids"] = Json::array();
  }
  claims["collateral_expiration_status"] = r.collateral_expired ? "1" : "0";
  if (r.tcb_evaluation_data_number) claims["tcb_eval_num"] = *r.tcb_evaluation_data_number;
  claims["verification_mode"] = r.chain_only ? "chain_only" : "full";
  claims["crls_checked"] = r.crls_checked;
  claims["fmspc"] = hex_encode(r.pck.fmspc);
  claims["pce_id"] = hex_encode(r.pck.pce_id);
  claims["platform_provider_id"] = hex_encode(r.pck.ppid);
  constexpr const char* kSgxTypes[] = {"Standard", "Scalable", "Scalable with Integrity"};
  claims["sgx_type"] = r.pck.sgx_type < 3 ? kSgxTypes[r.pck.sgx_type] : "Unknown";
  if (r.pck.platform_instance_id) {
    // Trustee prints the PlatformInstanceID byte-reversed; keep its spelling for policies.
    Bytes reversed(r.pck.platform_instance_id->rbegin(), r.pck.platform_instance_id->rend());
    claims["platform_instance_id"] = hex_encode(reversed);
  }
  std::string fp = hex_encode(r.root_fingerprint);
  // Intel's real root, or a configured non-vendor root (the simulated TEE's)
  claims["tee_root"] = fp == kIntelSgxRootCaSha256 ? "intel" : "simulated";
  claims["tee_root_fingerprint"] = fp;
}

}  // namespace coffer::verifier::dcap
