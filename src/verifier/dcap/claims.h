// Claims shared by the TDX and SGX verifiers: the DCAP verification results, named as Trustee's
// Intel DCAP verifier names them (tcb_status, advisory_ids, collateral_expiration_status, ...).
#pragma once

#include "core/json.h"
#include "verifier/dcap/dcap_verifier.h"

namespace coffer::verifier::dcap {

// Adds tcb_status, advisory_ids, collateral_expiration_status, tcb_date, tcb_eval_num, fmspc,
// pce_id, sgx_type, platform_provider_id, platform_instance_id, verification_mode, tee_root.
void add_dcap_claims(const DcapResult& result, Json& claims);

}  // namespace coffer::verifier::dcap
