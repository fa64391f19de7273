#include "evidence/snp/report.h"

namespace coffer::evidence::snp {

std::string_view product_name(Product p) {
  switch (p) {
    case Product::kMilan:
      return "Milan";
    case Product::kGenoa:
      return "Genoa";
    case Product::kTurin:
      return "Turin";
    case Product::kUnknown:
      break;
  }
  return "Unknown";
}

Result<Product> product_from_name(std::string_view name) {
  if (name == "Milan") return Product::kMilan;
  if (name == "Genoa") return Product::kGenoa;
  if (name == "Turin") return Product::kTurin;
  return make_error("snp_unknown_product", "unknown SEV-SNP product '" + std::string(name) + "'");
}

TcbVersion decode_tcb(std::uint64_t raw, Product product) {
  auto byte = [raw](int i) { return static_cast<std::uint8_t>(raw >> (8 * i)); };
  TcbVersion t;
  if (product == Product::kTurin) {
    t.fmc = byte(0);
    t.bootloader = byte(1);
    t.tee = byte(2);
    t.snp = byte(3);
  } else {
    t.bootloader = byte(0);
    t.tee = byte(1);
    t.snp = byte(6);
  }
  t.microcode = byte(7);
  return t;
}

std::uint64_t encode_tcb(const TcbVersion& t, Product product) {
  auto at = [](std::uint8_t v, int i) { return static_cast<std::uint64_t>(v) << (8 * i); };
  if (product == Product::kTurin) {
    return at(t.fmc, 0) | at(t.bootloader, 1) | at(t.tee, 2) | at(t.snp, 3) | at(t.microcode, 7);
  }
  return at(t.bootloader, 0) | at(t.tee, 1) | at(t.snp, 6) | at(t.microcode, 7);
}

Product Report::product_from_cpuid() const {
  if (version < 3) return Product::kUnknown;
  if (cpuid_fam_id == 0x19) {
    if (cpuid_mod_id <= 0x0f) return Product::kMilan;
    if ((cpuid_mod_id >= 0x10 && cpuid_mod_id <= 0x1f) ||
        (cpuid_mod_id >= 0xa0 && cpuid_mod_id <= 0xaf)) {
      return Product::kGenoa;
    }
  }
  if (cpuid_fam_id == 0x1a) return Product::kTurin;
  return Product::kUnknown;
}

Result<Report> parse_report(ByteView data) {
  // The report has a fixed size; anything else is truncated or has foreign bytes appended.
  if (data.size() != kReportSize) {
    return make_error(data.size() < kReportSize ? "report_truncated" : "report_size_mismatch",
                      "SEV-SNP reports are 1184 bytes, got " + std::to_string(data.size()));
  }
  ByteReader in(data, "report_truncated");
  Report r;
  r.version = COFFER_TRY(in.u32("VERSION"));
  if (r.version < kMinVersion || r.version > kMaxVersion) {
    return make_error("report_unsupported_version",
                      "report version " + std::to_string(r.version) + ", supported 2 to 5");
  }
  r.guest_svn = COFFER_TRY(in.u32("GUEST_SVN"));
  r.policy = COFFER_TRY(in.u64("POLICY"));
  r.family_id = COFFER_TRY(in.fixed<16>("FAMILY_ID"));
  r.image_id = COFFER_TRY(in.fixed<16>("IMAGE_ID"));
  r.vmpl = COFFER_TRY(in.u32("VMPL"));
  r.signature_algo = COFFER_TRY(in.u32("SIGNATURE_ALGO"));
  if (r.signature_algo != 1) {
    return make_error("report_unsupported_signature_algo",
                      "signature algorithm " + std::to_string(r.signature_algo) +
                          " (only 1, ECDSA P-384 with SHA-384, is defined)");
  }
  r.current_tcb = COFFER_TRY(in.u64("CURRENT_TCB"));
  r.platform_info = COFFER_TRY(in.u64("PLATFORM_INFO"));
  r.flags = COFFER_TRY(in.u32("flags"));
  r.reserved0 = COFFER_TRY(in.u32("reserved"));
  r.report_data = COFFER_TRY(in.fixed<64>("REPORT_DATA"));
  r.measurement = COFFER_TRY(in.fixed<48>("MEASUREMENT"));
  r.host_data = COFFER_TRY(in.fixed<32>("HOST_DATA"));
  r.id_key_digest = COFFER_TRY(in.fixed<48>("ID_KEY_DIGEST"));
  r.author_key_digest = COFFER_TRY(in.fixed<48>("AUTHOR_KEY_DIGEST"));
  r.report_id = COFFER_TRY(in.fixed<32>("REPORT_ID"));
  r.report_id_ma = COFFER_TRY(in.fixed<32>("REPORT_ID_MA"));
  r.reported_tcb = COFFER_TRY(in.u64("REPORTED_TCB"));
  r.cpuid_fam_id = COFFER_TRY(in.u8("CPUID_FAM_ID"));
  r.cpuid_mod_id = COFFER_TRY(in.u8("CPUID_MOD_ID"));
  r.cpuid_step = COFFER_TRY(in.u8("CPUID_STEP"));
  r.reserved1 = COFFER_TRY(in.fixed<21>("reserved"));
  r.chip_id = COFFER_TRY(in.fixed<64>("CHIP_ID"));
  r.committed_tcb = COFFER_TRY(in.u64("COMMITTED_TCB"));
  r.current_version = COFFER_TRY(in.fixed<4>("CURRENT version"));
  r.committed_version = COFFER_TRY(in.fixed<4>("COMMITTED version"));
  r.launch_tcb = COFFER_TRY(in.u64("LAUNCH_TCB"));
  r.launch_mit_vector = COFFER_TRY(in.u64("LAUNCH_MIT_VECTOR"));
  r.current_mit_vector = COFFER_TRY(in.u64("CURRENT_MIT_VECTOR"));
  r.reserved2 = COFFER_TRY(in.fixed<0x98>("reserved"));
  r.signature_r = COFFER_TRY(in.fixed<72>("SIGNATURE.R"));
  r.signature_s = COFFER_TRY(in.fixed<72>("SIGNATURE.S"));
  r.reserved3 = COFFER_TRY(in.fixed<0x170>("reserved"));
  return r;
}

Bytes serialize_report(const Report& r) {
  ByteWriter out;
  out.u32(r.version);
  out.u32(r.guest_svn);
  out.u64(r.policy);
  out.put(r.family_id);
  out.put(r.image_id);
  out.u32(r.vmpl);
  out.u32(r.signature_algo);
  out.u64(r.current_tcb);
  out.u64(r.platform_info);
  out.u32(r.flags);
  out.u32(r.reserved0);
  out.put(r.report_data);
  out.put(r.measurement);
  out.put(r.host_data);
  out.put(r.id_key_digest);
  out.put(r.author_key_digest);
  out.put(r.report_id);
  out.put(r.report_id_ma);
  out.u64(r.reported_tcb);
  out.u8(r.cpuid_fam_id);
  out.u8(r.cpuid_mod_id);
  out.u8(r.cpuid_step);
  out.put(r.reserved1);
  out.put(r.chip_id);
  out.u64(r.committed_tcb);
  out.put(r.current_version);
  out.put(r.committed_version);
  out.u64(r.launch_tcb);
  out.u64(r.launch_mit_vector);
  out.u64(r.current_mit_vector);
  out.put(r.reserved2);
  out.put(r.signature_r);
  out.put(r.signature_s);
  out.put(r.reserved3);
  return out.take();
}

}  // namespace coffer::evidence::snp
