// The parts every Intel DCAP ECDSA quote shares (SGX v3, TDX v4/v5): the 48-byte header and the
// ECDSA quote signature data with the QE report, QE authentication data and certification data.
// Offsets: Intel SGX ECDSA Quote Library API, Appendix A.4 (quote v3); Intel TDX DCAP Quoting
// Library API, Appendix A.3 (quote v4) and A.4 (quote v5).
#pragma once

#include <cstdint>

#include "core/bytes.h"
#include "core/error.h"
#include "evidence/byte_reader.h"
#include "evidence/sgx/report.h"

namespace coffer::evidence::sgx {

inline constexpr std::size_t kQuoteHeaderSize = 48;
inline constexpr std::uint16_t kAttestationKeyEcdsaP256 = 2;
inline constexpr std::uint32_t kTeeTypeSgx = 0x00000000;
inline constexpr std::uint32_t kTeeTypeTdx = 0x00000081;
// Certification data types (Quote Library API, "Certification Data"): 5 = PCK certificate chain
// (PEM, leaf first), 6 = QE report certification data (the v4 layout, nesting type 5).
inline constexpr std::uint16_t kCertDataPckChain = 5;
inline constexpr std::uint16_t kCertDataQeReport = 6;
// Intel's QE vendor ID (939A7233-F79C-4CA9-940A-0DB3957F0607).
inline constexpr Fixed<16> kIntelQeVendorId = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
                                               0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};

struct QuoteHeader {
  std::uint16_t version = 0;       // 0
  std::uint16_t att_key_type = 0;  // 2: 2 = ECDSA-256 with P-256
  std::uint32_t tee_type = 0;      // 4: SGX v3 calls it ATT_KEY_DATA_0 (0); TDX 0x81
  Fixed<4> reserved{};             // 8: SGX v3: QE_SVN (u16) then PCE_SVN (u16)
  Fixed<16> qe_vendor_id{};        // 12
  Fixed<20> user_data{};           // 28: first 16 bytes are the QE platform ID
};

Result<QuoteHeader> read_quote_header(ByteReader& in);
void write_quote_header(ByteWriter& out, const QuoteHeader& h);

// QE report certification data (type 6 in v4/v5; inline in the signature data of v3).
struct QeReportCertificationData {
  EnclaveReport qe_report;
  Fixed<64> qe_report_signature{};  // ECDSA P-256 r || s by the PCK key over the QE report
  Bytes qe_auth_data;               // u16 length prefixed
  std::uint16_t certification_data_type = kCertDataPckChain;
  Bytes certification_data;  // type 5: the PCK chain, PEM (may end in a NUL)
};

struct QuoteSignatureData {
  Fixed<64> signature{};        // ECDSA P-256 r || s over header || body
  Fixed<64> attestation_key{};  // P-256 public key x || y
  QeReportCertificationData qe;
};

// Layout of the signature data: SGX quote v3 puts the QE report data inline and the PCK chain
// as the only certification data; v4/v5 wrap them in certification data type 6.
enum class SignatureLayout { kV3, kV4 };

// Parses exactly `data` (the signature data of the declared length): any byte left over or
// missing is "quote_signature_data_size_mismatch".
Result<QuoteSignatureData> parse_signature_data(ByteView data, SignatureLayout layout);
Bytes serialize_signature_data(const QuoteSignatureData& sig, SignatureLayout layout);

}  // namespace coffer::evidence::sgx
