// The SGX enclave REPORT body (384 bytes): the body of an SGX quote v3 and the QE report inside
// every DCAP ECDSA quote. Offsets: Intel SGX ECDSA Quote Library API (DCAP), Appendix A.4,
// "Enclave Report Body"; Intel SDM Vol. 3D, 38.15 "REPORT".
#pragma once

#include <cstdint>

#include "core/bytes.h"
#include "core/error.h"
#include "evidence/byte_reader.h"

namespace coffer::evidence::sgx {

inline constexpr std::size_t kEnclaveReportSize = 384;

struct EnclaveReport {
  Fixed<16> cpu_svn{};            // 0
  std::uint32_t misc_select = 0;  // 16
  Fixed<12> reserved1{};          // 20
  Fixed<16> isv_ext_prod_id{};    // 32
  Fixed<8> attributes_flags{};    // 48 (ATTRIBUTES.FLAGS)
  Fixed<8> attributes_xfrm{};     // 56 (ATTRIBUTES.XFRM)
  Fixed<32> mr_enclave{};         // 64
  Fixed<32> reserved2{};          // 96
  Fixed<32> mr_signer{};          // 128
  Fixed<32> reserved3{};          // 160
  Fixed<64> config_id{};          // 192
  std::uint16_t isv_prod_id = 0;  // 256
  std::uint16_t isv_svn = 0;      // 258
  std::uint16_t config_svn = 0;   // 260
  Fixed<42> reserved4{};          // 262
  Fixed<16> isv_family_id{};      // 304
  Fixed<64> report_data{};        // 320

  // ATTRIBUTES as the 16 bytes QE identity masks apply to (flags || xfrm).
  [[nodiscard]] Fixed<16> attributes() const;
};

Result<EnclaveReport> read_enclave_report(ByteReader& in);
void write_enclave_report(ByteWriter& out, const EnclaveReport& r);
Bytes serialize_enclave_report(const EnclaveReport& r);

}  // namespace coffer::evidence::sgx
