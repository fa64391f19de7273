// Intel TDX DCAP quotes, versions 4 and 5 (Intel TDX DCAP Quoting Library API, Appendix A.3 and
// A.4). v4: header (48) || TD report body (584) || u32 signature data length (0x278) || data.
// v5: header || u16 body type || u32 body size (at 0x30) || body || u32 length || data; body
// type 2 is the TDX 1.0 body (584 bytes), type 3 the TDX 1.5 body (648 bytes). The signature
// covers everything before the signature data length. Trailing bytes after the signature data
// are tolerated.
#pragma once

#include <array>
#include <optional>

#include "core/bytes.h"
#include "core/error.h"
#include "evidence/byte_reader.h"
#include "evidence/sgx/signature_data.h"

namespace coffer::evidence::tdx {

inline constexpr std::size_t kTdReport10Size = 584;
inline constexpr std::size_t kTdReport15Size = 648;
inline constexpr std::uint16_t kBodyTypeSgx = 1;
inline constexpr std::uint16_t kBodyTypeTdx10 = 2;
inline constexpr std::uint16_t kBodyTypeTdx15 = 3;

// TD quote body (TDX DCAP Quoting Library API, Table "TD Quote Body"); offsets relative to the
// body (add 0x30 for a v4 quote).
struct TdReport {
  Fixed<16> tee_tcb_svn{};          // 0
  Fixed<48> mr_seam{};              // 16
  Fixed<48> mrsigner_seam{};        // 64
  Fixed<8> seam_attributes{};       // 112
  Fixed<8> td_attributes{};         // 120
  Fixed<8> xfam{};                  // 128
  Fixed<48> mr_td{};                // 136
  Fixed<48> mr_config_id{};         // 184
  Fixed<48> mr_owner{};             // 232
  Fixed<48> mr_owner_config{};      // 280
  std::array<Fixed<48>, 4> rtmr{};  // 328, 376, 424, 472
  Fixed<64> report_data{};          // 520
  // TDX 1.5 body only (type 3).
  std::optional<Fixed<16>> tee_tcb_svn2;  // 584
  std::optional<Fixed<48>> mr_servicetd;  // 600

  [[nodiscard]] bool debug() const { return (td_attributes[0] & 0x01) != 0; }
};

struct Quote {
  sgx::QuoteHeader header;
  std::uint16_t body_type = kBodyTypeTdx10;  // v4 implies type 2
  TdReport body;
  sgx::QuoteSignatureData signature_data;
  // Size of the signed region (header .. end of body) in the bytes this quote was parsed from.
  [[nodiscard]] std::size_t signed_size() const;
};

// Errors: quote_truncated, quote_unsupported_version, quote_unsupported_key_type,
// quote_unsupported_tee_type, quote_unsupported_body_type, quote_body_size_mismatch,
// quote_signature_data_size_mismatch, quote_unsupported_certification_data.
Result<Quote> parse_quote(ByteView data);
Bytes serialize_quote(const Quote& q);
// header || (type, size) || body: the bytes the attestation key signs.
Bytes serialize_signed_region(const Quote& q);

// Reads a TD report body of the given type (2 or 3).
Result<TdReport> read_td_report(ByteReader& in, std::uint16_t body_type);
void write_td_report(ByteWriter& out, const TdReport& r);

}  // namespace coffer::evidence::tdx
