// The CC event log as claims: `uefi_event_logs`, one object per record, in the shape Trustee's
// TDX verifier gives policies (index, type_name, digests [{alg, digest}], event (base64),
// digest_matches_event, details with the type's decoded fields).
#pragma once

#include "core/json.h"
#include "evidence/tdx/ccel.h"

namespace coffer::verifier::tdx {

Json event_log_claims(const evidence::tdx::EventLog& log);

}  // namespace coffer::verifier::tdx
