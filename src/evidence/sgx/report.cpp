#include "evidence/sgx/report.h"

#include <algorithm>

namespace coffer::evidence::sgx {

Fixed<16> EnclaveReport::attributes() const {
  Fixed<16> a;
  std::copy(attributes_flags.begin(), attributes_flags.end(), a.begin());
  std::copy(attributes_xfrm.begin(), attributes_xfrm.end(), a.begin() + 8);
  return a;
}

Result<EnclaveReport> read_enclave_report(ByteReader& in) {
  EnclaveReport r;
  r.cpu_svn = COFFER_TRY(in.fixed<16>("report CPUSVN"));
  r.misc_select = COFFER_TRY(in.u32("report MISCSELECT"));
  r.reserved1 = COFFER_TRY(in.fixed<12>("report reserved"));
  r.isv_ext_prod_id = COFFER_TRY(in.fixed<16>("report ISVEXTPRODID"));
  r.attributes_flags = COFFER_TRY(in.fixed<8>("report ATTRIBUTES"));
  r.attributes_xfrm = COFFER_TRY(in.fixed<8>("report XFRM"));
  r.mr_enclave = COFFER_TRY(in.fixed<32>("report MRENCLAVE"));
  r.reserved2 = COFFER_TRY(in.fixed<32>("report reserved"));
  r.mr_signer = COFFER_TRY(in.fixed<32>("report MRSIGNER"));
  r.reserved3 = COFFER_TRY(in.fixed<32>("report reserved"));
  r.config_id = COFFER_TRY(in.fixed<64>("report CONFIGID"));
  r.isv_prod_id = COFFER_TRY(in.u16("report ISVPRODID"));
  r.isv_svn = COFFER_TRY(in.u16("report ISVSVN"));
  r.config_svn = COFFER_TRY(in.u16("report CONFIGSVN"));
  r.reserved4 = COFFER_TRY(in.fixed<42>("report reserved"));
  r.isv_family_id = COFFER_TRY(in.fixed<16>("report ISVFAMILYID"));
  r.report_data = COFFER_TRY(in.fixed<64>("report REPORTDATA"));
  return r;
}

void write_enclave_report(ByteWriter& out, const EnclaveReport& r) {
  out.put(r.cpu_svn);
  out.u32(r.misc_select);
  out.put(r.reserved1);
  out.put(r.isv_ext_prod_id);
  out.put(r.attributes_flags);
  out.put(r.attributes_xfrm);
  out.put(r.mr_enclave);
  out.put(r.reserved2);
  out.put(r.mr_signer);
  out.put(r.reserved3);
  out.put(r.config_id);
  out.u16(r.isv_prod_id);
  out.u16(r.isv_svn);
  out.u16(r.config_svn);
  out.put(r.reserved4);
  out.put(r.isv_family_id);
  out.put(r.report_data);
}

Bytes serialize_enclave_report(const EnclaveReport& r) {
  ByteWriter w;
  write_enclave_report(w, r);
  return w.take();
}

}  // namespace coffer::evidence::sgx
