// libFuzzer target: Intel collateral parsers (TCB info v3, enclave identity v2, raw JSON member
// extraction) and CRL parsing.
#include <cstdint>
#include <string_view>

#include "crypto/x509.h"
#include "verifier/dcap/collateral.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace dcap = coffer::verifier::dcap;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)dcap::parse_tcb_info(text);
  (void)dcap::parse_enclave_identity(text);
  (void)dcap::raw_json_member(text, "tcbInfo");
  (void)coffer::crypto::Crl::parse_any(coffer::ByteView(data, size));
  return 0;
}
