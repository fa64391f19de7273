// Intel SGX DCAP ECDSA quote version 3 (Intel SGX ECDSA Quote Library API, Appendix A.4):
// header (48) || enclave report body (384) || u32 signature data length (at 432) || signature
// data. Bytes after the signature data are tolerated (seen in real quotes) and ignored.
#pragma once

#include "core/bytes.h"
#include "core/error.h"
#include "evidence/sgx/report.h"
#include "evidence/sgx/signature_data.h"

namespace coffer::evidence::sgx {

struct Quote {
  QuoteHeader header;
  EnclaveReport body;
  QuoteSignatureData signature_data;

  [[nodiscard]] std::uint16_t qe_svn() const { return load_le16(header.reserved.data()); }
  [[nodiscard]] std::uint16_t pce_svn() const { return load_le16(header.reserved.data() + 2); }
};

// The signed region (header || body) is the first kSignedSize bytes.
inline constexpr std::size_t kQuoteSignedSize = kQuoteHeaderSize + kEnclaveReportSize;

// Errors: quote_truncated, quote_unsupported_version, quote_unsupported_key_type,
// quote_unsupported_tee_type, quote_signature_data_size_mismatch,
// quote_unsupported_certification_data.
Result<Quote> parse_quote(ByteView data);
Bytes serialize_quote(const Quote& q);

}  // namespace coffer::evidence::sgx
