// AMD SEV-SNP ATTESTATION_REPORT, versions 2 to 5 (1184 bytes). Offsets: AMD SEV Secure Nested
// Paging Firmware ABI Specification (#56860), Table "ATTESTATION_REPORT Structure" (rev. 1.55+
// for v3 CPUID fields, 1.57+ for v5 mitigation vectors). The signature (ECDSA P-384 with
// SHA-384) covers bytes 0x000-0x29F; r at 0x2A0 and s at 0x2E8 are 72-byte little-endian.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/bytes.h"
#include "core/error.h"
#include "evidence/byte_reader.h"

namespace coffer::evidence::snp {

inline constexpr std::size_t kReportSize = 0x4A0;
inline constexpr std::size_t kSignedSize = 0x2A0;
inline constexpr std::uint32_t kMinVersion = 2;
inline constexpr std::uint32_t kMaxVersion = 5;

enum class Product { kUnknown, kMilan, kGenoa, kTurin };
std::string_view product_name(Product p);  // "Milan", "Genoa", "Turin", "Unknown"
Result<Product> product_from_name(std::string_view name);

// TCB_VERSION (ABI spec, "TCB_VERSION Structure"): Milan/Genoa: byte 0 boot loader, 1 TEE,
// 6 SNP, 7 microcode. Turin: byte 0 FMC, 1 boot loader, 2 TEE, 3 SNP, 7 microcode.
struct TcbVersion {
  std::uint8_t fmc = 0;  // Turin only
  std::uint8_t bootloader = 0;
  std::uint8_t tee = 0;
  std::uint8_t snp = 0;
  std::uint8_t microcode = 0;
  bool operator==(const TcbVersion&) const = default;
};
TcbVersion decode_tcb(std::uint64_t raw, Product product);
std::uint64_t encode_tcb(const TcbVersion& tcb, Product product);

struct Report {
  std::uint32_t version = 0;         // 0x000
  std::uint32_t guest_svn = 0;       // 0x004
  std::uint64_t policy = 0;          // 0x008
  Fixed<16> family_id{};             // 0x010
  Fixed<16> image_id{};              // 0x020
  std::uint32_t vmpl = 0;            // 0x030
  std::uint32_t signature_algo = 0;  // 0x034: 1 = ECDSA P-384 with SHA-384
  std::uint64_t current_tcb = 0;     // 0x038
  std::uint64_t platform_info = 0;   // 0x040
  std::uint32_t flags = 0;           // 0x048: bit 0 AUTHOR_KEY_EN, 1 MASK_CHIP_KEY, 2-4 SIGNING_KEY
  std::uint32_t reserved0 = 0;       // 0x04C
  Fixed<64> report_data{};           // 0x050
  Fixed<48> measurement{};           // 0x090
  Fixed<32> host_data{};             // 0x0C0
  Fixed<48> id_key_digest{};         // 0x0E0
  Fixed<48> author_key_digest{};     // 0x110
  Fixed<32> report_id{};             // 0x140
  Fixed<32> report_id_ma{};          // 0x160
  std::uint64_t reported_tcb = 0;    // 0x180
  std::uint8_t cpuid_fam_id = 0;     // 0x188 (v3+)
  std::uint8_t cpuid_mod_id = 0;     // 0x189 (v3+)
  std::uint8_t cpuid_step = 0;       // 0x18A (v3+)
  Fixed<21> reserved1{};             // 0x18B
  Fixed<64> chip_id{};               // 0x1A0
  std::uint64_t committed_tcb = 0;   // 0x1E0
  Fixed<4> current_version{};        // 0x1E8: build, minor, major, reserved
  Fixed<4> committed_version{};      // 0x1EC
  std::uint64_t launch_tcb = 0;      // 0x1F0
  std::uint64_t launch_mit_vector = 0;   // 0x1F8 (v5)
  std::uint64_t current_mit_vector = 0;  // 0x200 (v5)
  Fixed<0x98> reserved2{};               // 0x208 .. 0x29F
  Fixed<72> signature_r{};               // 0x2A0, little-endian
  Fixed<72> signature_s{};               // 0x2E8, little-endian
  Fixed<0x170> reserved3{};              // 0x330 .. 0x49F

  // SIGNING_KEY: 0 VCEK, 1 VLEK, 7 none.
  [[nodiscard]] std::uint32_t signing_key() const { return (flags >> 2) & 0x7; }
  [[nodiscard]] bool debug_allowed() const { return (policy >> 19) & 1; }
  [[nodiscard]] bool migrate_ma_allowed() const { return (policy >> 18) & 1; }
  [[nodiscard]] bool smt_allowed() const { return (policy >> 16) & 1; }
  [[nodiscard]] bool single_socket_required() const { return (policy >> 20) & 1; }
  [[nodiscard]] std::uint8_t policy_abi_major() const { return (policy >> 8) & 0xff; }
  [[nodiscard]] std::uint8_t policy_abi_minor() const { return policy & 0xff; }
  // Product from the CPUID fields of v3+ reports (family 19h models 0-Fh Milan, 10h-1Fh and
  // A0h-AFh Genoa; family 1Ah Turin); kUnknown for v2.
  [[nodiscard]] Product product_from_cpuid() const;
};

// Errors: report_truncated (any size other than 1184 is rejected as "report_size_mismatch"),
// report_unsupported_version, report_unsupported_signature_algo.
Result<Report> parse_report(ByteView data);
Bytes serialize_report(const Report& r);

}  // namespace coffer::evidence::snp
